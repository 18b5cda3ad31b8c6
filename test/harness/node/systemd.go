package node

// A node whose PID 1 is systemd (Debian's systemd 252) in the node's own PID,
// mount, UTS and cgroup namespaces: the base of the RHCOS-like nodes
// (rhcos.go), which add CRI-O and the kubelet as units.
//
// The hazard (../shared/HARNESS.md): a systemd that sees the host's cgroup
// tmpfs remounts it read-only and creates folders in it, which breaks every
// later cgroup user on the machine. So the node's PID 1 is moved into a
// per-node group in every hierarchy before the namespaces are made, the new
// cgroup namespace is rooted there, and inside the node the copies of the
// host's cgroup mounts are unmounted (private propagation: the host keeps
// its own) and replaced by a fresh tmpfs with each hierarchy mounted anew.
// That tmpfs is made read-only (a per-mount bind remount, never a superblock
// change) before systemd starts, so systemd cannot mount controllers the
// host has left unbound either.
//
// The node's files: every path the MachineConfig daemon writes is a per-node
// folder (SystemdNodeFolders) bound over that path inside the node; /etc as
// a whole is an overlay whose upper layer is per-node (so missing mount
// points such as /etc/crio can be made, and stray writes stay in the node).
// /usr/lib/systemd/system is the node's own read-only "image" unit folder
// with a few harmless targets copied from the host, its preset folder holds
// RHCOS's "disable *" policy, and the generator folders are empty: the host's sysinit units (systemd-tmpfiles-setup would
// empty the host's /tmp, systemd-sysctl would rewrite host sysctls) and its
// enablement symlinks are never seen by the node. /run is a fresh tmpfs at
// every boot; the per-node folders persist across Reboot.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// SystemdBin is systemd's binary (Debian's systemd 252).
const SystemdBin = "/usr/bin/systemd"

// SystemdBootTarget is the node's default boot target: it has
// DefaultDependencies=no and wants only what is linked into
// /etc/systemd/system/oc-kubens-node.target.wants (or installed with
// WantedBy=oc-kubens-node.target), so a node boots in about a second.
const SystemdBootTarget = "oc-kubens-node.target"

// SystemdNodeFolders are the paths inside a systemd node that are per-node
// folders (Dir/fs/<path> on the host), bound over the node's path: what the
// MachineConfig daemon writes (units and their enablement, kubelet and CRI-O
// configuration, scripts) and the node's persistent state (/var/lib, /var/log).
var SystemdNodeFolders = []string{
	"/etc/systemd/system",
	"/etc/kubernetes",
	"/etc/crio",
	"/etc/containers",
	"/etc/sysconfig",
	"/etc/mco",
	"/usr/local/bin",
	"/var/lib",
	"/var/log",
	"/var/tmp",
}

// systemdImageUnits are copied from the host's /lib/systemd/system into the
// node's /usr/lib/systemd/system: targets that only order other targets, and
// the halt/poweroff/reboot/exit services (systemctl --force ...) that
// SIGRTMIN+3 and friends start. Their .wants folders are not copied.
var systemdImageUnits = []string{
	"basic.target", "sysinit.target", "multi-user.target", "default.target",
	"network.target", "network-pre.target", "network-online.target",
	"local-fs.target", "local-fs-pre.target", "remote-fs.target", "remote-fs-pre.target",
	"sockets.target", "timers.target", "paths.target", "slices.target", "swap.target",
	"shutdown.target", "umount.target", "final.target",
	"halt.target", "poweroff.target", "reboot.target", "exit.target",
	"systemd-halt.service", "systemd-poweroff.service", "systemd-reboot.service", "systemd-exit.service",
}

// The sysctls systemd 252 writes as PID 1 (core_pattern to "|/bin/false",
// fs.file-max and fs.nr_open raised, net.unix.max_dgram_qlen raised): they
// are the host's (not namespaced, or the node shares the host's network
// namespace), so they are bound read-only inside the node and systemd's
// writes fail harmlessly.
var systemdReadOnlySysctls = []string{
	"kernel/core_pattern", "fs/file-max", "fs/nr_open", "net/unix/max_dgram_qlen",
}

// SystemdConfig describes a systemd node.
type SystemdConfig struct {
	Name string // node name, also its hostname
	// Dir is the node's folder on the host; not under the paths the node
	// hides (/run, /var/lib, /var/log, /var/tmp, /etc, /usr).
	Dir string
	// CgroupRoot is the node's group in every hierarchy, e.g.
	// "/oc-kubens-<cluster>/<node>": the root of its cgroup namespace.
	CgroupRoot string
	// Target is the unit systemd boots (SystemdBootTarget when empty).
	Target string
	// State, when set, records the node's processes so that a crashed run's
	// node is killed by the next run.
	State *testenv.State
	// Overlays are host folders the node sees as overlays with a per-node
	// upper layer (besides /etc, which always is one): the node's "image"
	// can add files there (e.g. /usr/bin/crio) without touching the host.
	Overlays []string
	// ImageFiles are written into the node's own paths before every boot
	// (path inside the node -> content; mode 0755 for paths under a bin
	// folder, else 0644): its "OS image" units and programs. Symlinks are
	// given as "symlink:<target>".
	ImageFiles map[string]string
}

// SystemdNode is a running (or stopped) systemd node.
type SystemdNode struct {
	Name string
	cfg  SystemdConfig

	mu      sync.Mutex
	wrapper *proc // sh -> taskset -> unshare; its child is systemd
	pid     int   // host PID of systemd, the node's PID 1
	// BootDuration is how long the last boot took, from starting the
	// namespace until `systemctl is-system-running --wait` returned.
	bootDuration time.Duration
}

// StartSystemd writes the node's files and boots it.
func StartSystemd(ctx context.Context, cfg SystemdConfig) (*SystemdNode, error) {
	if cfg.Target == "" {
		cfg.Target = SystemdBootTarget
	}
	if cfg.Name == "" || cfg.Dir == "" || cfg.CgroupRoot == "" || strings.Trim(cfg.CgroupRoot, "/") == "" {
		return nil, errors.New("systemd node: Name, Dir and CgroupRoot (not /) are required")
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	for _, hidden := range append([]string{"/run", "/etc", "/usr"}, SystemdNodeFolders...) {
		if strings.HasPrefix(cfg.Dir+"/", hidden+"/") {
			return nil, fmt.Errorf("systemd node folder %s is under %s, which the node hides", cfg.Dir, hidden)
		}
	}
	if _, err := os.Stat(SystemdBin); err != nil {
		return nil, fmt.Errorf("systemd node: %w", err)
	}
	n := &SystemdNode{Name: cfg.Name, cfg: cfg}
	if err := n.writeFiles(); err != nil {
		return nil, err
	}
	if err := n.boot(ctx); err != nil {
		return nil, errors.Join(err, n.Stop(context.Background()))
	}
	return n, nil
}

// Dir is the node's folder on the host (console.log, setup.log, fs/...).
func (n *SystemdNode) Dir() string { return n.cfg.Dir }

// PID is the host PID of the node's systemd (0 when stopped).
func (n *SystemdNode) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pid
}

// BootDuration is how long the last boot took (namespace creation to
// systemd's boot job finished).
func (n *SystemdNode) BootDuration() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootDuration
}

// HostPath is where the node's path p lives on the host: in its per-node
// folder (written from the host, the node sees the change at once). Paths in
// /etc outside those folders live in the /etc overlay's upper layer: write
// those only while the node is stopped (an overlay may not notice changes
// made to its layers while mounted).
func (n *SystemdNode) HostPath(p string) (string, error) {
	p = filepath.Clean("/" + p)
	for _, f := range SystemdNodeFolders {
		if p == f || strings.HasPrefix(p, f+"/") {
			return filepath.Join(n.cfg.Dir, "fs", p), nil
		}
	}
	if p == "/usr/lib/systemd/system" || strings.HasPrefix(p, "/usr/lib/systemd/system/") {
		return filepath.Join(n.cfg.Dir, "fs", p), nil
	}
	for _, o := range n.overlays() {
		if rel, ok := strings.CutPrefix(p, o+"/"); ok {
			return filepath.Join(n.cfg.Dir, overlayDir(o), "upper", rel), nil
		}
	}
	return "", fmt.Errorf("%s is not one of the node's own paths", p)
}

// overlays are the node's overlay mount points: /etc, then cfg.Overlays.
func (n *SystemdNode) overlays() []string {
	return append([]string{"/etc"}, n.cfg.Overlays...)
}

// overlayDir is the folder (under the node's folder) of the overlay on p:
// "etc-overlay" for /etc, "usr-bin-overlay" for /usr/bin.
func overlayDir(p string) string {
	return strings.ReplaceAll(strings.Trim(p, "/"), "/", "-") + "-overlay"
}

// Command is a command run inside the node: its PID, mount, UTS and cgroup
// namespaces (nsenter -t PID -m -p -u -C), with a plain root environment.
func (n *SystemdNode) Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	pid := n.PID()
	if pid == 0 {
		return nil, fmt.Errorf("systemd node %s is not running", n.Name)
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(pid), "--mount", "--pid", "--uts", "--cgroup", "--wd=/", "--", name}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	return cmd, nil
}

// Exec runs a command inside the node and returns its combined output.
func (n *SystemdNode) Exec(ctx context.Context, name string, args ...string) (string, error) {
	cmd, err := n.Command(ctx, name, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("node %s: %s %s: %w\n%s", n.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Systemctl runs systemctl inside the node.
func (n *SystemdNode) Systemctl(ctx context.Context, args ...string) (string, error) {
	return n.Exec(ctx, "systemctl", append([]string{"--no-pager"}, args...)...)
}

// Reboot stops the node and boots a fresh systemd with the same per-node
// folders: files and enablement symlinks survive, /run is new.
func (n *SystemdNode) Reboot(ctx context.Context) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	return n.boot(ctx)
}

// sigHalt is SIGRTMIN+3, systemd's "halt" signal. glibc's SIGRTMIN is 34
// (it keeps the kernel's first two real-time signals), so this is 37, what
// `kill -s RTMIN+3` sends. As PID 1 systemd ignores SIGTERM.
const sigHalt = syscall.Signal(37)

// systemdHaltGrace is how long Stop waits after SIGRTMIN+3 (halt) before
// SIGKILLing the node's PID 1.
const systemdHaltGrace = 10 * time.Second

// Stop halts the node: SIGRTMIN+3 (systemd stops its units and exits), then
// SIGKILL from outside after a grace period, which takes every process of
// the node's PID namespace with it. Then the node's groups are removed.
func (n *SystemdNode) Stop(ctx context.Context) error {
	n.mu.Lock()
	w, pid := n.wrapper, n.pid
	n.wrapper, n.pid = nil, 0
	n.mu.Unlock()
	var errs []error
	if w != nil && !w.exited() {
		if pid > 0 {
			_ = syscall.Kill(pid, sigHalt)
		}
		select {
		case <-w.done:
		case <-time.After(systemdHaltGrace):
		case <-ctx.Done():
		}
		if !w.exited() {
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-w.done:
			case <-time.After(5 * time.Second):
				errs = append(errs, fmt.Errorf("systemd node %s: PID 1 (%d) does not exit", n.Name, pid))
			}
		}
	}
	if n.cfg.State != nil && w != nil && w.exited() {
		errs = append(errs, n.cfg.State.RemoveProcess(pid), n.cfg.State.RemoveProcess(w.cmd.Process.Pid))
	}
	_ = os.Remove(filepath.Join(n.cfg.Dir, InitPIDFile))
	errs = append(errs, RemoveCgroup(n.cfg.CgroupRoot, false, 10*time.Second))
	return errors.Join(errs...)
}

// writeFiles makes the node's folders and its image units. Existing files
// (a node's /etc, its enablement symlinks) are kept.
func (n *SystemdNode) writeFiles() error {
	d := n.cfg.Dir
	dirs := []string{"fs/empty", "fs/usr/lib/systemd/system", "fs/usr/lib/systemd/system-preset"}
	for _, o := range n.overlays() {
		dirs = append(dirs, overlayDir(o)+"/upper", overlayDir(o)+"/work")
	}
	for _, f := range SystemdNodeFolders {
		dirs = append(dirs, "fs"+f)
	}
	for _, sub := range dirs {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	units := filepath.Join(d, "fs/usr/lib/systemd/system")
	for _, u := range systemdImageUnits {
		b, err := os.ReadFile(filepath.Join("/lib/systemd/system", u))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(units, u), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(units, SystemdBootTarget), []byte(bootTargetUnit), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, "fs/usr/lib/systemd/system-preset", "99-default-disable.preset"), []byte(defaultPreset), 0o644); err != nil {
		return err
	}
	if err := n.writeImageFiles(); err != nil {
		return err
	}
	upper := filepath.Join(d, "etc-overlay/upper")
	if err := os.WriteFile(filepath.Join(upper, "hostname"), []byte(n.Name+"\n"), 0o644); err != nil {
		return err
	}
	// Each node its own machine ID (kept across reboots).
	if _, err := os.Stat(filepath.Join(upper, "machine-id")); errors.Is(err, fs.ErrNotExist) {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(upper, "machine-id"), []byte(hex.EncodeToString(b)+"\n"), 0o444); err != nil {
			return err
		}
	}
	_, err := os.Create(filepath.Join(d, "console.log"))
	return err
}

// writeImageFiles writes cfg.ImageFiles into the node's own paths.
func (n *SystemdNode) writeImageFiles() error {
	for p, content := range n.cfg.ImageFiles {
		hp, err := n.HostPath(p)
		if err != nil {
			return fmt.Errorf("image file: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if cur, err := os.Readlink(hp); err == nil && cur == target {
				continue
			}
			_ = os.Remove(hp)
			if err := os.Symlink(target, hp); err != nil {
				return err
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(filepath.Dir(p), "/bin") {
			mode = 0o755
		}
		if err := os.WriteFile(hp, []byte(content), mode); err != nil {
			return err
		}
		if err := os.Chmod(hp, mode); err != nil {
			return err
		}
	}
	return nil
}

// defaultPreset is RHCOS's (Fedora's 99-default-disable.preset) rather
// than Debian's "enable *": `systemctl preset` on a unit without a
// preset rule disables it, as the MCD's preset of a unit it stops managing
// expects.
const defaultPreset = `# The node image's preset policy, as on RHCOS: units are disabled unless
# a config enables them.
disable *
`

const bootTargetUnit = `# The harness's boot target for systemd nodes: no default dependencies,
# so it pulls in only the units linked into its .wants folder.
[Unit]
Description=oc-kubens node
DefaultDependencies=no
AllowIsolate=yes
`

// systemdSetupScript runs as the first process of the new namespaces (it
// becomes the node's PID 1 by exec'ing systemd). $1 is the node's folder,
// $2 its hostname, $3 the boot target, $4 the CPUs to give back, $5 the
// hierarchy mounts ("name:type:options" words), $6 the per-node folders, $7
// the read-only sysctls, $8 the overlays ("path:folder" words).
const systemdSetupScript = `set -eu
D=$1 NAME=$2 TARGET=$3 CPUS=$4 HIER=$5 FOLDERS=$6 ROSYSCTLS=$7 OVERLAYS=$8
mount -t proc proc /proc
# Controllers the host has not mounted (hierarchy 0: hugetlb, net_cls,
# perf_event on the test VMs) cannot be used in the node either: hide them
# from /proc/cgroups, or CRI-O puts hugetlb limits in every container's spec
# and runc fails with "cannot set hugetlb limit".
awk '$1 ~ /^#/ || $2 != 0' /proc/cgroups > $D/proc-cgroups
mount --bind $D/proc-cgroups /proc/cgroups
# Never the host's cgroup tmpfs: drop this namespace's copies of its
# mounts (private propagation: the host keeps them), then a fresh tmpfs
# with every hierarchy mounted anew, rooted at the node's cgroup namespace.
umount -R /sys/fs/cgroup
mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs /sys/fs/cgroup
for h in $HIER; do
  name=${h%%:*}; rest=${h#*:}; type=${rest%%:*}; opts=${rest#*:}
  mkdir /sys/fs/cgroup/$name
  mount -t $type -o nosuid,nodev,noexec${opts:+,$opts} $type /sys/fs/cgroup/$name
done
# Read-only from now on (this mount only): systemd cannot mount the
# controllers the host leaves unbound, nor create anything here.
mount -o remount,bind,ro /sys/fs/cgroup
for f in $ROSYSCTLS; do
  [ -e /proc/sys/$f ] || continue
  mount --bind /proc/sys/$f /proc/sys/$f
  mount -o remount,bind,ro /proc/sys/$f
done
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
for o in $OVERLAYS; do
  p=${o%%:*}; od=$D/${o#*:}
  mount -t overlay overlay -o lowerdir=$p,upperdir=$od/upper,workdir=$od/work $p
done
for p in $FOLDERS; do
  mkdir -p $p
  mount --bind $D/fs$p $p
done
for u in system system-preset; do
  mount --bind $D/fs/usr/lib/systemd/$u /usr/lib/systemd/$u
  mount -o remount,bind,ro /usr/lib/systemd/$u
done
for g in system-generators system-environment-generators; do
  [ -d /usr/lib/systemd/$g ] || continue
  mount --bind $D/fs/empty /usr/lib/systemd/$g
  mount -o remount,bind,ro /usr/lib/systemd/$g
done
mount --bind $D/console.log /dev/console
# systemd makes / shared outside containers; kubens.service needs it to
# make its namespace a slave of this one. New peer groups, this node only.
mount --make-rshared /
hostname "$NAME"
# The namespaces were made on CPU 0 (see startInit); the node gets all back.
taskset -p -c "$CPUS" $$ >/dev/null
echo "setup done, exec systemd"
exec env -i container=oc-kubens-node PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ` + SystemdBin + ` --system --unit="$TARGET" --log-target=console --show-status=yes
`

// cgroupHierarchies lists the host's cgroup hierarchies under /sys/fs/cgroup
// as "name:type:options" for systemdSetupScript, and the host paths of the
// node's group in each. Only the hybrid/legacy layout (a tmpfs on
// /sys/fs/cgroup) is handled.
func cgroupHierarchies(group string) (words, groups []string, err error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, nil, err
	}
	tmpfs := false
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 >= len(f) {
			continue
		}
		mp, fstype, super := f[4], f[sep+1], f[sep+3]
		if mp == "/sys/fs/cgroup" {
			if fstype != "tmpfs" {
				return nil, nil, fmt.Errorf("systemd nodes need the hybrid or legacy cgroup layout (a tmpfs on /sys/fs/cgroup), found %s", fstype)
			}
			tmpfs = true
			continue
		}
		if filepath.Dir(mp) != "/sys/fs/cgroup" || (fstype != "cgroup" && fstype != "cgroup2") {
			continue
		}
		var opts []string
		named, controllers := false, false
		for _, o := range strings.Split(super, ",") {
			switch {
			case o == "rw" || o == "ro" || o == "":
			case strings.HasPrefix(o, "name="):
				named = true
				opts = append(opts, o)
			case o == "xattr" || o == "nsdelegate" || o == "memory_recursiveprot" || o == "clone_children" || strings.HasPrefix(o, "release_agent="):
				// host features; the node's mounts go without them
			default:
				controllers = true
				opts = append(opts, o)
			}
		}
		if named && !controllers && fstype == "cgroup" {
			opts = append([]string{"none"}, opts...)
		}
		words = append(words, fmt.Sprintf("%s:%s:%s", filepath.Base(mp), fstype, strings.Join(opts, ",")))
		groups = append(groups, filepath.Join(mp, group))
	}
	if !tmpfs || len(words) == 0 {
		return nil, nil, errors.New("systemd nodes need the hybrid or legacy cgroup layout: no cgroup hierarchies under a tmpfs on /sys/fs/cgroup")
	}
	return words, groups, nil
}

// boot creates the node's namespaces and waits until systemd has finished
// booting its target.
func (n *SystemdNode) boot(ctx context.Context) error {
	start := time.Now()
	words, groups, err := cgroupHierarchies(n.cfg.CgroupRoot)
	if err != nil {
		return err
	}
	if err := CreateCgroup(n.cfg.CgroupRoot); err != nil {
		return err
	}
	if n.cfg.State != nil {
		for _, g := range groups {
			if err := n.cfg.State.AddCgroup(g); err != nil {
				return err
			}
		}
	}
	procs := make([]string, len(groups))
	for i, g := range groups {
		procs[i] = filepath.Join(g, "cgroup.procs")
	}
	folders := append([]string(nil), SystemdNodeFolders...)
	var overlays []string
	for _, o := range n.overlays() {
		overlays = append(overlays, o+":"+overlayDir(o))
	}
	// The wrapper shell joins the node's group in every hierarchy, then
	// makes the namespaces (on CPU 0: the same-CPU quirk of startInit) so
	// that the cgroup namespace is rooted at the node's group.
	wrap := `for f in $PROCS; do echo $$ > "$f"; done
exec taskset -c 0 unshare --pid --fork --kill-child --mount --uts --cgroup --propagation private -- /bin/sh -c "$SETUP" setup "$@"`
	cmd := exec.Command("/bin/sh", "-c", wrap, "wrap",
		n.cfg.Dir, n.Name, n.cfg.Target, fmt.Sprintf("0-%d", runtime.NumCPU()-1),
		strings.Join(words, " "), strings.Join(folders, " "), strings.Join(systemdReadOnlySysctls, " "), strings.Join(overlays, " "))
	cmd.Env = append(os.Environ(), "PROCS="+strings.Join(procs, " "), "SETUP="+systemdSetupScript)
	p, err := startProc("systemd-node", cmd, filepath.Join(n.cfg.Dir, "setup.log"))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.wrapper = p
	n.mu.Unlock()
	if n.cfg.State != nil {
		if err := n.cfg.State.AddProcess("systemd node "+n.Name+" wrapper", p.cmd.Process.Pid, true); err != nil {
			return err
		}
	}
	if err := p.findDescendant(ctx, "systemd"); err != nil {
		return fmt.Errorf("systemd node %s: %w (see %s/setup.log)", n.Name, err, n.cfg.Dir)
	}
	n.mu.Lock()
	n.pid = p.pid
	n.mu.Unlock()
	if n.cfg.State != nil {
		if err := n.cfg.State.AddProcess("systemd node "+n.Name+" PID 1", p.pid, false); err != nil {
			return err
		}
	}
	if st, err := StartTime(p.pid); err == nil {
		_ = os.WriteFile(filepath.Join(n.cfg.Dir, InitPIDFile), []byte(fmt.Sprintf("%d %d\n", p.pid, st)), 0o644)
	}
	if err := n.waitBooted(ctx, p); err != nil {
		return err
	}
	n.mu.Lock()
	n.bootDuration = time.Since(start)
	n.mu.Unlock()
	return nil
}

// waitBooted waits for systemd's private socket, then for the end of the
// boot job (`systemctl is-system-running --wait`: running, or degraded when
// a unit failed, which the caller sees through systemctl).
func (n *SystemdNode) waitBooted(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sock := fmt.Sprintf("/proc/%d/root/run/systemd/private", p.pid)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if p.exited() {
			return fmt.Errorf("systemd node %s: systemd exited while booting (see %s/setup.log and console.log)", n.Name, n.cfg.Dir)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("systemd node %s: no %s: %w", n.Name, sock, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	out, err := n.Systemctl(ctx, "is-system-running", "--wait")
	state := strings.TrimSpace(out)
	if state == "running" || state == "degraded" {
		return nil
	}
	return fmt.Errorf("systemd node %s: system state %q: %v (see %s/console.log)", n.Name, state, err, n.cfg.Dir)
}

// SystemdMissingTools lists what a systemd node needs beyond MissingTools.
func SystemdMissingTools() []string {
	var missing []string
	for _, p := range []string{SystemdBin, "/bin/sh"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, p := range []string{"unshare", "nsenter", "taskset", "mount", "umount", "hostname", "systemctl"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	return missing
}

// HostCgroupSnapshot describes the host's cgroup tree as a node must leave
// it: the mountinfo lines of /sys/fs/cgroup and the hierarchies under it
// (mount options included), the tmpfs's entries with their modes, the
// controller-to-hierarchy table of /proc/cgroups, and the top-level groups
// of every hierarchy except the harness's own "oc-kubens*" ones (other runs
// may create and remove theirs meanwhile).
func HostCgroupSnapshot() ([]string, error) {
	var out []string
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (f[4] == "/sys/fs/cgroup" || strings.HasPrefix(f[4], "/sys/fs/cgroup/")) {
			out = append(out, "mount: "+l)
		}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		info, err := os.Lstat(filepath.Join("/sys/fs/cgroup", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("entry: %s %s", info.Mode(), e.Name()))
		if !e.IsDir() {
			continue
		}
		subs, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", e.Name()))
		for _, s := range subs {
			if s.IsDir() && !strings.HasPrefix(s.Name(), "oc-kubens") {
				out = append(out, fmt.Sprintf("group: %s/%s", e.Name(), s.Name()))
			}
		}
	}
	pc, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(pc), "\n") {
		if f := strings.Fields(l); len(f) == 4 && !strings.HasPrefix(f[0], "#") {
			out = append(out, fmt.Sprintf("controller: %s hierarchy %s enabled %s", f[0], f[1], f[3]))
		}
	}
	return out, nil
}

// DiffSnapshots lists the lines only in before ("-") or only in after ("+").
func DiffSnapshots(before, after []string) []string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var d []string
	for _, s := range before {
		if !a[s] {
			d = append(d, "- "+s)
		}
	}
	for _, s := range after {
		if !b[s] {
			d = append(d, "+ "+s)
		}
	}
	return d
}
