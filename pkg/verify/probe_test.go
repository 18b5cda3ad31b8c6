package verify

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	"github.com/oc-kubens/oc-kubens/internal/shelltest"
)

// TestProbeScriptRunsHere runs the real probe, unprivileged, with every
// shell at hand: whatever it can or cannot read on this machine, it must
// write a report the strict parser accepts. The run against real
// namespaces, as root, is in test/e2e/verify.
func TestProbeScriptRunsHere(t *testing.T) {
	shells := [][]string{{"sh"}, {"busybox", "sh"}, {"dash"}, {"bash", "--posix"}}
	ran := 0
	for _, sh := range shells {
		if _, err := exec.LookPath(sh[0]); err != nil {
			continue
		}
		ran++
		out, err := exec.Command(sh[0], append(sh[1:], "-c", ProbeScript)...).Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		if _, err := ParseReport(out); err != nil {
			t.Errorf("%v: %v\n%s", sh, err, out)
		}
		if len(out) > 1024 {
			t.Errorf("%v: report is %d bytes; keep it far below the 4096-byte termination message limit", sh, len(out))
		}
		// The same with wrapped units, as verify runs it.
		units := []string{"chronyd.service", "sshd.service"}
		out, err = exec.Command(sh[0], append(sh[1:], ProbeCommand(units...)[1:]...)...).Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		if _, err := ParseReportUnits(out, len(units)); err != nil {
			t.Errorf("%v with units: %v\n%s", sh, err, out)
		}
	}
	if ran == 0 {
		ci.SkipOrFail(t, "no POSIX shell found")
	}
}

// TestProbePidofComm runs the probe's own pidof_comm, with /proc swapped for
// a fake tree, with every shell at hand. A kubelet or CRI-O nested in a pod
// (kind, clusters in clusters) shows up in the host PID namespace too, and
// may have the lower PID: the node's daemon is the one whose parent is PID 1;
// only when no candidate is does the lowest PID win.
func TestProbePidofComm(t *testing.T) {
	proc := t.TempDir()
	procs := []struct {
		pid        int
		comm       string
		ppid       int // 0: no stat file
		commInStat string
	}{
		{100, "kubelet", 90, ""}, // nested (kind node), started first
		{90, "systemd", 1, ""},   // the kind node's own PID 1
		{200, "kubelet", 1, ""},  // the node's kubelet, restarted later
		{120, "crio", 110, ""},   // nested
		{300, "crio", 1, ""},     // the node's CRI-O
		{310, "crio", 1, ""},     // two children of PID 1: the lower wins
		{400, "containerd-shim", 1, ""},
		{500, "containerd", 77, ""}, // no candidate under PID 1: lowest
		{600, "containerd", 78, ""},
		{700, "conmon", 1, "con) S 9 (mon"}, // a comm with ") " in stat
		{800, "conmon", 0, ""},              // stat unreadable
		{50, "weird", 1, "we) S 9 (ird"},
	}
	for _, p := range procs {
		dir := filepath.Join(proc, fmt.Sprint(p.pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.ppid == 0 {
			continue
		}
		comm := p.comm
		if p.commInStat != "" {
			comm = p.commInStat
		}
		stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 42 1000 10\n", p.pid, comm, p.ppid, p.pid, p.pid)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fn := strings.ReplaceAll(shelltest.Function(t, ProbeScript, "pidof_comm"), "/proc", proc)
	want := map[string]string{
		"kubelet": "200", "crio": "300", "containerd": "500", "conmon": "700",
		"weird": "50", "containerd-shim": "400", "kube": "none",
	}
	shells := [][]string{{"sh"}, {"busybox", "sh"}, {"dash"}, {"bash", "--posix"}}
	ran := 0
	for _, sh := range shells {
		if _, err := exec.LookPath(sh[0]); err != nil {
			continue
		}
		ran++
		for comm, pid := range want {
			out, err := exec.Command(sh[0], append(sh[1:], "-c", fn+`pidof_comm "$1"`, "sh", comm)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v %s: %v\n%s", sh, comm, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != pid {
				t.Errorf("%v: pidof_comm %s = %s, want %s", sh, comm, got, pid)
			}
		}
	}
	if ran == 0 {
		ci.SkipOrFail(t, "no POSIX shell found")
	}
}

// TestProbeWrappedUnits runs the whole probe against a fake /proc and a fake
// host whose systemctl answers MainPID queries, with the wrapped units as
// arguments, as verify passes them. Names the script must refuse never reach
// systemctl and run nothing, and each unit's facts land at its index.
func TestProbeWrappedUnits(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	host := filepath.Join(dir, "host")
	log := filepath.Join(dir, "systemctl.log")
	pwned := filepath.Join(dir, "pwned")
	const hostNS, kubeNS = "4026531841", "4026533000"
	procs := []struct {
		pid  int
		comm string
		ns   string // "": no ns/mnt link (unreadable)
		ppid int    // 0: 1
	}{
		{1, "systemd", hostNS, 0}, {100, "kubelet", kubeNS, 0}, {200, "crio", kubeNS, 0},
		{300, "agent", kubeNS, 0}, {400, "old", hostNS, 0}, {500, "hidden", "", 0},
		// A wrapped unit's main PID is kubensenter, in the host namespace;
		// its child, nsenter turned node-agent, joined kubelet's.
		{700, "kubensenter", hostNS, 0}, {702, "node-agent", kubeNS, 700}, {701, "node-agent", kubeNS, 700}, {705, "other", hostNS, 0},
		// kubensenter whose child is gone: itself.
		{800, "kubensenter", hostNS, 0},
	}
	for _, p := range procs {
		d := filepath.Join(proc, fmt.Sprint(p.pid))
		if err := os.MkdirAll(filepath.Join(d, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "comm"), []byte(p.comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ppid := max(p.ppid, 1)
		stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1\n", p.pid, p.comm, ppid, p.pid, p.pid)
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.ns != "" {
			if err := os.Symlink("mnt:["+p.ns+"]", filepath.Join(d, "ns", "mnt")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The fake systemctl logs its arguments and knows a few main PIDs;
	// it answers only when the name comes after "--".
	systemctl := `#!/bin/sh
printf '%s\n' "$*" >>` + log + `
case $1 in is-enabled) echo enabled; exit 0 ;; is-active) echo active; exit 0 ;; esac
[ "$1 $2 $3 $4 $5" = "show -p MainPID --value --" ] || exit 1
case $6 in
agent.service | a@b:c_d-e.service) echo 300 ;;
outside.service) echo 400 ;;
hidden.service) echo 500 ;;
gone.service) echo 600 ;;
huge.service) echo 12345678901 ;;
wrapped.service) echo 700 ;;
lonely.service) echo 800 ;;
*) echo 0 ;;
esac
`
	if err := os.MkdirAll(filepath.Join(host, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "usr", "bin", "systemctl"), []byte(systemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	// chroot, unprivileged: run the host's tool directly.
	script := `chroot() { h=$1; shift; c=$1; shift; "$h/usr/bin/$c" "$@"; }
` + strings.NewReplacer("/proc", proc, "H=/host", "H="+host).Replace(ProbeScript)

	refused := []string{
		"$(touch " + pwned + ").service", "`touch " + pwned + "`.service", "x;touch " + pwned + ".service",
		"a b.service", "agent.socket", ".service", "", "../agent.service", "agent.service\nx",
		strings.Repeat("a", 248) + ".service", // 256 characters
	}
	units := append([]string{
		"agent.service", "outside.service", "stopped.service", "hidden.service", "gone.service",
		"a@b:c_d-e.service", "-H.service", "huge.service", "wrapped.service", "lonely.service",
	}, refused...)
	want := []WrappedProc{
		{300, kubeNS}, {400, hostNS}, {0, NSNone}, {500, NSDenied}, {600, NSNone},
		{300, kubeNS}, {0, NSNone}, {0, NSNone}, {701, kubeNS}, {800, hostNS},
	}
	for range refused {
		want = append(want, WrappedProc{0, NSNone})
	}
	for _, sh := range shelltest.Shells(t) {
		if err := os.WriteFile(log, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sh[0], append(sh[1:], "-c", script, "oc-kubens-verify")...)
		cmd.Args = append(cmd.Args, units...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		rep, err := ParseReportUnits(out, len(units))
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		if rep.KubeletPID != 100 || rep.KubeletNS != kubeNS || rep.KubensEnabled != "enabled" {
			t.Errorf("%v: the fake node was not read: %+v", sh, rep)
		}
		if !reflect.DeepEqual(rep.Wrapped, want) {
			t.Errorf("%v: wrapped\n got %v\nwant %v\n%s", sh, rep.Wrapped, want, out)
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatalf("%v: a unit name ran a command", sh)
		}
		calls, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		var asked []string
		for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
			if u, ok := strings.CutPrefix(line, "show -p MainPID --value -- "); ok {
				asked = append(asked, u)
			}
		}
		wantAsked := []string{"agent.service", "outside.service", "stopped.service", "hidden.service", "gone.service", "a@b:c_d-e.service", "-H.service", "huge.service", "wrapped.service", "lonely.service"}
		if !reflect.DeepEqual(asked, wantAsked) {
			t.Errorf("%v: systemctl was asked about %q, want %q", sh, asked, wantAsked)
		}
	}

	// More units than the bound: the probe reports on the first 32 only,
	// which keeps the report within the termination message.
	many := make([]string, MaxWrappedUnits+3)
	for i := range many {
		many[i] = fmt.Sprintf("unit%02d.service", i)
	}
	for _, sh := range shelltest.Shells(t) {
		cmd := exec.Command(sh[0], append(sh[1:], "-c", script, "oc-kubens-verify")...)
		cmd.Args = append(cmd.Args, many...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		if _, err := ParseReportUnits(out, MaxWrappedUnits); err != nil {
			t.Errorf("%v with %d units: %v", sh, len(many), err)
		}
	}
}

// TestValidUnitName: the client's check matches the probe's.
func TestValidUnitName(t *testing.T) {
	for _, u := range []string{"agent.service", "a@b:c_d-e.service", "-H.service", strings.Repeat("a", 247) + ".service"} {
		if !ValidUnitName(u) {
			t.Errorf("%q refused", u)
		}
	}
	for _, u := range []string{"", ".service", "agent.socket", "a b.service", "$(id).service", "../a.service", "a\n.service", strings.Repeat("a", 248) + ".service", "é.service"} {
		if ValidUnitName(u) {
			t.Errorf("%q accepted", u)
		}
	}
}

func TestProbeCommand(t *testing.T) {
	if got, want := ProbeCommand(), []string{"/bin/sh", "-c", ProbeScript, "oc-kubens-verify"}; !reflect.DeepEqual(got, want) {
		t.Errorf("no units: %q", got[3:])
	}
	if got := ProbeCommand("a.service", "b.service"); !reflect.DeepEqual(got[3:], []string{"oc-kubens-verify", "a.service", "b.service"}) {
		t.Errorf("units: %q", got[3:])
	}
}
