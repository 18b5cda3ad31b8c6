package mcosim

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
)

// This file is the MCD's on-disk part of an update (MCO pkg/daemon/update.go
// updateFiles, writeUnits, enableUnits, disableUnits, deleteStaleData, and
// file_writers.go writeFiles, writeUnit, writeDropins, writeFileAtomically),
// for nodes that are machines with a real systemd. The MCD runs chrooted into
// the host (/rootfs); here every path goes under Machine.Root and symbolic
// links met on the way are resolved as in a chroot, so a link in the node
// never leads to the machine running the simulator.
//
// Not reproduced, on purpose:
//   - the orig/noorig bookkeeping (createOrigFile, restorePath): the MCD
//     backs up a file the OS image shipped before overwriting it and puts it
//     back when no config has it any more; here such a file is just deleted.
//     The simulated images have nothing under /usr/etc to restore from;
//   - the forcefile (/run/machine-config-daemon-force: rewrite every unit),
//     the certificate special cases of writeFiles (skipCertificateWrite),
//     SSH keys and passwords, kernel arguments, extensions and the OS image;
//   - workaroundOcpBugs33694 (two enablement links that old MCDs leaked).

// Machine is a node as the MCD sees it: its root file system (the MCD's
// /rootfs) and its systemctl.
type Machine interface {
	// Root is the host path under which the node's "/" is seen, e.g.
	// /proc/<pid>/root of a running node, or a temp dir in tests.
	Root() string
	// Systemctl runs systemctl on the node with args (e.g. "enable",
	// "kubens.service").
	Systemctl(ctx context.Context, args ...string) error
}

// The MCD's paths and defaults (pkg/daemon/daemon.go, file_writers.go).
const (
	pathSystemd                 = "/etc/systemd/system"
	pathDevNull                 = "/dev/null"
	defaultFilePermissions      = os.FileMode(0o644)
	defaultDirectoryPermissions = os.FileMode(0o755)
	imageCAFilePath             = "/etc/docker/certs.d"
)

// certsToSkip are the files deleteStaleData never deletes, even when the new
// config no longer has them: the certificate writer owns them.
var certsToSkip = []string{
	"/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
	"/etc/kubernetes/kubelet-ca.crt",
	"/etc/kubernetes/static-pod-resources/configmaps/cloud-config/ca-bundle.pem",
}

// WriteConfig writes newConfig (a rendered Ignition 3.x config, raw JSON as
// stored in a MachineConfig) into m, like the MCD's update from oldConfig;
// oldConfig nil means first boot (write everything, like Ignition +
// machine-config-daemon-firstboot).
//
// As in updateFiles: every file of newConfig is written, then the units
// that were added or changed since oldConfig (with their enablement), then
// what oldConfig had and newConfig has not is deleted. Nothing reloads or
// restarts systemd: the reboot that follows picks the changes up.
func WriteConfig(ctx context.Context, m Machine, oldConfig, newConfig []byte) error {
	newCfg, err := parseAndConvert(newConfig)
	if err != nil {
		return fmt.Errorf("new config: %w", err)
	}
	firstBoot := oldConfig == nil
	var oldCfg igntypes.Config
	if !firstBoot {
		if oldCfg, err = parseAndConvert(oldConfig); err != nil {
			return fmt.Errorf("old config: %w", err)
		}
	}
	// Refuse a bad path before anything is written, so that a config that
	// cannot be applied leaves the node as it was.
	if err := checkPaths(oldCfg); err != nil {
		return fmt.Errorf("old config: %w", err)
	}
	if err := checkPaths(newCfg); err != nil {
		return fmt.Errorf("new config: %w", err)
	}
	r := nodeRoot(m.Root())

	if firstBoot {
		// Ignition's part, which the MCD never does: directories and links.
		if err := r.writeDirectories(newCfg.Storage.Directories); err != nil {
			return err
		}
	} else if err := checkStorageReconcilable(oldCfg, newCfg); err != nil {
		return err
	}
	if err := r.writeFiles(newCfg.Storage.Files); err != nil {
		return err
	}
	if firstBoot {
		if err := r.writeLinks(newCfg.Storage.Links); err != nil {
			return err
		}
	}
	if err := r.writeUnits(ctx, m, addedOrChangedUnits(oldCfg, newCfg)); err != nil {
		return err
	}
	return r.deleteStaleData(ctx, m, oldCfg, newCfg)
}

// checkStorageReconcilable is the storage part of the MCO's
// isConfigReconcilable that concerns WriteConfig: the MCD cannot change
// directories or add links in place (removing links is allowed, and leaves
// them on disk).
func checkStorageReconcilable(oldCfg, newCfg igntypes.Config) error {
	if !reflect.DeepEqual(oldCfg.Storage.Directories, newCfg.Storage.Directories) {
		return fmt.Errorf("ignition directories section contains changes")
	}
	if !reflect.DeepEqual(oldCfg.Storage.Links, newCfg.Storage.Links) && len(newCfg.Storage.Links) != 0 {
		return fmt.Errorf("ignition links section contains changes")
	}
	return nil
}

// addedOrChangedUnits is GetChangedConfigUnitsByType's Added and Updated:
// since OCPBUGS-58023 the MCD writes (and enables, disables or presets)
// only those. They come in newCfg's order; the MCO's come in map order.
func addedOrChangedUnits(oldCfg, newCfg igntypes.Config) []igntypes.Unit {
	old := map[string]igntypes.Unit{}
	for _, u := range oldCfg.Systemd.Units {
		old[u.Name] = u
	}
	var out []igntypes.Unit
	for _, u := range newCfg.Systemd.Units {
		if o, ok := old[u.Name]; !ok || !reflect.DeepEqual(o, u) {
			out = append(out, u)
		}
	}
	return out
}

// checkPaths refuses what would land outside the node's root: paths that
// are not absolute or have a ".." element, and unit or drop-in names that
// are not plain file names.
func checkPaths(cfg igntypes.Config) error {
	for _, f := range cfg.Storage.Files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
	}
	for _, d := range cfg.Storage.Directories {
		if err := checkPath(d.Path); err != nil {
			return err
		}
	}
	for _, l := range cfg.Storage.Links {
		if err := checkPath(l.Path); err != nil {
			return err
		}
		// A hard link's target is a path on the node, opened by us; a
		// symbolic link's is only stored and resolved by the node.
		if l.Hard != nil && *l.Hard && l.Target != nil {
			if err := checkPath(*l.Target); err != nil {
				return err
			}
		}
	}
	for _, u := range cfg.Systemd.Units {
		if err := checkName(u.Name); err != nil {
			return fmt.Errorf("unit: %w", err)
		}
		for _, d := range u.Dropins {
			if err := checkName(d.Name); err != nil {
				return fmt.Errorf("drop-in of %s: %w", u.Name, err)
			}
		}
	}
	return nil
}

func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is not absolute", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return fmt.Errorf("path %q has a \"..\" element", p)
		}
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q has a NUL byte", p)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("name %q is not a file name", name)
	}
	return nil
}

// nodeRoot is the host path of a node's "/".
type nodeRoot string

// maxLinkHops is the kernel's limit of symbolic links followed in a lookup.
const maxLinkHops = 40

// hostPath is the host path of the node path p (absolute, checked by
// checkPath). The directories leading to p are resolved as the node sees
// them: a symbolic link is followed within the node's root (an absolute
// target starts at the root, ".." stops there). p's last element is not
// followed, as the MCD's rename and remove do not follow it either. With
// create, missing directories are made with defaultDirectoryPermissions, as
// the MCD's os.MkdirAll does; without it a missing one is an error for which
// os.IsNotExist is true.
func (r nodeRoot) hostPath(p string, create bool) (string, error) {
	return r.resolve(p, create, false)
}

// resolve is hostPath, and with followLast p's last element is resolved too
// (for what is read, or made a directory, through it): the host path it
// gives is then never a symbolic link, which the host would follow out of
// the root.
func (r nodeRoot) resolve(p string, create, followLast bool) (string, error) {
	rest, last := path.Clean(p), ""
	if !followLast {
		rest, last = path.Split(rest)
	}
	pending := strings.Split(strings.Trim(rest, "/"), "/")
	resolved := "/"
	hops := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, elem)
		host := filepath.Join(string(r), next)
		fi, err := os.Lstat(host)
		if os.IsNotExist(err) && create {
			if err = os.Mkdir(host, defaultDirectoryPermissions); err != nil && !os.IsExist(err) {
				return "", err
			}
			fi, err = os.Lstat(host)
		}
		if err != nil {
			return "", err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if hops++; hops > maxLinkHops {
				return "", &os.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(host)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				resolved = "/"
			}
			pending = append(strings.Split(target, "/"), pending...)
		case fi.IsDir() || len(pending) == 0:
			resolved = next
		default:
			return "", &os.PathError{Op: "resolve", Path: p, Err: syscall.ENOTDIR}
		}
	}
	return filepath.Join(string(r), resolved, last), nil
}

// writeFiles is file_writers.go writeFiles: contents decoded (no remote
// sources), mode defaultFilePermissions unless given, written atomically.
// Unlike the MCD, which chowns every file (root:root unless the config
// says otherwise), a file is chowned only when the config names an owner:
// the simulator may run outside the node's user namespace, where root is
// not the node's root, and is root itself when it is not.
func (r nodeRoot) writeFiles(files []igntypes.File) error {
	for _, f := range files {
		if len(f.Append) > 0 {
			return fmt.Errorf("found an append section when writing files. Append is not supported")
		}
		data, err := decodeContents(f.Contents.Source, f.Contents.Compression)
		if err != nil {
			return fmt.Errorf("could not decode file %q: %w", f.Path, err)
		}
		mode := defaultFilePermissions
		if f.Mode != nil {
			mode = os.FileMode(*f.Mode) //nolint:gosec // validated by Ignition, as the MCD takes it
		}
		uid, gid, err := r.ownership(f.Node)
		if err != nil {
			return fmt.Errorf("failed to retrieve file ownership for file %q: %w", f.Path, err)
		}
		if err := r.writeFileAtomically(f.Path, data, mode, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// decodeContents is the MCO's DecodeIgnitionFileContents: a data URL
// (base64 or percent-encoded), gzip-compressed or not; no source is an empty
// file.
func decodeContents(source, compression *string) ([]byte, error) {
	if source == nil {
		return nil, nil
	}
	u, err := dataurl.DecodeString(*source)
	if err != nil {
		return nil, fmt.Errorf("could not decode file content string: %w", err)
	}
	if compression == nil || *compression == "" {
		return u.Data, nil
	}
	if *compression != "gzip" {
		return nil, fmt.Errorf("unsupported compression type %q", *compression)
	}
	zr, err := gzip.NewReader(bytes.NewReader(u.Data))
	if err != nil {
		return nil, fmt.Errorf("could not create gzip reader: %w", err)
	}
	defer func() { _ = zr.Close() }()
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("failed decompressing: %w", err)
	}
	return data, nil
}

// ownership is getFileOwnership: IDs as given, names looked up in the
// node's /etc/passwd and /etc/group (the MCD's lookups run chrooted in the
// node too). -1 means not given.
func (r nodeRoot) ownership(n igntypes.Node) (uid, gid int, err error) {
	uid, gid = -1, -1
	switch {
	case n.User.ID != nil:
		uid = *n.User.ID
	case n.User.Name != nil && *n.User.Name != "":
		if uid, err = r.lookupID("/etc/passwd", *n.User.Name); err != nil {
			return 0, 0, fmt.Errorf("failed to retrieve UserID for username: %s: %w", *n.User.Name, err)
		}
	}
	switch {
	case n.Group.ID != nil:
		gid = *n.Group.ID
	case n.Group.Name != nil && *n.Group.Name != "":
		if gid, err = r.lookupID("/etc/group", *n.Group.Name); err != nil {
			return 0, 0, fmt.Errorf("failed to retrieve GroupID for group: %v: %w", *n.Group.Name, err)
		}
	}
	return uid, gid, nil
}

// lookupID finds name in a passwd or group file of the node: both have the
// ID in the third field.
func (r nodeRoot) lookupID(file, name string) (int, error) {
	host, err := r.resolve(file, false, true)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(host)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Split(line, ":")
		if len(fields) >= 3 && fields[0] == name {
			return strconv.Atoi(fields[2])
		}
	}
	return 0, fmt.Errorf("%s not in %s", name, file)
}

// writeFileAtomically is file_writers.go writeFileAtomically (renameio): a
// temporary file in the same directory, the mode set before the data goes
// in, chown when asked, fsync, then rename over the path. A reader, or a
// crash, never sees half a file.
func (r nodeRoot) writeFileAtomically(p string, data []byte, mode os.FileMode, uid, gid int) error {
	host, err := r.hostPath(p, true)
	if err != nil {
		return fmt.Errorf("failed to create directory for %q: %w", p, err)
	}
	t, err := os.CreateTemp(filepath.Dir(host), "."+filepath.Base(host)+".tmp")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = t.Close()
			_ = os.Remove(t.Name())
		}
	}()
	if err := t.Chmod(mode); err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		return err
	}
	if uid != -1 || gid != -1 {
		if err := t.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := t.Sync(); err != nil {
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.Name(), host); err != nil {
		return err
	}
	done = true
	return nil
}

// symlinkAtomically replaces p with a symbolic link to target the way
// renameio.Symlink does: a temporary link renamed over p.
func (r nodeRoot) symlinkAtomically(target, p string) error {
	host, err := r.hostPath(p, true)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(host), "."+filepath.Base(host)+".tmplink")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, host); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// remove deletes p (not what it links to); a p that is not there, or whose
// directory is not, is no error, as deleteStaleData only warns about it.
func (r nodeRoot) remove(p string) error {
	host, err := r.hostPath(p, false)
	if err == nil {
		err = os.Remove(host)
	}
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("unable to delete %s: %w", p, err)
	}
	return nil
}

// removeAll is os.RemoveAll of p under the root (writeUnit clears a unit's
// path that way before masking it, or when mask is false).
func (r nodeRoot) removeAll(p string) error {
	host, err := r.hostPath(p, false)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.RemoveAll(host)
}

// writeDirectories and writeLinks stand in for Ignition's files stage at
// first boot; after that the MCD refuses to change either (see
// checkStorageReconcilable).
func (r nodeRoot) writeDirectories(dirs []igntypes.Directory) error {
	for _, d := range dirs {
		mode := defaultDirectoryPermissions
		if d.Mode != nil {
			mode = os.FileMode(*d.Mode) //nolint:gosec // validated by Ignition
		}
		host, err := r.resolve(d.Path, true, true)
		var fi os.FileInfo
		if err == nil {
			fi, err = os.Stat(host)
		}
		if err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
		if err == nil {
			err = os.Chmod(host, mode)
		}
		if err != nil {
			return fmt.Errorf("creating directory %q: %w", d.Path, err)
		}
		uid, gid, err := r.ownership(d.Node)
		if err != nil {
			return err
		}
		if uid != -1 || gid != -1 {
			if err := os.Lchown(host, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r nodeRoot) writeLinks(links []igntypes.Link) error {
	for _, l := range links {
		if l.Target == nil {
			return fmt.Errorf("link %q has no target", l.Path)
		}
		if l.Hard == nil || !*l.Hard {
			if err := r.symlinkAtomically(*l.Target, l.Path); err != nil {
				return fmt.Errorf("creating link %q: %w", l.Path, err)
			}
			continue
		}
		target, err := r.hostPath(*l.Target, false)
		if err != nil {
			return fmt.Errorf("creating hard link %q: %w", l.Path, err)
		}
		host, err := r.hostPath(l.Path, true)
		if err != nil {
			return fmt.Errorf("creating hard link %q: %w", l.Path, err)
		}
		if err := os.Remove(host); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Link(target, host); err != nil {
			return fmt.Errorf("creating hard link %q: %w", l.Path, err)
		}
	}
	return nil
}

// unitHasContent is file_writers.go unitHasContent.
func unitHasContent(u igntypes.Unit) bool {
	return u.Contents != nil && *u.Contents != ""
}

// writeUnits is update.go writeUnits: each unit written (writeUnit), then
// one `systemctl enable` with every unit to enable and one `systemctl
// disable` with every unit to disable. A unit that says nothing about
// enablement gets `systemctl preset`, whose failure is no error (a drop-in
// may belong to a unit that does not exist). A unit to enable or disable
// that has no contents is skipped unless its unit file exists on the node
// (OCPBUGS-56648): the MCD asks systemd over D-Bus which unit files exist,
// before writing anything; here that is `systemctl list-unit-files <name>`,
// which fails when there is none.
func (r nodeRoot) writeUnits(ctx context.Context, m Machine, units []igntypes.Unit) error {
	exists := map[string]bool{}
	for _, u := range units {
		if u.Enabled != nil && !unitHasContent(u) {
			exists[u.Name] = m.Systemctl(ctx, "list-unit-files", "--no-pager", "--no-legend", u.Name) == nil
		}
	}
	var enable, disable []string
	for _, u := range units {
		if err := r.writeUnit(ctx, m, u); err != nil {
			return fmt.Errorf("daemon could not write systemd unit: %w", err)
		}
		switch {
		case u.Enabled == nil:
			_ = m.Systemctl(ctx, "preset", u.Name)
		case !unitHasContent(u) && !exists[u.Name]:
			// The MCD logs "Could not enable unit ..., because it has no
			// contents, skipping" and goes on.
		case *u.Enabled:
			enable = append(enable, u.Name)
		default:
			disable = append(disable, u.Name)
		}
	}
	if len(enable) > 0 {
		if err := m.Systemctl(ctx, append([]string{"enable"}, enable...)...); err != nil {
			// enableUnits: on RHCOS any failure fails them all (the
			// broken-symlink retry is for RHEL 7 only).
			return fmt.Errorf("error enabling units: %w", err)
		}
	}
	if len(disable) > 0 {
		if err := m.Systemctl(ctx, append([]string{"disable"}, disable...)...); err != nil {
			return fmt.Errorf("error disabling unit: %w", err)
		}
	}
	return nil
}

// writeUnit is file_writers.go writeUnit: drop-ins first; then a masked unit
// becomes a link to /dev/null; a unit with contents is written, after a
// `systemctl disable` when it is enabled now, since the new text may change
// its [Install] section (OCPBUGS-33694) and writeUnits enables it again as
// the config says; mask:false with no contents removes an earlier mask.
//
// The MCD disables only when `systemctl is-enabled` prints "enabled";
// Machine.Systemctl gives no output, so any state is-enabled reports with
// success (also static, alias, indirect, generated) disables here. Disabling
// such a unit changes nothing that writeUnits does not set again.
func (r nodeRoot) writeUnit(ctx context.Context, m Machine, u igntypes.Unit) error {
	if err := r.writeDropins(u); err != nil {
		return err
	}
	p := path.Join(pathSystemd, u.Name)
	switch {
	case u.Mask != nil && *u.Mask:
		if err := r.removeAll(p); err != nil {
			return fmt.Errorf("failed to remove unit %q: %w", u.Name, err)
		}
		if err := r.symlinkAtomically(pathDevNull, p); err != nil {
			return fmt.Errorf("failed to symlink unit %q to %s: %w", u.Name, pathDevNull, err)
		}
	case unitHasContent(u):
		if m.Systemctl(ctx, "is-enabled", "--quiet", u.Name) == nil {
			if err := m.Systemctl(ctx, "disable", u.Name); err != nil {
				return fmt.Errorf("disabling %s failed: %w", u.Name, err)
			}
		}
		if err := r.writeFileAtomically(p, []byte(*u.Contents), defaultFilePermissions, -1, -1); err != nil {
			return fmt.Errorf("failed to write systemd unit %q: %w", u.Name, err)
		}
	case u.Mask != nil && !*u.Mask:
		if err := r.removeAll(p); err != nil {
			return fmt.Errorf("failed to cleanup %s: %w", p, err)
		}
	}
	return nil
}

// writeDropins is file_writers.go writeDropins: a drop-in with contents is
// written; one with none (nil or "") is removed if it is there, which is how
// a config takes back a drop-in that another config of the pool still names.
func (r nodeRoot) writeDropins(u igntypes.Unit) error {
	for _, d := range u.Dropins {
		p := path.Join(pathSystemd, u.Name+".d", d.Name)
		if d.Contents == nil || *d.Contents == "" {
			if err := r.remove(p); err != nil {
				return err
			}
			continue
		}
		if err := r.writeFileAtomically(p, []byte(*d.Contents), defaultFilePermissions, -1, -1); err != nil {
			return fmt.Errorf("failed to write systemd unit dropin %q: %w", d.Name, err)
		}
	}
	return nil
}

// deleteStaleData is update.go deleteStaleData: files, drop-ins and units
// of oldCfg that newCfg has not are deleted (a missing one is fine). Kept:
// the certificate files, and a file whose path newCfg now has as a
// drop-in. A unit is preset before its file goes, so that its enablement
// links follow the presets rather than dangle; a preset failure is no
// error.
func (r nodeRoot) deleteStaleData(ctx context.Context, m Machine, oldCfg, newCfg igntypes.Config) error {
	newFiles := map[string]bool{}
	for _, f := range newCfg.Storage.Files {
		newFiles[f.Path] = true
	}
	newUnits := map[string]bool{}
	newDropins := map[string]bool{}
	newDropinNames := map[[2]string]bool{} // unit, drop-in
	for _, u := range newCfg.Systemd.Units {
		newUnits[path.Join(pathSystemd, u.Name)] = true
		for _, d := range u.Dropins {
			newDropins[path.Join(pathSystemd, u.Name+".d", d.Name)] = true
			newDropinNames[[2]string{u.Name, d.Name}] = true
		}
	}

	for _, f := range oldCfg.Storage.Files {
		if newFiles[f.Path] || isCert(f.Path) {
			continue
		}
		// A file that became a drop-in of the same name (isPathInDropins).
		if unit, name, ok := dropinOf(f.Path); ok && newDropinNames[[2]string{unit, name}] {
			continue
		}
		if err := r.remove(f.Path); err != nil {
			return err
		}
	}
	for _, u := range oldCfg.Systemd.Units {
		for _, d := range u.Dropins {
			p := path.Join(pathSystemd, u.Name+".d", d.Name)
			if newDropins[p] {
				continue
			}
			if err := r.remove(p); err != nil {
				return err
			}
		}
		p := path.Join(pathSystemd, u.Name)
		if newUnits[p] {
			continue
		}
		_ = m.Systemctl(ctx, "preset", u.Name)
		if err := r.remove(p); err != nil {
			return err
		}
	}
	return nil
}

func isCert(p string) bool {
	for _, c := range certsToSkip {
		if p == c {
			return true
		}
	}
	return strings.Contains(filepath.Dir(p), imageCAFilePath)
}

// dropinOf is isPathASystemdDropin: the unit and drop-in name of a path
// under /etc/systemd/system that ends in <unit>.d/<name>.conf.
func dropinOf(p string) (unit, name string, ok bool) {
	if !strings.HasPrefix(p, pathSystemd) || !strings.HasSuffix(p, ".conf") {
		return "", "", false
	}
	dir, name := path.Split(p)
	unit, isDropinDir := strings.CutSuffix(path.Base(dir), ".d")
	return unit, name, isDropinDir
}
