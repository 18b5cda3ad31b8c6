package control

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// runOnTerminal runs the binary on a pseudo-terminal (util-linux script),
// typing answer on it.
func runOnTerminal(t *testing.T, answer, kubeconfig string, args ...string) result {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		ci.SkipOrFail(t, "needs script(1) from util-linux for a pseudo-terminal")
	}
	line := fmt.Sprintf("%s %s --kubeconfig %s", pluginBinary(t), strings.Join(args, " "), kubeconfig)
	cmd := exec.Command("script", "-q", "-e", "-c", line, "/dev/null")
	cmd.Stdin = strings.NewReader(answer)
	out, err := cmd.CombinedOutput()
	r := result{stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("on a terminal: oc-kubens %s -> %s", strings.Join(args, " "), r)
	return r
}

// On a terminal enable asks; "n" applies nothing, "y" applies, and the
// wait progress is redrawn in place.
func TestConfirmOnTerminal(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	r := runOnTerminal(t, "n\n", kc, "enable")
	if r.code != 1 || !strings.Contains(r.stdout, "[y/N]") || !strings.Contains(r.stdout, "aborted: nothing was changed") {
		t.Fatalf("answer n: %s", r)
	}
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("answer n created %d MachineConfigs", n)
	}
	r = runOnTerminal(t, "y\n", kc, "enable", "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("answer y: %s", r)
	}
	mustContain(t, "terminal output", r.stdout, "[y/N]", "99-kubens-worker created", "\x1b[2K", "All pools updated")
	if !strings.Contains(r.stdout, "\x1b[2A") {
		t.Errorf("progress was not redrawn in place (no cursor-up):\n%q", r.stdout)
	}
}

// MachineConfigs oc-kubens does not manage: enable notes them, disable
// never deletes them and warns that the unit stays enabled; status shows
// them; the ZTP unit is detected.
func TestOtherEnablersAndZTP(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	ctx := context.Background()
	mk := func(name, role, unit string) {
		t.Helper()
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{mcfgv1.MachineConfigRoleLabelKey: role}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(
				`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"` + unit + `","enabled":true}]}}`)}},
		}
		if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("99-custom-enable-kubens-worker", "worker", "kubens.service")
	mk("01-container-mount-ns-and-kubelet-conf-master", "master", "container-mount-namespace.service")

	// --force: master is in ZTP, which enable refuses on its own (two
	// mechanisms; see hazards_test.go).
	r := run(t, kc, "enable", "--yes", "--wait", "--force", "--timeout", "2m")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, "enable", r.stdout,
		"Note: kubens.service is already enabled on pool worker by 99-custom-enable-kubens-worker.",
		"Note: pool master uses the ZTP container-mount-namespace.service")
	st := run(t, kc, "status")
	mustContain(t, "status", st.stdout, "99-custom-enable-kubens-worker,99-kubens-worker", "pool master encapsulates through the ZTP")

	r = run(t, kc, "disable", "--yes", "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, "disable", r.stdout, "WARNING: kubens.service stays enabled on pool worker through 99-custom-enable-kubens-worker")
	if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, "99-custom-enable-kubens-worker", metav1.GetOptions{}); err != nil {
		t.Fatalf("disable touched a MachineConfig it does not manage: %v", err)
	}
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("%d managed MachineConfigs left", n)
	}
	st = run(t, kc, "status", "-o", "json")
	mustContain(t, "status json", st.stdout, `"enabledBy": [
                "99-custom-enable-kubens-worker"
            ]`)
}

// An interactive exec shell puts the terminal in raw mode, and kubectl's
// terminal handler catches SIGTERM while it does. The signal must still end
// in exec's own clean-up: exit 130 and the temporary namespace deleted,
// not the handler's os.Exit with the pod left behind.
func TestExecShellOnTerminalTerminated(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	if _, err := exec.LookPath("script"); err != nil {
		ci.SkipOrFail(t, "needs script(1) from util-linux for a pseudo-terminal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := harness.Up(ctx, harness.Options{Kind: harness.ContainerdNodes, Nodes: []harness.NodeSpec{{Name: "master-0", Role: "master"}}, Logf: t.Logf})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	// exec: the shell script runs becomes the plugin, script's only child.
	line := strings.Join(append([]string{"exec", pluginBinary(t), "exec", c.Node("master-0").Name, "--kubeconfig", c.KubeconfigPath()}, imageFlags...), " ")
	cmd := exec.Command("script", "-qec", line, "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if _, err := io.WriteString(stdin, "echo ready-$((6*7))\n"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "ready-42") {
		select {
		case err := <-done:
			t.Fatalf("the session ended before the shell answered: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("the shell did not answer:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(children))
	if len(pids) != 1 {
		t.Fatalf("script has children %q, want the plugin alone", pids)
	}
	pid, err := strconv.Atoi(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM:\n%s", out.String())
	}
	t.Logf("terminal session:\n%s", out.String())
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(out.String(), "interrupted") {
		t.Errorf("exit %d, want 130 and interrupted", code)
	}
	nss, err := c.Client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp == nil {
			t.Errorf("namespace %s left behind (not being deleted)", ns.Name)
		}
	}
}
