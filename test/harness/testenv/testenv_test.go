package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recorder stands in for *testing.T to observe skip versus fail.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestRequireBinariesSkipsOrFails(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(EnvK8sBinDir, empty)
	t.Setenv(EnvEtcdBin, filepath.Join(empty, "etcd"))
	tests := []struct {
		ci       string
		wantSkip bool
	}{
		{"", true},
		{"false", true},
		{"true", false},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{}
			RequireBinaries(r)
			msg := r.skipped + r.failed
			if tt.wantSkip != (r.skipped != "") || tt.wantSkip == (r.failed != "") {
				t.Fatalf("skipped=%q failed=%q, want skip=%v", r.skipped, r.failed, tt.wantSkip)
			}
			if !strings.Contains(msg, "make cluster-bins") || !strings.Contains(msg, "kube-apiserver") {
				t.Errorf("message %q does not say what is missing and what to run", msg)
			}
		})
	}
}

func TestRequireRootPassesAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Setenv("CI", "true")
		r := &recorder{}
		RequireRoot(r)
		if r.failed == "" {
			t.Errorf("not root with CI=true: want a failure, got skip %q", r.skipped)
		}
		return
	}
	r := &recorder{}
	RequireRoot(r)
	if r.skipped != "" || r.failed != "" {
		t.Errorf("as root on Linux: skipped=%q failed=%q", r.skipped, r.failed)
	}
}

func TestRepoRootAndDefaults(t *testing.T) {
	t.Setenv(EnvK8sBinDir, "")
	t.Setenv(EnvEtcdBin, "")
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "harness", "testenv")); err != nil {
		t.Errorf("RepoRoot() = %s, which has no test/harness/testenv", root)
	}
	if got, want := K8sBinDir(), filepath.Join(root, ".cache/clusterbin/k8s-v1.37.2"); got != want {
		t.Errorf("K8sBinDir() = %s, want %s", got, want)
	}
	if got, want := EtcdBin(), filepath.Join(root, ".cache/clusterbin/etcd-v3.6.16/etcd"); got != want {
		t.Errorf("EtcdBin() = %s, want %s", got, want)
	}
	t.Setenv(EnvEtcdBin, "/x/etcd")
	if EtcdBin() != "/x/etcd" {
		t.Errorf("EtcdBin() ignores %s", EnvEtcdBin)
	}
}

// helperEnv makes the test binary act as a harness run that crashes: it
// records a process, a hosts line and a path, then exits without Close.
const helperEnv = "KUBENS_TESTENV_CRASHING_RUN"

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		crashingRun(name)
		return
	}
	os.Exit(m.Run())
}

func crashingRun(hostName string) {
	s, err := NewState("crash")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	extra := os.Getenv("KUBENS_TESTENV_EXTRA")
	os.WriteFile(extra, []byte("x"), 0o600)
	must := func(err error) {
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	must(s.AddProcess("sleep", cmd.Process.Pid, true))
	must(s.AddPath(extra))
	if os.Geteuid() == 0 {
		must(s.AddHost(hostName, "127.0.0.1"))
	}
	fmt.Println(cmd.Process.Pid, s.Dir())
	os.Exit(0) // crash: no Close
}

func TestStaleRunIsCleanedAndLiveRunIsNot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: /etc/hosts cleanup not exercised")
	}
	root := t.TempDir()
	t.Setenv(EnvStateRoot, root)
	extra := filepath.Join(t.TempDir(), "outside-the-run")
	hostName := fmt.Sprintf("kubens-stale-probe-%d", os.Getpid())

	// A live run of this process, which cleaning must not touch.
	live, err := NewState("live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveSleep := exec.Command("sleep", "300")
	liveSleep.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := liveSleep.Start(); err != nil {
		t.Fatal(err)
	}
	go liveSleep.Wait()
	if err := live.AddProcess("sleep", liveSleep.Process.Pid, true); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+hostName, "KUBENS_TESTENV_EXTRA="+extra)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crashing run: %v: %s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		t.Fatalf("crashing run said %q", out)
	}
	pid, _ := strconv.Atoi(fields[0])
	staleDir := fields[1]
	if !ProcessAlive(pid) {
		t.Fatalf("the crashed run's process %d is not running; the test proves nothing", pid)
	}
	if os.Geteuid() == 0 && !hostsHas(t, hostName) {
		t.Fatalf("the crashed run's hosts line is missing")
	}

	if err := CleanStale(); err != nil {
		t.Fatalf("CleanStale: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ProcessAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ProcessAlive(pid) {
		t.Errorf("stale process %d still running", pid)
	}
	if _, err := os.Stat(staleDir); !os.IsNotExist(err) {
		t.Errorf("stale run folder %s still there", staleDir)
	}
	if _, err := os.Stat(extra); !os.IsNotExist(err) {
		t.Errorf("stale run's extra path %s still there", extra)
	}
	if os.Geteuid() == 0 && hostsHas(t, hostName) {
		t.Errorf("stale hosts line for %s still in /etc/hosts", hostName)
	}

	if !ProcessAlive(liveSleep.Process.Pid) {
		t.Errorf("cleaning killed a live run's process")
	}
	if _, err := os.Stat(live.Dir()); err != nil {
		t.Errorf("cleaning removed a live run's folder: %v", err)
	}
	if runs, _ := LiveRuns(); len(runs) != 1 || runs[0] != live.Dir() {
		t.Errorf("LiveRuns() = %v, want [%s]", runs, live.Dir())
	}

	if err := live.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ProcessAlive(liveSleep.Process.Pid) {
		t.Errorf("Close left process %d running", liveSleep.Process.Pid)
	}
	if _, err := os.Stat(live.Dir()); !os.IsNotExist(err) {
		t.Errorf("Close left %s", live.Dir())
	}
}

func hostsHas(t *testing.T, name string) bool {
	t.Helper()
	f, err := os.Open("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[1] == name {
			return true
		}
	}
	return false
}
