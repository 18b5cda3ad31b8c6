package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
)

// renderedMC is a rendered MachineConfig as the MCO writes it, with
// kubens.service enabled or not.
func renderedMC(name string, kubens bool) *mcfgv1.MachineConfig {
	cfg := `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kubelet.service","enabled":true}]}}`
	if kubens {
		cfg = `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kubelet.service","enabled":true},{"name":"kubens.service","enabled":true}]}}`
	}
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(cfg)}},
	}
}

func setCurrentConfig(t *testing.T, c *harness.Cluster, short, config string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, vfy.CurrentConfigAnnotation, config)
	if _, err := c.Client.CoreV1().Nodes().Patch(context.Background(), c.Node(short).Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyAndExecOnRealNodes runs the whole story on one cluster of three
// real nodes: an encapsulated master, a plain worker and a split worker.
func TestVerifyAndExecOnRealNodes(t *testing.T) {
	c := startCluster(t, harness.Options{
		Kind:      harness.ContainerdNodes,
		NodeModes: map[string]node.Mode{"master-0": node.Encapsulated, "worker-0": node.Plain, "worker-1": node.Split},
	})
	ctx := context.Background()
	mcfg := mcfgclient.NewForConfigOrDie(c.RESTConfig())
	for _, mc := range []*mcfgv1.MachineConfig{renderedMC("rendered-master-on", true), renderedMC("rendered-worker-off", false)} {
		if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setCurrentConfig(t, c, "master-0", "rendered-master-on")
	setCurrentConfig(t, c, "worker-0", "rendered-worker-off")
	setCurrentConfig(t, c, "worker-1", "rendered-worker-off")

	t.Run("mixed nodes", func(t *testing.T) {
		rep, r := verifyJSON(t, c, "--all-nodes")
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (not every node is encapsulated)", r.code)
		}
		wantStates(t, c, rep, map[string]vfy.State{"master-0": vfy.Encapsulated, "worker-0": vfy.NotEncapsulated, "worker-1": vfy.Split})
		got := byNode(rep)
		m := got[c.Node("master-0").Name]
		if m.Mechanism != vfy.MechanismKubens || m.Expected != vfy.Encapsulated || m.Runtime != "containerd" {
			t.Errorf("master-0: mechanism %q expected %q runtime %q", m.Mechanism, m.Expected, m.Runtime)
		}
		// The harness's kubens recipe is the current unit, /run/netns step
		// (OCPBUGS-83562) included: every check passes.
		if f := m.FailedChecks(); len(f) != 0 {
			t.Errorf("master-0 failed checks %v, want none: %+v", f, m.Checks)
		}
		for _, ch := range m.Checks {
			if ch.Name == vfy.CheckNetnsName && ch.Status != vfy.CheckPass {
				t.Errorf("master-0 %s: %s (%s), want pass", ch.Name, ch.Status, ch.Detail)
			}
		}
		// Split and plain nodes skip it: the check is about the namespace
		// kubelet runs in when encapsulated.
		for _, short := range []string{"worker-0", "worker-1"} {
			for _, ch := range got[c.Node(short).Name].Checks {
				if ch.Name == vfy.CheckNetnsName && ch.Status != vfy.CheckSkip {
					t.Errorf("%s %s: %s (%s), want skip", short, ch.Name, ch.Status, ch.Detail)
				}
			}
		}
		if w := got[c.Node("worker-0").Name]; w.Expected != vfy.NotEncapsulated || w.Mechanism != "" {
			t.Errorf("worker-0: expected %q mechanism %q", w.Expected, w.Mechanism)
		}
		s := rep.Summary
		if s.Total != 3 || s.Encapsulated != 1 || s.NotEncapsulated != 1 || s.Split != 1 || s.NotAsExpected != 2 {
			t.Errorf("summary %+v", s)
		}
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("table and exit 0", func(t *testing.T) {
		r := run(t, c, append([]string{"verify", c.Node("master-0").Name, "-o", "wide"}, imageFlags...)...)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0", r.code)
		}
		for _, want := range []string{"NODE", "STATE", "EXPECTED", "HIDDEN", "Encapsulated", "kubens.service", "1 node: 1 Encapsulated", "All as expected"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q", want)
			}
		}
	})

	t.Run("exec sees container mounts the host does not", func(t *testing.T) {
		n := c.Node("master-0")
		r := run(t, c, append([]string{"exec", n.Name}, append(imageFlags, "--", "cat", "/proc/self/mountinfo")...)...)
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		host := hostMountPoints(t, n)
		var hidden []string
		for mp := range mountPoints(r.stdout) {
			if !host[mp] && (strings.Contains(mp, "/run/containerd/") || strings.Contains(mp, "/var/lib/kubelet/pods/")) {
				hidden = append(hidden, mp)
			}
		}
		if len(hidden) == 0 {
			t.Fatalf("exec output shows no container mount hidden from the host namespace:\n%s", r.stdout)
		}
		t.Logf("%d container mounts visible through exec but not to the node's PID 1, e.g. %s", len(hidden), hidden[0])
		if strings.Contains(r.stderr, "host mount namespace") {
			t.Errorf("exec on an encapsulated node claims to use the host namespace: %s", r.stderr)
		}
	})

	t.Run("exec on a plain node says so and returns the exit code", func(t *testing.T) {
		r := run(t, c, append([]string{"exec", c.Node("worker-0").Name}, append(imageFlags, "--", "sh", "-c", "echo out; echo err >&2; exit 7")...)...)
		if r.code != 7 {
			t.Errorf("exit %d, want the command's 7", r.code)
		}
		if !strings.Contains(r.stdout, "out") || !strings.Contains(r.stderr, "err") {
			t.Errorf("streams not passed through")
		}
		if !strings.Contains(r.stderr, "running in the host mount namespace") {
			t.Errorf("no note that the plain node runs the command in the host namespace")
		}
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("exec with no command opens a shell on a terminal", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			ci.SkipOrFail(t, "script (util-linux) is needed to give the plugin a terminal")
		}
		// script gives the built binary a pseudo-terminal as stdin and
		// stdout, like a person at a terminal; -e returns the shell's code.
		line := strings.Join(append([]string{pluginBinary(t), "exec", c.Node("master-0").Name, "--kubeconfig", c.KubeconfigPath()}, imageFlags...), " ")
		cmd := exec.Command("script", "-qec", line, "/dev/null")
		cmd.Stdin = strings.NewReader("echo marker-$((6*7)); exit 3\n")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		t.Logf("terminal session: %v\n%s", err, out.String())
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("exit %d, want the shell's 3", code)
		}
		if !strings.Contains(out.String(), "marker-42") {
			t.Errorf("the shell did not run the typed command")
		}
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("keep leaves the namespace and pod for debugging", func(t *testing.T) {
		r := run(t, c, append([]string{"verify", c.Node("master-0").Name, "--keep"}, imageFlags...)...)
		if r.code != 0 || !strings.Contains(r.stderr, "Keeping namespace") {
			t.Fatalf("exit %d", r.code)
		}
		nss, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: vfy.RunLabel + "=verify"})
		if err != nil || len(nss.Items) != 1 {
			t.Fatalf("want the kept namespace: %v %d", err, len(nss.Items))
		}
		defer func() {
			if err := vfy.DeleteNamespace(c.Client, nss.Items[0].Name); err != nil {
				t.Error(err)
			}
			noLeftovers(t, c.Client, 30*time.Second)
		}()
		pods, err := c.Client.CoreV1().Pods(nss.Items[0].Name).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("want the probe pod kept: %v", err)
		}
		if cs := pods.Items[0].Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Message == "" {
			t.Errorf("the kept pod does not hold its report: %+v", pods.Items[0].Status)
		}
	})

	t.Run("stale namespaces of crashed runs are swept", func(t *testing.T) {
		mk := func(label string, expires time.Time) string {
			ns := vfy.NamespaceFor(vfy.NamespaceOptions{Prefix: "oc-kubens-verify-", Purpose: label, Expires: expires})
			got, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return got.Name
		}
		stale := mk("verify", time.Now().Add(-time.Minute))
		live := mk("stale-test", time.Now().Add(time.Hour))
		r := run(t, c, append([]string{"verify", c.Node("master-0").Name}, imageFlags...)...)
		if !strings.Contains(r.stderr, "Deleted stale namespace "+stale) {
			t.Errorf("stale namespace %s not reported as swept", stale)
		}
		nsObj, err := c.Client.CoreV1().Namespaces().Get(ctx, live, metav1.GetOptions{})
		if err != nil || nsObj.DeletionTimestamp != nil {
			t.Errorf("a namespace that is not stale yet was deleted: %v", err)
		}
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, live, metav1.DeleteOptions{})
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("cordoned and tainted nodes are still tried", func(t *testing.T) {
		name := c.Node("worker-1").Name
		patch := `{"spec":{"unschedulable":true,"taints":[{"key":"example.com/dedicated","value":"x","effect":"NoExecute"},{"key":"example.com/other","effect":"NoSchedule"}]}}`
		if _, err := c.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			undo := `{"spec":{"unschedulable":null,"taints":null}}`
			if _, err := c.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(undo), metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
		}()
		rep, r := verifyJSON(t, c, name)
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		wantStates(t, c, rep, map[string]vfy.State{"worker-1": vfy.Split})
	})

	t.Run("image pull failure is Unknown with the reason", func(t *testing.T) {
		r := run(t, c, "verify", c.Node("master-0").Name, "-o", "json", "--image", "localhost/oc-kubens/missing:1", "--image-pull-policy", "Never", "--timeout", "30s")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		var rep vfy.VerifyReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Nodes) != 1 {
			t.Fatalf("no report: %v", err)
		}
		if n := rep.Nodes[0]; n.State != vfy.StateUnknown || n.Reason != "ErrImageNeverPull" {
			t.Errorf("got %s(%s): %s, want Unknown(ErrImageNeverPull)", n.State, n.Reason, n.Message)
		}
		if r.took > 25*time.Second {
			t.Errorf("took %s: an image that cannot be pulled should end the node's probe before the timeout", r.took)
		}
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("an encapsulated node without /run/netns mounted fails exactly that check", func(t *testing.T) {
		// A node whose kubens.service predates OCPBUGS-83562: take the
		// mount away in the node's namespace; the unmount propagates into
		// the kubens namespace, a slave of it. The next subtest reboots
		// master-0, which runs the recipe again.
		n := c.Node("master-0")
		if out, err := exec.Command("nsenter", "--target", fmt.Sprint(n.InitPID()), "--mount", "--pid", "--", "umount", "/run/netns").CombinedOutput(); err != nil {
			t.Fatalf("umount /run/netns in %s: %v\n%s", n.Name, err, out)
		}
		rep, r := verifyJSON(t, c, n.Name)
		if r.code != 0 {
			// The state is still as expected; the failed check is reported.
			t.Errorf("exit %d, want 0", r.code)
		}
		m := byNode(rep)[n.Name]
		if f := m.FailedChecks(); m.State != vfy.Encapsulated || len(f) != 1 || f[0] != vfy.CheckNetnsName {
			t.Errorf("master-0: %s, failed checks %v; want Encapsulated with only %s failed: %+v", m.State, f, vfy.CheckNetnsName, m.Checks)
		}
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("expect not-encapsulated after a disable", func(t *testing.T) {
		// Disabling reboots the nodes out of the kubens namespace.
		if err := c.Reboot(ctx, "master-0", false); err != nil {
			t.Fatal(err)
		}
		if err := c.RebootMode(ctx, "worker-1", node.Plain); err != nil {
			t.Fatal(err)
		}
		setCurrentConfig(t, c, "master-0", "rendered-worker-off")
		rep, r := verifyJSON(t, c, "--all-nodes", "--expect", "not-encapsulated")
		if r.code != 0 {
			t.Errorf("exit %d, want 0", r.code)
		}
		wantStates(t, c, rep, map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-0": vfy.NotEncapsulated, "worker-1": vfy.NotEncapsulated})
		r = run(t, c, append([]string{"verify", "--all-nodes"}, imageFlags...)...)
		if r.code != 1 {
			t.Errorf("default --expect encapsulated: exit %d, want 1", r.code)
		}
		rep, r = verifyJSON(t, c, "--pool", "worker", "--expect", "not-encapsulated")
		if r.code != 0 || len(rep.Nodes) != 2 {
			t.Errorf("--pool worker: exit %d, %d nodes; want 0 and the 2 workers", r.code, len(rep.Nodes))
		}
	})

	// A kubelet that stops leaves its Node Ready until the node lifecycle
	// controller sees the lease expire (40 s by default); the harness runs
	// no such controller, so here the Node stays Ready, nothing faked, and
	// only --timeout can end that node's probe.
	t.Run("kubelet stopped, node still Ready, ends Unknown(Timeout) within the timeout", func(t *testing.T) {
		w0 := c.Node("worker-0")
		if err := w0.StopKubelet(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := c.Client.CoreV1().Nodes().Get(ctx, w0.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				t.Fatalf("worker-0 is %s=%s already: this case needs it still Ready", cond.Type, cond.Status)
			}
		}
		const timeout = 8 * time.Second
		rep, r := verifyJSON(t, c, "--all-nodes", "--timeout", timeout.String(), "--expect", "not-encapsulated")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		w := byNode(rep)[w0.Name]
		if w.State != vfy.StateUnknown || w.Reason != vfy.ReasonTimeout {
			t.Errorf("worker-0: %s(%s): %s, want Unknown(Timeout)", w.State, w.Reason, w.Message)
		}
		wantStates(t, c, rep, map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-1": vfy.NotEncapsulated})
		if s := rep.Summary; s.Total != 3 || s.Unknown != 1 || s.NotEncapsulated != 2 {
			t.Errorf("summary %+v", s)
		}
		if r.took > timeout+10*time.Second {
			t.Errorf("took %s with --timeout=%s", r.took, timeout)
		}
		t.Logf("took %s with --timeout=%s", r.took.Round(time.Millisecond), timeout)
		// The pod is bound to a node whose kubelet will never confirm its
		// deletion; cleanup must still leave nothing.
		noLeftovers(t, c.Client, 30*time.Second)
	})

	t.Run("kubelet stopped, node NotReady, ends Unknown(NodeNotReady) within the timeout", func(t *testing.T) {
		if err := c.Node("worker-0").StopKubelet(ctx); err != nil { // still stopped: a no-op
			t.Fatal(err)
		}
		// The harness runs no node lifecycle controller: say NotReady as
		// it would once the kubelet's lease expired.
		n, err := c.Client.CoreV1().Nodes().Get(ctx, c.Node("worker-0").Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason = corev1.ConditionUnknown, "NodeStatusUnknown"
			}
		}
		if _, err := c.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		const timeout = 8 * time.Second
		rep, r := verifyJSON(t, c, "--all-nodes", "--timeout", timeout.String(), "--expect", "not-encapsulated")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		w := byNode(rep)[c.Node("worker-0").Name]
		if w.State != vfy.StateUnknown || w.Reason != vfy.ReasonNodeNotReady {
			t.Errorf("worker-0: %s(%s), want Unknown(NodeNotReady)", w.State, w.Reason)
		}
		wantStates(t, c, rep, map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-1": vfy.NotEncapsulated})
		if r.took > timeout+15*time.Second {
			t.Errorf("took %s with --timeout=%s", r.took, timeout)
		}
		// The pod on the dead node never terminates by itself; cleanup must
		// still leave nothing.
		noLeftovers(t, c.Client, 30*time.Second)
	})

	// SIGHUP (the terminal closed) counts as SIGTERM. Each run prints the
	// nodes that finished and worker-0 as Unknown(Interrupted), in the
	// output format asked for.
	for _, tc := range []struct {
		sig    syscall.Signal
		output string
	}{{syscall.SIGINT, ""}, {syscall.SIGTERM, "json"}, {syscall.SIGHUP, "yaml"}} {
		t.Run(tc.sig.String()+" mid-run prints the finished nodes and leaves nothing", func(t *testing.T) { interruptMidRun(t, c, tc.sig, tc.output) })
	}
}

// interruptMidRun starts the built binary on every node while one node's
// kubelet is stopped (its pod keeps the run busy), signals it once the other
// nodes are done, and checks it exits at once with 130, prints the nodes
// that finished with worker-0 Unknown(Interrupted) (as a table, or -o json
// or yaml), and leaves nothing behind.
func interruptMidRun(t *testing.T, c *harness.Cluster, sig syscall.Signal, output string) {
	ctx := context.Background()
	// worker-0's kubelet is still stopped, so its pod keeps the run busy.
	var stdout, stderr bytes.Buffer
	args := append([]string{"verify", "--all-nodes", "--timeout", "2m", "--expect", "not-encapsulated", "--kubeconfig", c.KubeconfigPath()}, imageFlags...)
	if output != "" {
		args = append(args, "-o", output)
	}
	cmd := exec.Command(pluginBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var term *terminal
	if output == "" {
		// The table run has its stderr on a terminal, so that verify draws
		// its progress line there and the wait below can read it.
		term = openTerminal(t)
		cmd.Stderr = term.Slave
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until the run's pods exist and the healthy nodes are done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: vfy.RunLabel})
		if err != nil {
			t.Fatal(err)
		}
		finished := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded {
				finished++
			}
		}
		if len(pods.Items) == 3 && finished == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run's pods did not show up: %d pods, %d finished\n%s%s", len(pods.Items), finished, stderr.String(), termText(term))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The run reads the finished pods through its watch. On a terminal its
	// progress line shows when it has; with -o json or yaml it prints
	// nothing per node (by design: nothing extra for programs), and with
	// worker-0 NotReady no later pod creation waits on a freed slot, so
	// nothing outside the process shows it: give it a moment.
	if term != nil {
		term.waitFor(t, "Verifying 2/3 nodes", 60*time.Second)
	} else {
		time.Sleep(time.Second)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("verify did not exit within 40s of %s\n%s%s", sig, stderr.String(), termText(term))
	}
	t.Logf("exited %s after the signal with %d\nstdout:\n%s\nstderr:\n%s%s", time.Since(sent).Round(time.Millisecond), cmd.ProcessState.ExitCode(), stdout.String(), stderr.String(), termText(term))
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130 (interrupted)", code)
	}
	if term != nil {
		// The progress line counts the interrupted node and ends its line
		// before the table.
		term.waitFor(t, "NotEncapsulated 2, Unknown 1\r\n", 10*time.Second)
	}

	// The partial report: master-0 and worker-1 finished, worker-0 did not.
	var rep vfy.VerifyReport
	switch output {
	case "json":
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("no JSON report after %s: %v", sig, err)
		}
	case "yaml":
		if err := yamlToJSON(stdout.String(), &rep); err != nil {
			t.Fatalf("no YAML report after %s: %v", sig, err)
		}
	default:
		rows := map[string][]string{}
		for _, l := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(l); len(f) >= 2 {
				rows[f[0]] = f
			}
		}
		for short, want := range map[string]string{"master-0": "NotEncapsulated", "worker-1": "NotEncapsulated", "worker-0": "Unknown(Interrupted)"} {
			if f := rows[c.Node(short).Name]; len(f) < 2 || f[1] != want {
				t.Errorf("table row of %s: %q, want state %s", short, f, want)
			}
		}
		if !strings.Contains(stdout.String(), "3 nodes: 0 Encapsulated, 2 NotEncapsulated, 0 Split, 1 Unknown.") {
			t.Errorf("no summary line for the partial run")
		}
	}
	if output != "" {
		got := byNode(&rep)
		wantStates(t, c, &rep, map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-1": vfy.NotEncapsulated, "worker-0": vfy.StateUnknown})
		if w := got[c.Node("worker-0").Name]; w.Reason != vfy.ReasonInterrupted {
			t.Errorf("worker-0: %s(%s), want Unknown(Interrupted)", w.State, w.Reason)
		}
		if m := got[c.Node("master-0").Name]; m.Expected != vfy.NotEncapsulated {
			t.Errorf("master-0: expected %q, want NotEncapsulated from its rendered config", m.Expected)
		}
		if s := rep.Summary; s.Total != 3 || s.NotEncapsulated != 2 || s.Unknown != 1 || s.NotAsExpected != 1 {
			t.Errorf("summary %+v", s)
		}
	}
	noLeftovers(t, c.Client, 30*time.Second)
}

// TestVerifyPlainKubernetes: no MachineConfig API, containerd runtime.
func TestVerifyPlainKubernetes(t *testing.T) {
	c := startCluster(t, harness.Options{
		Kind:                harness.ContainerdNodes,
		NoMachineConfigCRDs: true,
		Nodes:               []harness.NodeSpec{{Name: "node-0", Role: "worker", Mode: node.Encapsulated}, {Name: "node-1", Role: "worker", Mode: node.Plain}},
	})
	r := run(t, c, "verify", "--all-nodes")
	if r.code != 2 || !strings.Contains(r.stderr, "--image is required") {
		t.Errorf("without --image: exit %d, want 2 with a clear error", r.code)
	}
	r = run(t, c, append([]string{"verify", "--all-nodes"}, imageFlags...)...)
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (node-1 is plain)", r.code)
	}
	rows := 0
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == c.Node("node-0").Name {
			rows++
			if len(f) < 3 || f[1] != "Encapsulated" || f[2] != "-" {
				t.Errorf("node-0 line %q: want Encapsulated with expected -", l)
			}
		}
	}
	if rows != 1 {
		t.Errorf("%d rows for node-0, want 1:\n%s", rows, r.stdout)
	}
	r = run(t, c, append([]string{"verify", "--all-nodes", "-o", "yaml"}, imageFlags...)...)
	var rep vfy.VerifyReport
	if err := yamlToJSON(r.stdout, &rep); err != nil {
		t.Fatal(err)
	}
	wantStates(t, c, &rep, map[string]vfy.State{"node-0": vfy.Encapsulated, "node-1": vfy.NotEncapsulated})
	for _, n := range rep.Nodes {
		if n.Expected != "" || n.Runtime != "containerd" {
			t.Errorf("%s: expected %q runtime %q; want none and containerd", n.Node, n.Expected, n.Runtime)
		}
	}
	if r := run(t, c, "verify", "--pool", "worker", "--image", "x"); r.code != 2 || !strings.Contains(r.stderr, "MachineConfig API") {
		t.Errorf("--pool without the MachineConfig API: exit %d", r.code)
	}
	noLeftovers(t, c.Client, 30*time.Second)
}

func yamlToJSON(s string, v any) error {
	j, err := yamlToJSONBytes([]byte(s))
	if err != nil {
		return err
	}
	return json.Unmarshal(j, v)
}
