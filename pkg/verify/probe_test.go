package verify

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	}
	if ran == 0 {
		t.Skip("no POSIX shell found")
	}
}

// probeFunction returns the text of one shell function of the probe.
func probeFunction(t *testing.T, name string) string {
	t.Helper()
	start := strings.Index(ProbeScript, "\n"+name+"() {\n")
	if start < 0 {
		t.Fatalf("probe has no function %s", name)
	}
	end := strings.Index(ProbeScript[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("function %s does not end", name)
	}
	return ProbeScript[start : start+end+3]
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
	fn := strings.ReplaceAll(probeFunction(t, "pidof_comm"), "/proc", proc)
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
		t.Skip("no POSIX shell found")
	}
}
