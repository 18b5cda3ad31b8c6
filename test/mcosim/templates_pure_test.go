package mcosim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vincent-petithory/dataurl"
)

// wantKubensUnit is kubens.service as the MCO ships it since OCPBUGS-83562
// (the module's text plus the /run/netns step). Compared byte for byte: a
// kubensmnt release that changes the unit must fail here and be looked at.
const wantKubensUnit = `[Unit]
Description=Manages a mount namespace for kubernetes-specific mounts

[Service]
Type=oneshot
RemainAfterExit=yes
RuntimeDirectory=kubens
Environment=RUNTIME_DIRECTORY=%t/kubens
Environment=BIND_POINT=%t/kubens/mnt
Environment=ENVFILE=%t/kubens/env

# Set up the runtime directory as an unbindable mountpoint
ExecStartPre=bash -c "findmnt ${RUNTIME_DIRECTORY} || mount --make-unbindable --bind ${RUNTIME_DIRECTORY} ${RUNTIME_DIRECTORY}"
# Ensure the bind point exists
ExecStartPre=touch ${BIND_POINT}
# Use 'unshare' to create the new mountpoint, then 'mount --make-rshared' so it cascades internally
ExecStart=unshare --mount=${BIND_POINT} --propagation slave mount --make-rshared /
# Finally, set an env pointer for ease-of-use
ExecStartPost=bash -c 'echo "KUBENSMNT=${BIND_POINT}" > "${ENVFILE}"'
# Make sure /run/netns is a mount point before CRI-O starts (OCPBUGS-83562)
ExecStartPost=bash -c "ip netns add kubensmnt && ip netns delete kubensmnt || mountpoint -q /run/netns"

# On stop, a recursive unmount cleans up the namespace and bind-mounted unbindable parent directory
ExecStop=umount -R ${RUNTIME_DIRECTORY}

[Install]
WantedBy=multi-user.target
`

func TestTemplateKubensUnit(t *testing.T) {
	if got := kubensUnitContents(); got != wantKubensUnit {
		t.Errorf("kubens.service differs from the expected text:\n%s", got)
	}
}

func TestTemplateInsertAfter(t *testing.T) {
	if got := mustInsertAfter("a\nb=1\nc\n", "b=", "x\n"); got != "a\nb=1\nx\nc\n" {
		t.Errorf("got %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a text without the line")
		}
	}()
	mustInsertAfter("a\nc\n", "b=", "x\n")
}

// The base config is what WriteConfig and the harness get: a valid 3.5
// config with the module's drop-in verbatim on kubelet and CRI-O, the
// kubelet unit the harness nodes run, kubens disabled, the wrapper, and no
// firstboot unit.
func TestTemplateBaseConfig(t *testing.T) {
	raw := BaseConfigRaw("worker")
	parsed, err := parseAnySpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateIgnition(parsed); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseAndConvert(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(BaseConfigRaw("master")) != string(raw) {
		t.Error("the base config's Ignition differs by role")
	}

	dropin := kubensDropin()
	for _, line := range []string{"After=kubens.service", "EnvironmentFile=-/run/kubens/env"} {
		if !strings.Contains(dropin, "\n"+line+"\n") {
			t.Errorf("drop-in has no %q line:\n%s", line, dropin)
		}
	}
	seen := map[string]bool{}
	for _, u := range cfg.Systemd.Units {
		seen[u.Name] = true
		switch u.Name {
		case "crio.service", "kubelet.service":
			if len(u.Dropins) != 1 || u.Dropins[0].Name != "01-kubens.conf" ||
				u.Dropins[0].Contents == nil || *u.Dropins[0].Contents != dropin {
				t.Errorf("%s drop-ins = %+v", u.Name, u.Dropins)
			}
			if u.Name == "crio.service" && (u.Contents != nil || u.Enabled != nil) {
				t.Error("crio.service has contents or enablement; the image ships it")
			}
			if u.Name == "kubelet.service" {
				if u.Enabled == nil || !*u.Enabled || u.Contents == nil || *u.Contents != kubeletUnitContents {
					t.Errorf("kubelet.service = %+v", u)
				}
			}
		case KubensUnit:
			if u.Enabled == nil || *u.Enabled || u.Contents == nil || *u.Contents != wantKubensUnit {
				t.Errorf("kubens.service = %+v", u)
			}
		default:
			t.Errorf("unexpected unit %s", u.Name)
		}
	}
	for _, name := range []string{"crio.service", "kubelet.service", KubensUnit} {
		if !seen[name] {
			t.Errorf("no %s", name)
		}
	}
	if strings.Contains(kubeletUnitContents, "{{") {
		t.Error("kubelet.service has a template placeholder left")
	}

	if len(cfg.Storage.Files) != 1 {
		t.Fatalf("files = %+v", cfg.Storage.Files)
	}
	f := cfg.Storage.Files[0]
	if f.Path != kubenswrapperPath || f.Mode == nil || *f.Mode != 0o755 || f.Contents.Source == nil {
		t.Fatalf("kubenswrapper = %+v", f)
	}
	u, err := dataurl.DecodeString(*f.Contents.Source)
	if err != nil {
		t.Fatal(err)
	}
	if string(u.Data) != kubenswrapperContents {
		t.Errorf("kubenswrapper contents = %q", u.Data)
	}
}

// Without /usr/bin/kubensenter the wrapper runs its arguments as they are,
// exit status and all.
func TestTemplateKubenswrapperWithoutKubensenter(t *testing.T) {
	if _, err := os.Stat("/usr/bin/kubensenter"); err == nil {
		t.Skip("this machine has /usr/bin/kubensenter")
	}
	script := filepath.Join(t.TempDir(), "kubenswrapper")
	if err := os.WriteFile(script, []byte(kubenswrapperContents), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(script, "sh", "-c", `printf '%s|' "$@"; exit 3`, "sh", "a b", "c").Output()
	if string(out) != "a b|c|" {
		t.Errorf("output %q", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("err = %v, want exit status 3", err)
	}
}

func TestTemplateKubensenterScript(t *testing.T) {
	s := KubensenterScript()
	if !strings.HasPrefix(s, "#!/bin/bash\n") || !strings.Contains(s, "nsenter") || !strings.Contains(s, "KUBENSMNT") {
		t.Errorf("not the kubensenter script:\n%.200s", s)
	}
}
