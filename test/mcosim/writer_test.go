package mcosim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/vincent-petithory/dataurl"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

// dirMachine is a node whose root is a folder: systemctl --root=<folder>
// does the enablement offline, as systemctl does it on the node.
type dirMachine struct {
	root  string
	calls [][]string
	// failing makes a systemctl verb fail without running it.
	failing map[string]bool
}

func newDirMachine(t *testing.T) *dirMachine {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		ci.SkipOrFail(t, "no systemctl")
	}
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "usr/lib/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &dirMachine{root: root}
}

func (m *dirMachine) Root() string { return m.root }

func (m *dirMachine) Systemctl(ctx context.Context, args ...string) error {
	m.calls = append(m.calls, args)
	if len(args) > 0 && m.failing[args[0]] {
		return fmt.Errorf("systemctl %s: failing on purpose", args[0])
	}
	out, err := exec.CommandContext(ctx, "systemctl", append([]string{"--root=" + m.root}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// callsOf are the systemctl calls with verb, arguments only.
func (m *dirMachine) callsOf(verb string) [][]string {
	var out [][]string
	for _, c := range m.calls {
		if c[0] == verb {
			out = append(out, c[1:])
		}
	}
	return out
}

// rhcosPresets gives the root Fedora's and RHCOS's default preset policy,
// disable everything not named, which the MCD's presets rely on.
func (m *dirMachine) rhcosPresets(t *testing.T) {
	t.Helper()
	dir := filepath.Join(m.root, "usr/lib/systemd/system-preset")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "99-default-disable.preset"), []byte("disable *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (m *dirMachine) path(p string) string { return filepath.Join(m.root, p) }

func ignJSON(t *testing.T, files []igntypes.File, units ...igntypes.Unit) []byte {
	t.Helper()
	cfg := igntypes.Config{Ignition: igntypes.Ignition{Version: "3.5.0"}}
	cfg.Storage.Files = files
	cfg.Systemd.Units = units
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func file(p, source string, mode *int) igntypes.File {
	f := igntypes.File{Node: igntypes.Node{Path: p}}
	f.Mode = mode
	f.Contents.Source = &source
	return f
}

func unit(name string, enabled *bool, contents string, dropins ...igntypes.Dropin) igntypes.Unit {
	u := igntypes.Unit{Name: name, Enabled: enabled, Dropins: dropins}
	if contents != "" {
		u.Contents = &contents
	}
	return u
}

func dropin(name, contents string) igntypes.Dropin {
	return igntypes.Dropin{Name: name, Contents: &contents}
}

const serviceText = "[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=%s\n"

func service(desc, wantedBy string) string { return fmt.Sprintf(serviceText, desc, wantedBy) }

func writeConfig(t *testing.T, m Machine, old, new []byte) {
	t.Helper()
	if err := WriteConfig(context.Background(), m, old, new); err != nil {
		t.Fatal(err)
	}
}

func wantFile(t *testing.T, host string, data string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(host)
	if err != nil {
		t.Errorf("%s: %v", host, err)
		return
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want a file of %v", host, fi.Mode(), mode)
	}
	if b, _ := os.ReadFile(host); string(b) != data {
		t.Errorf("%s: %q, want %q", host, b, data)
	}
}

func wantLink(t *testing.T, host, target string) {
	t.Helper()
	if got, err := os.Readlink(host); err != nil || got != target {
		t.Errorf("%s: link to %q (%v), want %q", host, got, err, target)
	}
}

func wantGone(t *testing.T, host string) {
	t.Helper()
	if _, err := os.Lstat(host); !os.IsNotExist(err) {
		t.Errorf("%s is there (%v), want it gone", host, err)
	}
}

const wantsKubelet = "etc/systemd/system/multi-user.target.wants/kubelet.service"
const wantsKubens = "etc/systemd/system/multi-user.target.wants/kubens.service"

// First boot of the base config: the units, drop-ins and the wrapper as the
// templates have them, kubelet enabled, kubens not.
func TestWriterFirstBootBaseConfig(t *testing.T) {
	m := newDirMachine(t)
	writeConfig(t, m, nil, BaseConfigRaw("worker"))

	wantFile(t, m.path("usr/local/bin/kubenswrapper"), kubenswrapperContents, 0o755)
	wantFile(t, m.path("etc/systemd/system/kubelet.service"), kubeletUnitContents, 0o644)
	wantFile(t, m.path("etc/systemd/system/kubens.service"), wantKubensUnit, 0o644)
	wantFile(t, m.path("etc/systemd/system/kubelet.service.d/01-kubens.conf"), kubensDropin(), 0o644)
	wantFile(t, m.path("etc/systemd/system/crio.service.d/01-kubens.conf"), kubensDropin(), 0o644)
	wantGone(t, m.path("etc/systemd/system/crio.service"))
	wantLink(t, m.path(wantsKubelet), "/etc/systemd/system/kubelet.service")
	wantGone(t, m.path(wantsKubens))
	if got := m.callsOf("enable"); !slices.EqualFunc(got, [][]string{{"kubelet.service"}}, slices.Equal) {
		t.Errorf("enable calls %v", got)
	}
	if got := m.callsOf("disable"); !slices.EqualFunc(got, [][]string{{KubensUnit}}, slices.Equal) {
		t.Errorf("disable calls %v", got)
	}
	// crio.service says nothing about enablement: the MCD presets it.
	if got := m.callsOf("preset"); !slices.EqualFunc(got, [][]string{{"crio.service"}}, slices.Equal) {
		t.Errorf("preset calls %v", got)
	}
}

// rendered merges the base config with more configs as the render
// controller does, and gives the rendered Ignition.
func rendered(t *testing.T, mcs ...*mcfgv1.MachineConfig) []byte {
	t.Helper()
	spec, err := mergeConfigs(append([]*mcfgv1.MachineConfig{baseConfig("worker")}, mcs...))
	if err != nil {
		t.Fatal(err)
	}
	return spec.Config.Raw
}

// What `oc kubens enable` and `disable` amount to on a node: the link that
// starts kubens.service at boot comes and goes.
func TestWriterEnableAndDisableKubens(t *testing.T) {
	m := newDirMachine(t)
	base := rendered(t)
	on := rendered(t, enableKubens("99-kubens-worker", "worker"))
	writeConfig(t, m, nil, base)
	wantGone(t, m.path(wantsKubens))

	writeConfig(t, m, base, on)
	wantLink(t, m.path(wantsKubens), "/etc/systemd/system/kubens.service")
	wantLink(t, m.path(wantsKubelet), "/etc/systemd/system/kubelet.service")
	wantFile(t, m.path("etc/systemd/system/kubens.service"), wantKubensUnit, 0o644)

	writeConfig(t, m, on, base)
	wantGone(t, m.path(wantsKubens))
	wantLink(t, m.path(wantsKubelet), "/etc/systemd/system/kubelet.service")
}

// Files, with every encoding the MCD decodes, and units on first boot.
func TestWriterFilesAndModes(t *testing.T) {
	m := newDirMachine(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("compressed\n"))
	_ = zw.Close()
	gzipped := file("/etc/gz", dataurl.EncodeBytes(gz.Bytes()), nil)
	gzipped.Contents.Compression = ptr("gzip")
	empty := igntypes.File{Node: igntypes.Node{Path: "/var/lib/empty"}}
	secret := []byte{0, 1, 2, 0xff, '\n'}

	writeConfig(t, m, nil, ignJSON(t, []igntypes.File{
		file("/etc/deep/er/plain.conf", "data:,a%20b%0Ac", nil),
		file("/etc/secret", dataurl.EncodeBytes(secret), ptr(0o600)),
		file("/usr/local/bin/tool", "data:;base64,IyEvYmluL3NoCg==", ptr(0o755)),
		gzipped,
		empty,
	}, unit("a.service", ptr(true), service("a", "multi-user.target"), dropin("10-x.conf", "[Service]\nNice=1\n"))))

	wantFile(t, m.path("etc/deep/er/plain.conf"), "a b\nc", 0o644)
	wantFile(t, m.path("etc/secret"), string(secret), 0o600)
	wantFile(t, m.path("usr/local/bin/tool"), "#!/bin/sh\n", 0o755)
	wantFile(t, m.path("etc/gz"), "compressed\n", 0o644)
	wantFile(t, m.path("var/lib/empty"), "", 0o644)
	wantFile(t, m.path("etc/systemd/system/a.service"), service("a", "multi-user.target"), 0o644)
	wantFile(t, m.path("etc/systemd/system/a.service.d/10-x.conf"), "[Service]\nNice=1\n", 0o644)
	wantLink(t, m.path("etc/systemd/system/multi-user.target.wants/a.service"), "/etc/systemd/system/a.service")
	if fi, err := os.Stat(m.path("etc/deep/er")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("parent directory: %v %v", fi, err)
	}
	// No temporary files left next to the written ones.
	entries, _ := os.ReadDir(m.path("etc"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left over: %s", e.Name())
		}
	}
}

// Enabling and disabling is one systemctl call each, with every unit; a
// failing enable fails the update.
func TestWriterEnableDisableOnceEach(t *testing.T) {
	m := newDirMachine(t)
	writeConfig(t, m, nil, ignJSON(t, nil,
		unit("a.service", ptr(true), service("a", "multi-user.target")),
		unit("b.service", ptr(false), service("b", "multi-user.target")),
		unit("c.service", ptr(true), service("c", "multi-user.target")),
		unit("d.service", ptr(false), service("d", "multi-user.target")),
	))
	if got := m.callsOf("enable"); !slices.EqualFunc(got, [][]string{{"a.service", "c.service"}}, slices.Equal) {
		t.Errorf("enable calls %v", got)
	}
	if got := m.callsOf("disable"); !slices.EqualFunc(got, [][]string{{"b.service", "d.service"}}, slices.Equal) {
		t.Errorf("disable calls %v", got)
	}

	m2 := newDirMachine(t)
	m2.failing = map[string]bool{"enable": true}
	err := WriteConfig(context.Background(), m2, nil, ignJSON(t, nil, unit("a.service", ptr(true), service("a", "multi-user.target"))))
	if err == nil || !strings.Contains(err.Error(), "error enabling units") {
		t.Errorf("err = %v, want the enable failure", err)
	}
}

// A unit without contents is enabled only when its unit file exists on the
// node (OCPBUGS-56648); otherwise it is skipped without error.
func TestWriterEnableUnitWithoutContents(t *testing.T) {
	m := newDirMachine(t)
	if err := os.WriteFile(m.path("usr/lib/systemd/system/image.service"), []byte(service("image", "multi-user.target")), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, m, nil, ignJSON(t, nil,
		unit("image.service", ptr(true), ""),
		unit("nowhere.service", ptr(true), ""),
	))
	wantLink(t, m.path("etc/systemd/system/multi-user.target.wants/image.service"), "/usr/lib/systemd/system/image.service")
	if got := m.callsOf("enable"); !slices.EqualFunc(got, [][]string{{"image.service"}}, slices.Equal) {
		t.Errorf("enable calls %v", got)
	}
}

// A unit whose [Install] changes is disabled before it is rewritten
// (OCPBUGS-33694), so no link of the old text is left behind.
func TestWriterRewriteDropsOldInstallLinks(t *testing.T) {
	m := newDirMachine(t)
	old := ignJSON(t, nil, unit("a.service", ptr(true), service("a", "multi-user.target")))
	new := ignJSON(t, nil, unit("a.service", ptr(true), service("a", "graphical.target")))
	writeConfig(t, m, nil, old)
	wantLink(t, m.path("etc/systemd/system/multi-user.target.wants/a.service"), "/etc/systemd/system/a.service")
	writeConfig(t, m, old, new)
	wantGone(t, m.path("etc/systemd/system/multi-user.target.wants/a.service"))
	wantLink(t, m.path("etc/systemd/system/graphical.target.wants/a.service"), "/etc/systemd/system/a.service")
}

// Only added or changed units are written (OCPBUGS-58023); every file is.
func TestWriterUnchangedUnitsAreNotRewritten(t *testing.T) {
	m := newDirMachine(t)
	u := unit("a.service", nil, service("a", "multi-user.target"))
	f := file("/etc/f", "data:,config", nil)
	old := ignJSON(t, []igntypes.File{f}, u)
	writeConfig(t, m, nil, old)
	for _, p := range []string{"etc/systemd/system/a.service", "etc/f"} {
		if err := os.WriteFile(m.path(p), []byte("drifted"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(t, m, old, ignJSON(t, []igntypes.File{f}, u, unit("b.service", nil, service("b", "multi-user.target"))))
	wantFile(t, m.path("etc/systemd/system/a.service"), "drifted", 0o644)
	wantFile(t, m.path("etc/f"), "config", 0o644)
	wantFile(t, m.path("etc/systemd/system/b.service"), service("b", "multi-user.target"), 0o644)
}

// What the old config had and the new has not goes: files, drop-ins, units
// (preset first, so their enablement links go too). A file that is now a
// drop-in of the new config stays.
func TestWriterDeletesStaleData(t *testing.T) {
	m := newDirMachine(t)
	m.rhcosPresets(t)
	conf := "[Service]\nNice=1\n"
	old := ignJSON(t,
		[]igntypes.File{
			file("/etc/stale", "data:,x", nil),
			file("/etc/kept", "data:,y", nil),
			file("/etc/systemd/system/b.service.d/20-was-a-file.conf", dataurl.EncodeBytes([]byte(conf)), nil),
		},
		unit("a.service", ptr(true), service("a", "multi-user.target"), dropin("10-stale.conf", conf), dropin("11-kept.conf", conf)),
		unit("stale.service", ptr(true), service("stale", "multi-user.target"), dropin("10-x.conf", conf)),
	)
	new := ignJSON(t,
		[]igntypes.File{file("/etc/kept", "data:,y", nil)},
		unit("a.service", ptr(true), service("a", "multi-user.target"), dropin("11-kept.conf", conf)),
		unit("b.service", nil, "", dropin("20-was-a-file.conf", conf)),
	)
	writeConfig(t, m, nil, old)
	wantLink(t, m.path("etc/systemd/system/multi-user.target.wants/stale.service"), "/etc/systemd/system/stale.service")

	writeConfig(t, m, old, new)
	wantGone(t, m.path("etc/stale"))
	wantFile(t, m.path("etc/kept"), "y", 0o644)
	wantGone(t, m.path("etc/systemd/system/a.service.d/10-stale.conf"))
	wantFile(t, m.path("etc/systemd/system/a.service.d/11-kept.conf"), conf, 0o644)
	wantFile(t, m.path("etc/systemd/system/b.service.d/20-was-a-file.conf"), conf, 0o644)
	wantGone(t, m.path("etc/systemd/system/stale.service"))
	wantGone(t, m.path("etc/systemd/system/stale.service.d/10-x.conf"))
	wantGone(t, m.path("etc/systemd/system/multi-user.target.wants/stale.service"))
	wantLink(t, m.path("etc/systemd/system/multi-user.target.wants/a.service"), "/etc/systemd/system/a.service")

	// Deleting what is already gone is no error.
	writeConfig(t, m, old, new)
}

// A drop-in without contents removes the one on disk (writeDropins).
func TestWriterEmptyDropinRemovesIt(t *testing.T) {
	m := newDirMachine(t)
	old := ignJSON(t, nil, unit("a.service", nil, "", dropin("10-x.conf", "[Unit]\n")))
	writeConfig(t, m, nil, old)
	wantFile(t, m.path("etc/systemd/system/a.service.d/10-x.conf"), "[Unit]\n", 0o644)
	none := unit("a.service", nil, "")
	none.Dropins = []igntypes.Dropin{{Name: "10-x.conf"}}
	writeConfig(t, m, old, ignJSON(t, nil, none))
	wantGone(t, m.path("etc/systemd/system/a.service.d/10-x.conf"))
}

// mask:true makes the unit a link to /dev/null; mask:false takes it away.
func TestWriterMask(t *testing.T) {
	m := newDirMachine(t)
	masked := unit("a.service", nil, service("a", "multi-user.target"))
	masked.Mask = ptr(true)
	old := ignJSON(t, nil, masked)
	writeConfig(t, m, nil, old)
	wantLink(t, m.path("etc/systemd/system/a.service"), "/dev/null")

	unmasked := unit("a.service", nil, "")
	unmasked.Mask = ptr(false)
	writeConfig(t, m, old, ignJSON(t, nil, unmasked))
	wantGone(t, m.path("etc/systemd/system/a.service"))
}

// Paths that would leave the root are refused, and then nothing is written.
func TestWriterRefusesBadPaths(t *testing.T) {
	good := file("/etc/good", "data:,x", nil)
	for name, cfg := range map[string][]byte{
		"relative":       ignJSON(t, []igntypes.File{good, file("etc/rel", "data:,x", nil)}),
		"dot-dot":        ignJSON(t, []igntypes.File{good, file("/etc/../../escape", "data:,x", nil)}),
		"unit with /":    ignJSON(t, []igntypes.File{good}, unit("../../x.service", nil, "[Unit]\n")),
		"drop-in dotdot": ignJSON(t, []igntypes.File{good}, unit("a.service", nil, "", dropin("../../x.conf", "[Unit]\n"))),
	} {
		t.Run(name, func(t *testing.T) {
			m := newDirMachine(t)
			err := WriteConfig(context.Background(), m, nil, cfg)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			wantGone(t, m.path("etc/good"))
		})
	}
	// Old paths go through the same check: they are deleted under the root.
	m := newDirMachine(t)
	old := ignJSON(t, []igntypes.File{file("/etc/../x", "data:,x", nil)})
	if err := WriteConfig(context.Background(), m, old, ignJSON(t, nil)); err == nil {
		t.Error("a bad path in the old config: no error")
	}
}

// checkPaths on its own, for what Ignition's validation lets through or a
// config that did not come through it.
func TestWriterCheckPaths(t *testing.T) {
	for _, p := range []string{"rel", "", "/etc/../../x", "/a/..", "/a\x00b"} {
		cfg := igntypes.Config{}
		cfg.Storage.Files = []igntypes.File{{Node: igntypes.Node{Path: p}}}
		if checkPaths(cfg) == nil {
			t.Errorf("file %q accepted", p)
		}
	}
	for _, n := range []string{"", ".", "..", "a/b.service"} {
		cfg := igntypes.Config{}
		cfg.Systemd.Units = []igntypes.Unit{{Name: n}}
		if checkPaths(cfg) == nil {
			t.Errorf("unit %q accepted", n)
		}
		cfg.Systemd.Units = []igntypes.Unit{{Name: "a.service", Dropins: []igntypes.Dropin{{Name: n}}}}
		if checkPaths(cfg) == nil {
			t.Errorf("drop-in %q accepted", n)
		}
	}
	cfg := igntypes.Config{}
	cfg.Storage.Links = []igntypes.Link{{Node: igntypes.Node{Path: "/l"}, LinkEmbedded1: igntypes.LinkEmbedded1{Hard: ptr(true), Target: ptr("/../etc/shadow")}}}
	if checkPaths(cfg) == nil {
		t.Error("hard link target with .. accepted")
	}
	cfg.Storage.Links[0].Hard = ptr(false)
	if err := checkPaths(cfg); err != nil {
		t.Errorf("symbolic link target refused: %v", err)
	}
	cfg = igntypes.Config{}
	cfg.Storage.Files = []igntypes.File{{Node: igntypes.Node{Path: "/etc/a.conf"}}}
	cfg.Systemd.Units = []igntypes.Unit{{Name: "a.service", Dropins: []igntypes.Dropin{{Name: "10-a.conf"}}}}
	if err := checkPaths(cfg); err != nil {
		t.Errorf("good config refused: %v", err)
	}
}

// Symbolic links in the node resolve inside its root, as in the MCD's
// chroot: an absolute link and a ".." chain both stay under it.
func TestWriterLinksResolveInRoot(t *testing.T) {
	m := newDirMachine(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, m.path("abs")); err != nil { // e.g. /var/run -> /run
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../..", m.path("up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := igntypes.Config{Ignition: igntypes.Ignition{Version: "3.5.0"}}
	cfg.Storage.Files = []igntypes.File{
		file("/abs/f", "data:,in", nil),
		file("/up/etc/g", "data:,in", nil),
	}
	// The directory itself is the link: its mode goes to what it points
	// to in the node.
	cfg.Storage.Directories = []igntypes.Directory{{Node: igntypes.Node{Path: "/abs"}, DirectoryEmbedded1: igntypes.DirectoryEmbedded1{Mode: ptr(0o700)}}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, m, nil, raw)
	wantFile(t, filepath.Join(m.root, outside, "f"), "in", 0o644)
	wantFile(t, m.path("etc/g"), "in", 0o644)
	if fi, err := os.Stat(filepath.Join(m.root, outside)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory in the root: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the root: %v", entries)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("changed the mode outside the root: %v %v", fi, err)
	}
}

// Owners by name come from the node's /etc/passwd and /etc/group, which
// may be links within the node; without an owner a file keeps the writer's.
func TestWriterOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		ci.SkipOrFail(t, "chown needs root")
	}
	m := newDirMachine(t)
	if err := os.MkdirAll(m.path("usr/share/base"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("usr/share/base/passwd"), []byte("root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/base/passwd", m.path("etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("etc/group"), []byte("root:x:0:\ncore:x:1001:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	byName := file("/etc/by-name", "data:,x", nil)
	byName.User.Name = ptr("core")
	byName.Group.Name = ptr("core")
	byID := file("/etc/by-id", "data:,x", nil)
	byID.User.ID = ptr(2000)
	writeConfig(t, m, nil, ignJSON(t, []igntypes.File{byName, byID, file("/etc/nobody", "data:,x", nil)}))
	for p, want := range map[string][2]uint32{"etc/by-name": {1000, 1001}, "etc/by-id": {2000, 0}, "etc/nobody": {0, 0}} {
		fi, err := os.Stat(m.path(p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if [2]uint32{st.Uid, st.Gid} != want {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
	unknown := file("/etc/x", "data:,x", nil)
	unknown.User.Name = ptr("nosuchuser")
	if err := WriteConfig(context.Background(), m, nil, ignJSON(t, []igntypes.File{unknown})); err == nil {
		t.Error("an unknown user: no error")
	}
}

// Directories and links change only at first boot; the MCD refuses to
// change the first in place, and to add links.
func TestWriterDirectoriesAndLinks(t *testing.T) {
	m := newDirMachine(t)
	cfg := igntypes.Config{Ignition: igntypes.Ignition{Version: "3.5.0"}}
	cfg.Storage.Directories = []igntypes.Directory{{Node: igntypes.Node{Path: "/var/lib/d"}, DirectoryEmbedded1: igntypes.DirectoryEmbedded1{Mode: ptr(0o700)}}}
	cfg.Storage.Links = []igntypes.Link{{Node: igntypes.Node{Path: "/etc/l"}, LinkEmbedded1: igntypes.LinkEmbedded1{Target: ptr("/var/lib/d")}}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, m, nil, raw)
	if fi, err := os.Lstat(m.path("var/lib/d")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v", fi, err)
	}
	wantLink(t, m.path("etc/l"), "/var/lib/d")

	if err := WriteConfig(context.Background(), m, ignJSON(t, nil), raw); err == nil || !strings.Contains(err.Error(), "directories section contains changes") {
		t.Errorf("update adding directories: %v", err)
	}
	// Dropping them is fine for links, not for directories.
	cfg.Storage.Directories = nil
	noDirs, _ := json.Marshal(cfg)
	cfg.Storage.Links = nil
	if err := WriteConfig(context.Background(), m, noDirs, ignJSON(t, nil)); err != nil {
		t.Errorf("update removing links: %v", err)
	}
	wantLink(t, m.path("etc/l"), "/var/lib/d")
}
