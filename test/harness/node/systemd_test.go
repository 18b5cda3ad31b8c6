package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

func requireSystemdNode(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if missing := append(MissingTools(), SystemdMissingTools()...); len(missing) > 0 {
		msg := fmt.Sprintf("systemd node tools missing (%s)", strings.Join(missing, ", "))
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, _, err := cgroupHierarchies("/x"); err != nil {
		ci.SkipOrFail(t, "%v", err)
	}
}

// hostSysctls are the sysctls systemd writes as PID 1 (see
// systemdReadOnlySysctls): the node must leave them as they are.
func hostSysctls(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range systemdReadOnlySysctls {
		b, err := os.ReadFile("/proc/sys/" + f)
		if err != nil {
			t.Fatal(err)
		}
		m[f] = strings.TrimSpace(string(b))
	}
	return m
}

// checkNodeGone asserts that nothing of a stopped systemd node is left: its
// PID 1, any process in its groups, its groups, a mount of its folder.
func checkNodeGone(t *testing.T, pid int, cgroupRoot, dir string) {
	t.Helper()
	if pid > 0 && testenv.ProcessAlive(pid) {
		t.Errorf("node PID 1 (%d) still runs", pid)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || !testenv.ProcessAlive(p) {
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p))
		if strings.Contains(string(cg), cgroupRoot+"/") || strings.Contains(string(cg), cgroupRoot+"\n") {
			t.Errorf("process %d (%s) still in the node's groups", p, comm(p))
		}
	}
	if left := CgroupsUnder(cgroupRoot); len(left) > 0 {
		t.Errorf("node groups left: %v", left)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, dir) {
			t.Errorf("mount left: %s", l)
		}
	}
}

// TestSystemdNodeLeavesHostCgroupsAlone boots a systemd node, checks it is
// PID 1 of its namespaces in its own cgroup namespace and that the host's
// cgroup tree is untouched while it runs, halts it, and checks the host's
// /sys/fs/cgroup (mounts, options, entries, top-level groups, controller
// table) and the sysctls systemd writes are exactly as before, and that no
// process, mount or group of the node is left.
func TestSystemdNodeLeavesHostCgroupsAlone(t *testing.T) {
	requireSystemdNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	sysctls := hostSysctls(t)
	dir := t.TempDir()
	cg := fmt.Sprintf("/oc-kubens-sdtest-%d", os.Getpid())
	defer RemoveCgroup(cg, true, 5*time.Second)
	n, err := StartSystemd(ctx, SystemdConfig{Name: "sdnode", Dir: filepath.Join(dir, "sdnode"), CgroupRoot: cg + "/sdnode"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	pid := n.PID()
	t.Logf("systemd node booted in %s, PID %d on the host, RSS %d MiB", n.BootDuration().Round(time.Millisecond), pid, NamespaceRSSMiB(pid))

	if c := comm(pid); c != "systemd" {
		t.Errorf("node PID 1 is %q", c)
	}
	for _, ns := range []string{"pid", "mnt", "uts", "cgroup"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		node, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if host == node {
			t.Errorf("node shares the host's %s namespace", ns)
		}
	}
	if out, err := n.Exec(ctx, "cat", "/proc/1/comm"); err != nil || strings.TrimSpace(out) != "systemd" {
		t.Errorf("PID 1 inside the node: %q, %v", out, err)
	}
	if out, err := n.Exec(ctx, "hostname"); err != nil || strings.TrimSpace(out) != "sdnode" {
		t.Errorf("hostname inside the node: %q, %v", out, err)
	}
	// systemd's own groups sit under the node's group on the host, and at
	// the root of the node's cgroup namespace inside.
	hostCg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(hostCg), ":name=systemd:"+cg+"/sdnode/init.scope") {
		t.Errorf("systemd's groups seen from the host:\n%s", hostCg)
	}
	if out, err := n.Exec(ctx, "cat", "/proc/1/cgroup"); err != nil || !strings.Contains(out, ":name=systemd:/init.scope") {
		t.Errorf("systemd's groups seen in the node: %q, %v", out, err)
	}
	if out, err := n.Systemctl(ctx, "is-system-running"); strings.TrimSpace(out) != "running" {
		t.Errorf("is-system-running: %q, %v", out, err)
	}
	// The node's /sys/fs/cgroup is its own read-only tmpfs.
	if out, err := n.Exec(ctx, "findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/sys/fs/cgroup"); err != nil || !strings.HasPrefix(out, "tmpfs") || !strings.Contains(out, "ro,") {
		t.Errorf("the node's /sys/fs/cgroup: %q, %v", out, err)
	}
	if mid, err := n.Exec(ctx, "cat", "/etc/machine-id"); err != nil || strings.TrimSpace(mid) == strings.TrimSpace(readFile("/etc/machine-id")) {
		t.Errorf("the node's machine-id %q is the host's (%v)", mid, err)
	}
	if during, err := HostCgroupSnapshot(); err != nil {
		t.Error(err)
	} else if d := DiffSnapshots(before, during); len(d) > 0 {
		t.Errorf("host cgroup tree changed while the node runs:\n%s", strings.Join(d, "\n"))
	}

	start := time.Now()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("halted in %s", time.Since(start).Round(time.Millisecond))
	after, err := HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffSnapshots(before, after); len(d) > 0 {
		t.Errorf("host cgroup tree changed:\n%s", strings.Join(d, "\n"))
	} else {
		t.Logf("host /sys/fs/cgroup unchanged (%d lines compared)", len(after))
	}
	for k, v := range hostSysctls(t) {
		if sysctls[k] != v {
			t.Errorf("host sysctl %s: %q, was %q", k, v, sysctls[k])
		}
	}
	checkNodeGone(t, pid, cg+"/sdnode", dir)
}

const helloUnit = `[Unit]
Description=a trivial unit, enabled through the node's own /etc/systemd/system

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=` + SystemdBootTarget + `
`

// TestSystemdNodeRebootKeepsEnablement installs a unit through the node's
// per-node /etc/systemd/system folder, enables and starts it with
// systemctl, reboots the node and sees it active again (the enablement
// symlink survived, /run did not), and measures boot, reboot and RSS.
func TestSystemdNodeRebootKeepsEnablement(t *testing.T) {
	requireSystemdNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cg := fmt.Sprintf("/oc-kubens-sdtest-%d", os.Getpid())
	defer RemoveCgroup(cg, true, 5*time.Second)
	n, err := StartSystemd(ctx, SystemdConfig{Name: "sdreboot", Dir: filepath.Join(dir, "sdreboot"), CgroupRoot: cg + "/sdreboot"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	boot := n.BootDuration()
	idleRSS := NamespaceRSSMiB(n.PID())

	unitPath, err := n.HostPath("/etc/systemd/system/hello.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unitPath, []byte(helloUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Systemctl(ctx, "daemon-reload"); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Systemctl(ctx, "enable", "--now", "hello.service"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("systemctl enable --now: %s", strings.TrimSpace(out))
	}
	link, err := n.HostPath("/etc/systemd/system/" + SystemdBootTarget + ".wants/hello.service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("no enablement symlink in the node's folder: %v", err)
	}
	if _, err := os.Lstat("/etc/systemd/system/" + SystemdBootTarget + ".wants"); err == nil {
		t.Errorf("the enablement reached the host's /etc/systemd/system")
	}
	if out, _ := n.Systemctl(ctx, "is-active", "hello.service"); strings.TrimSpace(out) != "active" {
		t.Fatalf("hello.service after enable --now: %q", out)
	}
	if _, err := n.Exec(ctx, "touch", "/run/before-reboot"); err != nil {
		t.Fatal(err)
	}
	firstPID := n.PID()

	start := time.Now()
	if err := n.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	reboot := time.Since(start)
	if n.PID() == firstPID || testenv.ProcessAlive(firstPID) {
		t.Errorf("reboot kept PID 1 %d", firstPID)
	}
	if out, _ := n.Systemctl(ctx, "is-active", "hello.service"); strings.TrimSpace(out) != "active" {
		t.Errorf("hello.service after the reboot: %q", out)
	}
	if out, _ := n.Systemctl(ctx, "is-enabled", "hello.service"); strings.TrimSpace(out) != "enabled" {
		t.Errorf("hello.service is-enabled after the reboot: %q", out)
	}
	if _, err := n.Exec(ctx, "test", "-e", "/run/before-reboot"); err == nil {
		t.Errorf("/run survived the reboot")
	}
	if b, err := os.ReadFile(unitPath); err != nil || string(b) != helloUnit {
		t.Errorf("unit file after the reboot: %v", err)
	}
	rss := NamespaceRSSMiB(n.PID())
	t.Logf("boot %s, reboot (halt + boot) %s (boot part %s), RSS %d MiB idle, %d MiB with hello.service",
		boot.Round(time.Millisecond), reboot.Round(time.Millisecond), n.BootDuration().Round(time.Millisecond), idleRSS, rss)

	pid := n.PID()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffSnapshots(before, after); len(d) > 0 {
		t.Errorf("host cgroup tree changed:\n%s", strings.Join(d, "\n"))
	}
	checkNodeGone(t, pid, cg+"/sdreboot", dir)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
