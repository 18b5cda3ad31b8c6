package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

const (
	envCrashHelper = "KUBENS_HARNESS_CRASH_HELPER"
	crashReady     = "CRASH-HELPER-READY "
)

// TestCrashHelper is not a test: TestCrashedRunIsCleaned runs it in a child
// process, which starts a cluster, prints its footprint and waits to be
// killed.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(envCrashHelper) != "1" {
		t.Skip("helper process of TestCrashedRunIsCleaned")
	}
	// RHCOS-like nodes: systemd, CRI-O and their cgroups must all go.
	c, err := Up(context.Background(), Options{Masters: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c.fp)
	os.Stdout.WriteString(crashReady + string(b) + "\n")
	time.Sleep(time.Hour)
}

// TestCrashedRunIsCleaned kills a process that runs a cluster (SIGKILL: no
// teardown at all), then checks that the stale-state cleanup every new run
// does first removes all of it.
func TestCrashedRunIsCleaned(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), envCrashHelper+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var fp footprint
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), crashReady); ok {
			if err := json.Unmarshal([]byte(js), &fp); err != nil {
				t.Fatal(err)
			}
			break
		}
		t.Log("helper: " + sc.Text())
	}
	if fp.Dir == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper did not start a cluster")
	}
	if len(fp.leftovers()) == 0 {
		t.Fatal("a live cluster shows no footprint: the leftovers check sees nothing")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	start := time.Now()
	if err := testenv.CleanStale(); err != nil {
		t.Errorf("CleanStale: %v", err)
	}
	t.Logf("stale cluster cleaned in %s", time.Since(start).Round(time.Millisecond))
	for _, l := range fp.leftovers() {
		t.Errorf("left behind by the crashed run: %s", l)
	}
}
