package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// The fault tests of issue 14 for verify: real processes (etcd,
// kube-apiserver, kube-controller-manager, the built plugin binary) and
// object-only nodes whose kubelets the agent of e2eutil plays, so that a
// node can reboot, vanish or hang on cue. Each fault must end in a correct
// report or in one clear error with the documented exit code, within a
// bounded time, and leave no namespace or pod behind.
//
// The SIGKILL case waits for a stale namespace to expire (about 105 s,
// fixed by the engine's deadline slack and expiry margin), so it runs
// beside the others, on a control plane of its own.
func TestVerifyFaults(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	t.Run("killed", func(t *testing.T) {
		t.Parallel()
		testVerifyKilled(t)
	})
	t.Run("apiserver-and-nodes", func(t *testing.T) {
		t.Parallel()
		f := startFaultCluster(t)
		t.Run("apiserver-restart", func(t *testing.T) { testVerifyAPIServerRestart(t, f) })
		t.Run("node-reboot-and-delete", func(t *testing.T) { testVerifyNodeRebootAndDelete(t, f) })
	})
}

// faultCluster is a control plane with the agent playing its nodes'
// kubelets; down and hang steer the agent per node.
type faultCluster struct {
	cp   *controlplane.ControlPlane
	kube kubernetes.Interface
	down sync.Map // node name -> true while its kubelet is down
	hang sync.Map // node name -> true while its probe hangs
}

func startFaultCluster(t *testing.T) *faultCluster {
	t.Helper()
	f := &faultCluster{cp: controlplane.StartForTest(t, controlplane.Options{Logf: t.Logf}, 3*time.Minute)}
	f.kube = kubernetes.NewForConfigOrDie(f.cp.RESTConfig())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // the agent stops before the control plane
	msg := benchReport()
	is := func(m *sync.Map) func(string) bool {
		return func(node string) bool { v, _ := m.Load(node); return v == true }
	}
	e2eutil.StartAgent(ctx, t, f.cp.RESTConfig(), e2eutil.AgentOptions{
		Delay:  func() time.Duration { return time.Second },
		Report: func(context.Context, string) string { return msg },
		Down:   is(&f.down),
		Hang:   is(&f.hang),
	})
	return f
}

func (f *faultCluster) createNodes(t *testing.T, names ...string) {
	t.Helper()
	nodes := map[string][]string{}
	for _, n := range names {
		nodes[n] = []string{"worker"}
	}
	if err := e2eutil.CreateNodes(context.Background(), f.cp.RESTConfig(), nodes, true); err != nil {
		t.Fatal(err)
	}
}

// setReady writes the node's Ready condition, as the kubelet (True) or the
// node lifecycle controller (Unknown) would.
func (f *faultCluster) setReady(t *testing.T, name string, status corev1.ConditionStatus) {
	t.Helper()
	for try := 0; ; try++ {
		n, err := f.kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			now := metav1.Now()
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "Test",
				LastHeartbeatTime: now, LastTransitionTime: now}}
			_, err = f.kube.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{})
		}
		if err == nil {
			return
		}
		if try > 20 {
			t.Fatalf("node %s Ready=%s: %v", name, status, err)
		}
	}
}

// verifyProc is the built plugin running as a child process.
type verifyProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	start          time.Time
	done           chan struct{}
}

func startVerify(t *testing.T, kubeconfig string, args ...string) *verifyProc {
	t.Helper()
	p := &verifyProc{done: make(chan struct{})}
	full := append([]string{"verify", "--kubeconfig", kubeconfig, "--image", "registry.example.com/tools:latest"}, args...)
	p.cmd = exec.Command(pluginBinary(t), full...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	t.Logf("started oc kubens %s", strings.Join(full, " "))
	return p
}

// wait waits for the child to exit; not exiting within bound is a hang.
func (p *verifyProc) wait(t *testing.T, bound time.Duration) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("verify still running after %s (a hang); stderr:\n%s", bound, p.stderr.String())
	}
	r := result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.cmd.ProcessState.ExitCode(), took: time.Since(p.start)}
	t.Logf("verify -> %s", r)
	return r
}

// checkErrorLines: at most one "error:" line, exactly one when verify could
// not run (exit 2), and never a panic.
func checkErrorLines(t *testing.T, r result) {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "error:") {
			errs = append(errs, l)
		}
	}
	if len(errs) > 1 || (r.code == 2) != (len(errs) == 1) {
		t.Errorf("exit %d with %d error lines, want one exactly when verify could not run (exit 2): %q", r.code, len(errs), errs)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("verify panicked:\n%s", r.stderr)
	}
	// A RetryWatcher logs every failed try through klog: once a second
	// while the API server is away.
	if m := klogLine.FindAllString(r.stderr, -1); len(m) > 0 {
		t.Errorf("raw klog lines on stderr: %q", m)
	}
}

func decodeReport(t *testing.T, r result) *vfy.VerifyReport {
	t.Helper()
	var rep vfy.VerifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify -o json printed no report: %v\n%s", err, r)
	}
	return &rep
}

// probePods lists the pods of every run.
func probePods(t *testing.T, kube kubernetes.Interface) []corev1.Pod {
	t.Helper()
	pods, err := kube.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// waitFor polls cond until it holds; not within bound fails the test.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testVerifyAPIServerRestart: the real kube-apiserver is stopped and
// started again on the same port while `verify --all-nodes` creates and
// watches its pods. verify must come through with every node verified: its
// watch resumes, a pod creation refused by the missing server is tried
// again, and the namespace is deleted at the end.
func testVerifyAPIServerRestart(t *testing.T, f *faultCluster) {
	const n = 40
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("restart-%02d", i))
	}
	f.createNodes(t, names...)

	// All at once, 1 s per pod: the restart lands while pods are still
	// being created and the first ones report.
	p := startVerify(t, f.cp.KubeconfigPath, "--all-nodes", "--parallelism", "40", "--timeout", "2m", "-o", "json")
	waitFor(t, "verify created its first pods", time.Minute, func() bool { return len(probePods(t, f.kube)) >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stopped := time.Now()
	if err := f.cp.RestartDaemon(ctx, controlplane.APIServer, 3*time.Second); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	back := time.Now()
	t.Logf("kube-apiserver down for %s (3 s stopped, then start to /readyz)", back.Sub(stopped).Round(time.Millisecond))

	r := p.wait(t, 3*time.Minute)
	checkErrorLines(t, r)
	rep := decodeReport(t, r)
	got := byNode(rep)
	for _, name := range names {
		if st := got[name]; st.State != vfy.Encapsulated {
			t.Errorf("%s: %s(%s): %s, want Encapsulated", name, st.State, st.Reason, st.Message)
		}
	}
	if r.code != 0 {
		t.Errorf("exit %d, want 0", r.code)
	}
	t.Logf("MEASURED apiserver-restart: verify exit %d after %s, %s after the API server was back",
		r.code, r.took.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	noLeftovers(t, f.kube, time.Minute)
}

// testVerifyNodeRebootAndDelete: in one run, one node reboots while its
// probe runs (its kubelet stops answering and the node goes NotReady, then
// both come back) and another node is deleted while its probe runs. The
// rebooted node has no verdict and says why; the deleted one says it was
// deleted, at once rather than at the timeout; the others are verified.
func testVerifyNodeRebootAndDelete(t *testing.T, f *faultCluster) {
	ok := []string{"ok-0", "ok-1", "ok-2"}
	const rebooted, deleted = "rebooting-0", "deleted-0"
	f.createNodes(t, append([]string{rebooted, deleted}, ok...)...)
	// Both probes hang until their node's fault, so the fault surely
	// lands while the probe runs.
	f.hang.Store(rebooted, true)
	f.hang.Store(deleted, true)

	// A timeout far beyond the test's bound: a run that waits for the
	// deleted node's timeout is caught as a hang, not as a slow pass.
	args := append([]string{"-o", "json", "--timeout", "10m"}, append([]string{rebooted, deleted}, ok...)...)
	p := startVerify(t, f.cp.KubeconfigPath, args...)
	running := func(node string) bool {
		for _, pod := range probePods(t, f.kube) {
			if pod.Spec.NodeName == node && pod.Status.Phase == corev1.PodRunning {
				return true
			}
		}
		return false
	}
	waitFor(t, "the probes of both nodes run", time.Minute, func() bool { return running(rebooted) && running(deleted) })

	// The deletion: the node's kubelet is gone with it.
	f.down.Store(deleted, true)
	deletedAt := time.Now()
	if err := f.kube.CoreV1().Nodes().Delete(context.Background(), deleted, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The reboot: kubelet down, node NotReady, and back 3 s later, as the
	// machine config daemon's reboot looks from the API.
	f.down.Store(rebooted, true)
	f.setReady(t, rebooted, corev1.ConditionUnknown)
	time.Sleep(3 * time.Second) // the reboot itself: nothing to poll
	f.hang.Store(rebooted, false)
	f.setReady(t, rebooted, corev1.ConditionTrue)
	f.down.Store(rebooted, false)
	backAt := time.Now()

	r := p.wait(t, 2*time.Minute)
	checkErrorLines(t, r)
	got := byNode(decodeReport(t, r))
	for _, name := range ok {
		if st := got[name]; st.State != vfy.Encapsulated {
			t.Errorf("%s: %s(%s): %s, want Encapsulated", name, st.State, st.Reason, st.Message)
		}
	}
	if st := got[deleted]; st.State != vfy.StateUnknown || st.Reason != vfy.ReasonNodeDeleted {
		t.Errorf("deleted node: %s(%s): %s, want Unknown(%s)", st.State, st.Reason, st.Message, vfy.ReasonNodeDeleted)
	}
	// After a reboot the kubelet finds the container gone
	// (ContainerStatusUnknown): no verdict, and the message says so.
	if st := got[rebooted]; st.State != vfy.StateUnknown || !strings.Contains(st.Message, "ContainerStatusUnknown") {
		t.Errorf("rebooted node: %s(%s): %s, want Unknown naming ContainerStatusUnknown", st.State, st.Reason, st.Message)
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (nodes without a verdict)", r.code)
	}
	t.Logf("MEASURED node-delete: verify exit %d %s after the node was deleted; node-reboot: %s after the node was back",
		r.code, time.Since(deletedAt).Round(time.Millisecond), time.Since(backAt).Round(time.Millisecond))
	noLeftovers(t, f.kube, time.Minute)

	// Recovery: the rebooted node verifies again at once.
	again := startVerify(t, f.cp.KubeconfigPath, "-o", "json", "--timeout", "1m", rebooted).wait(t, 2*time.Minute)
	checkErrorLines(t, again)
	if st := byNode(decodeReport(t, again))[rebooted]; st.State != vfy.Encapsulated || again.code != 0 {
		t.Errorf("rebooted node, verified again: exit %d, %s(%s): %s, want Encapsulated", again.code, st.State, st.Reason, st.Message)
	}
	t.Logf("MEASURED node-reboot: the next verify of the rebooted node took %s", again.took.Round(time.Millisecond))
	noLeftovers(t, f.kube, time.Minute)
}

// testVerifyKilled: verify is killed with SIGKILL while its probes run, so
// it cleans up nothing. Its pods must still end, by the
// activeDeadlineSeconds the kubelet enforces, and the next verify run after
// the namespace's expiry must remove it (and not before).
func testVerifyKilled(t *testing.T) {
	f := startFaultCluster(t)
	nodes := []string{"killed-0", "killed-1", "killed-2"}
	f.createNodes(t, nodes...)
	for _, n := range nodes {
		f.hang.Store(n, true)
	}

	// --timeout 5s: activeDeadlineSeconds 35 (timeout plus 30 s slack),
	// and the namespace expires after two waves of 5 s, that deadline and
	// a minute's margin: about 105 s.
	p := startVerify(t, f.cp.KubeconfigPath, "--all-nodes", "--timeout", "5s")
	var ns string
	waitFor(t, "the probes run", time.Minute, func() bool {
		pods := probePods(t, f.kube)
		run := 0
		for _, pod := range pods {
			if pod.Status.Phase == corev1.PodRunning {
				run++
				ns = pod.Namespace
			}
		}
		return run == len(nodes)
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-p.done

	stale, err := f.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s of the killed run: %v", ns, err)
	}
	expires, ok := vfy.ExpiresAt(stale)
	if !ok {
		t.Fatalf("namespace %s has no %s annotation", ns, vfy.ExpiresAnnotation)
	}
	var deadline int64
	waitFor(t, "the killed run's pods end by activeDeadlineSeconds", 2*time.Minute, func() bool {
		for _, pod := range probePods(t, f.kube) {
			if pod.Namespace != ns {
				continue
			}
			deadline = *pod.Spec.ActiveDeadlineSeconds
			if pod.Status.Phase != corev1.PodFailed || pod.Status.Reason != "DeadlineExceeded" {
				return false
			}
		}
		return true
	})
	podsEnded := time.Since(killed)
	for _, n := range nodes {
		f.hang.Store(n, false) // later runs get their report
	}
	t.Logf("MEASURED killed: pods (activeDeadlineSeconds %d) ended %s after the kill; namespace %s expires %s after the kill",
		deadline, podsEnded.Round(time.Millisecond), ns, expires.Sub(killed).Round(time.Second))

	// Before the expiry a new run leaves the namespace alone: it cannot
	// tell a crashed run from one that still works.
	if time.Now().Before(expires) {
		r := startVerify(t, f.cp.KubeconfigPath, "--all-nodes", "--timeout", "1m").wait(t, 2*time.Minute)
		checkErrorLines(t, r)
		if r.code != 0 || strings.Contains(r.stderr, "Deleted stale namespace") {
			t.Errorf("verify before the expiry: exit %d, want 0 and %s kept", r.code, ns)
		}
		cur, err := f.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if err != nil || cur.DeletionTimestamp != nil {
			t.Errorf("namespace %s of the killed run removed before it expired (%v)", ns, err)
		}
	}

	waitFor(t, "the namespace expired", 3*time.Minute, func() bool { return time.Now().After(expires) })
	r := startVerify(t, f.cp.KubeconfigPath, "--all-nodes", "--timeout", "1m").wait(t, 2*time.Minute)
	checkErrorLines(t, r)
	if r.code != 0 || !strings.Contains(r.stderr, "Deleted stale namespace "+ns) {
		t.Errorf("verify after the expiry: exit %d, want 0 and \"Deleted stale namespace %s\"", r.code, ns)
	}
	waitFor(t, "the stale namespace is gone", time.Minute, func() bool {
		_, err := f.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	t.Logf("MEASURED killed: stale namespace swept %s after the kill (%s after it expired)",
		time.Since(killed).Round(time.Millisecond), time.Since(expires).Round(time.Millisecond))
	noLeftovers(t, f.kube, time.Minute)
}
