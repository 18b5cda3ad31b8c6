package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/internal/fakecluster"
)

// toyResult and toyProbe stand for a second command on the same engine
// (measure's shape: its own command, its own result type, a window).
type toyResult struct {
	Node, Value, Reason, Message string
}

var toyCommand = []string{"/bin/toy", "--sample"}

type toyProbe struct {
	// seen, when set, hears "node/phase" for every pod Read is given: the
	// engine calls Read only for a pod it is waiting on, so a test can
	// know the engine has taken a pod up before it deletes it.
	seen chan<- string
}

func (toyProbe) Command() []string { return toyCommand }

// Read takes the termination message as the value: a message verify's
// ClassifyPod would reject as a bad report, so a result with a value can
// only have come from this Read.
func (p toyProbe) Read(node string, pod *corev1.Pod) (toyResult, bool) {
	if p.seen != nil {
		select {
		case p.seen <- node + "/" + string(pod.Status.Phase):
		default:
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; cs.Name == ProbeContainer && t != nil {
			return toyResult{Node: node, Value: strings.TrimPrefix(t.Message, "value=")}, true
		}
	}
	return toyResult{}, false
}

func (toyProbe) Failed(node, reason, message string) toyResult {
	return toyResult{Node: node, Reason: reason, Message: message}
}

var toyRun = RunOptions{Purpose: "measure", Window: 15 * time.Second}

func testNode(name string, ready bool) corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}},
	}
}

// testClock is the engine's clock; it moves only when the test says so.
// It counts its reads: once every pod's creation has been recorded, only
// the run loop's deadline check reads it, so a read proves the loop came
// round again (it stops when no node is left open).
type testClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
	waits []clockWait
}

type clockWait struct {
	n  int
	ch chan struct{}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	kept := c.waits[:0]
	for _, w := range c.waits {
		if c.reads >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	c.waits = kept
	return c.t
}

// afterReads is closed once the clock has been read n more times.
func (c *testClock) afterReads(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.waits = append(c.waits, clockWait{n: c.reads + n, ch: ch})
	return ch
}

// waitReads waits until the clock has been read n more times than when
// ch was made by afterReads, or fails the test.
func waitReads(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("the run loop never came round to a deadline check %s", what)
	}
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testEngine(c *fake.Clientset, clk *testClock) *Engine {
	return &Engine{Client: c, Image: "img", Timeout: time.Minute, Now: clk.Now}
}

type runResult[R any] struct {
	out *ProbeOutcome[R]
	err error
}

func start[R any](ctx context.Context, e *Engine, nodes []corev1.Node, o RunOptions, p Probe[R]) <-chan runResult[R] {
	done := make(chan runResult[R], 1)
	go func() {
		out, err := RunProbe(ctx, e, nodes, o, p)
		done <- runResult[R]{out, err}
	}()
	return done
}

func wait[R any](t *testing.T, done <-chan runResult[R]) (*ProbeOutcome[R], error) {
	t.Helper()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end")
		return nil, nil
	}
}

func setContainer(t *testing.T, c *fake.Clientset, pod *corev1.Pod, phase corev1.PodPhase, st corev1.ContainerState) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status.Phase = phase
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ProbeContainer, State: st}}
	if _, err := c.CoreV1().Pods(pod.Namespace).Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitSeen waits until the probe has read every one of want ("node/phase"),
// in any order.
func waitSeen(t *testing.T, seen <-chan string, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	timeout := time.After(10 * time.Second)
	for len(left) > 0 {
		select {
		case got := <-seen:
			delete(left, got)
		case <-timeout:
			t.Fatalf("the probe never read %v", keys(left))
		}
	}
}

func namespaces(t *testing.T, c *fake.Clientset) []string {
	t.Helper()
	list, err := c.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names
}

// createdNamespace is the namespace the run created, from the client's
// recorded actions (the run deletes it before the test can look).
func createdNamespace(t *testing.T, c *fake.Clientset) *corev1.Namespace {
	t.Helper()
	for _, a := range c.Actions() {
		if ca, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "namespaces" {
			return ca.GetObject().(*corev1.Namespace)
		}
	}
	t.Fatal("no namespace was created")
	return nil
}

func TestRunProbeToyProbe(t *testing.T) {
	c := fakecluster.New()
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	nodes := []corev1.Node{testNode("n1", true), testNode("n2", true)}
	seen := make(chan string, 16)
	done := start(context.Background(), testEngine(c, clk), nodes, toyRun, Probe[toyResult](toyProbe{seen: seen}))

	pods := fakecluster.WaitPods(t, c, 2)
	for _, name := range []string{"measure-n1", "measure-n2"} {
		p := pods[name]
		if p == nil {
			t.Fatalf("no pod %s among %v", name, keys(pods))
		}
		if !strings.HasPrefix(p.Namespace, "oc-kubens-measure-") {
			t.Errorf("pod %s in namespace %q, want the prefix oc-kubens-measure-", name, p.Namespace)
		}
		if got := p.Spec.Containers[0].Command; !slices.Equal(got, toyCommand) {
			t.Errorf("pod %s runs a %d-word command starting %.40q, want the probe's command %q", name, len(got), strings.Join(got, " "), toyCommand)
		}
		// 60s timeout + 15s window + the engine's 30s slack.
		if d := p.Spec.ActiveDeadlineSeconds; d == nil || *d != 105 {
			t.Errorf("pod %s activeDeadlineSeconds %s, want 105 (timeout plus window plus slack)", name, deref(d))
		}
	}
	// Running is "on its way" for this probe: no result yet, so the run
	// must still be waiting for n1 after this.
	setContainer(t, c, pods["measure-n1"], corev1.PodRunning,
		corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	setContainer(t, c, pods["measure-n2"], corev1.PodSucceeded,
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: "value=7"}})
	// The engine has read both updates (so both creations are recorded and
	// n2 is finished); a later clock read is a deadline check, which the
	// run loop makes only while a node is still open.
	waitSeen(t, seen, "n1/Running", "n2/Succeeded")
	waitReads(t, clk.afterReads(1), "after n2 finished while n1's pod was still running")
	select {
	case r := <-done:
		t.Fatalf("the run ended while n1's pod was still running: %+v", r.out.Results)
	default:
	}
	setContainer(t, c, pods["measure-n1"], corev1.PodSucceeded,
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: "value=42"}})

	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	want := []toyResult{{Node: "n1", Value: "42"}, {Node: "n2", Value: "7"}}
	if !slices.Equal(out.Results, want) {
		t.Errorf("results %+v, want %+v", out.Results, want)
	}
	ns := createdNamespace(t, c)
	if out.Namespace != pods["measure-n1"].Namespace || ns.Labels[RunLabel] != "measure" {
		t.Errorf("namespace %q labelled %q=%q, want the pods' namespace labelled measure", out.Namespace, RunLabel, ns.Labels[RunLabel])
	}
	// The window lengthens the namespace's life too (2 waves of 75s, the
	// pod deadline of 105s and a minute), so a sweep never takes it early.
	if exp, _ := ExpiresAt(ns); !exp.Equal(clk.Now().Add(2*75*time.Second + 105*time.Second + time.Minute)) {
		t.Errorf("namespace expires at %s", exp)
	}
	if out.CleanupErr != nil || len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind: %v (cleanup error %v)", namespaces(t, c), out.CleanupErr)
	}
}

func TestRunProbeDeletedPod(t *testing.T) {
	c := fakecluster.New()
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	seen := make(chan string, 16)
	done := start(context.Background(), testEngine(c, clk), []corev1.Node{testNode("n1", true)}, toyRun, Probe[toyResult](toyProbe{seen: seen}))
	p := fakecluster.WaitPods(t, c, 1)["measure-n1"]
	if p == nil {
		t.Fatal("no pod measure-n1")
	}
	// Deleted mid-run: once it runs, and once the engine follows it (a
	// pod deleted before that would be missed by the fake's watch, which
	// unlike an apiserver's does not replay history).
	setContainer(t, c, p, corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	waitSeen(t, seen, "n1/Running")
	if err := c.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Results[0]
	if r.Node != "n1" || r.Value != "" || r.Reason != ReasonPodDeleted || !strings.Contains(r.Message, "was deleted") {
		t.Errorf("result %+v, want Failed(n1, %s, ...)", r, ReasonPodDeleted)
	}
	if len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind: %v", namespaces(t, c))
	}
}

func TestRunProbeTimeoutAndNotReady(t *testing.T) {
	c := fakecluster.New()
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	nodes := []corev1.Node{testNode("up", true), testNode("down", false)}
	seen := make(chan string, 16)
	done := start(context.Background(), testEngine(c, clk), nodes, toyRun, Probe[toyResult](toyProbe{seen: seen}))
	pods := fakecluster.WaitPods(t, c, 2)
	// The engine reads a pod's update once the pod's creation is recorded
	// (with the clock's time): once it has read both, only deadline checks
	// read the clock. (The fake's watch may miss the first creation, so
	// wait on an update, not on the pods' creation events.)
	for _, name := range []string{"measure-up", "measure-down"} {
		setContainer(t, c, pods[name], corev1.PodPending,
			corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})
	}
	waitSeen(t, seen, "up/Pending", "down/Pending")

	// The pods never finish. Just past the timeout is not enough: the
	// window is part of each pod's time. Three reads of the clock after
	// the step: two deadline checks at the new time ended no run, and the
	// loop came round again, so both nodes were still open.
	reads := clk.afterReads(3)
	clk.Add(time.Minute + 5*time.Second)
	waitReads(t, reads, "after two checks past the timeout alone")
	select {
	case r := <-done:
		t.Fatalf("the run ended before timeout plus window: %+v", r.out.Results)
	default:
	}
	clk.Add(time.Minute)
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"up": ReasonTimeout, "down": ReasonNodeNotReady}
	for _, r := range out.Results {
		if r.Reason != want[r.Node] || r.Value != "" {
			t.Errorf("%s: result %+v, want Failed(%s, ...)", r.Node, r, want[r.Node])
		}
		if !strings.Contains(r.Message, "no result within the 60s timeout plus the 15s window") {
			t.Errorf("%s: message %q does not name the timeout and the window", r.Node, r.Message)
		}
	}
	if len(out.Results) != 2 || len(pods) != 2 {
		t.Errorf("%d results for %d pods", len(out.Results), len(pods))
	}
	if len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind: %v", namespaces(t, c))
	}
}

func TestRunProbeInterrupted(t *testing.T) {
	c := fakecluster.New()
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := []corev1.Node{testNode("n1", true), testNode("n2", true)}
	seen := make(chan string, 16)
	done := start(ctx, testEngine(c, clk), nodes, toyRun, Probe[toyResult](toyProbe{seen: seen}))
	pods := fakecluster.WaitPods(t, c, 2)
	setContainer(t, c, pods["measure-n1"], corev1.PodSucceeded,
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: "value=1"}})
	// The engine has n1's result before the cancel.
	waitSeen(t, seen, "n1/Succeeded")
	cancel()
	out, err := wait(t, done)
	if !errors.Is(err, context.Canceled) || out == nil {
		t.Fatalf("err %v, outcome %v; want context.Canceled with the partial outcome", err, out)
	}
	want := []toyResult{
		{Node: "n1", Value: "1"},
		{Node: "n2", Reason: ReasonInterrupted, Message: "measure was interrupted before this node's probe finished"},
	}
	if !slices.Equal(out.Results, want) {
		t.Errorf("results %+v, want %+v", out.Results, want)
	}
	if len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind after the cancel: %v", namespaces(t, c))
	}
}

func TestRunProbeBadPurpose(t *testing.T) {
	for _, purpose := range []string{"", "Measure", "a.b", strings.Repeat("m", 21)} {
		c := fakecluster.New()
		_, err := RunProbe(context.Background(), testEngine(c, &testClock{}), []corev1.Node{testNode("n1", true)},
			RunOptions{Purpose: purpose}, Probe[toyResult](toyProbe{}))
		if err == nil {
			t.Errorf("purpose %q accepted", purpose)
		}
		if len(c.Actions()) != 0 {
			t.Errorf("purpose %q: the run touched the cluster: %v", purpose, c.Actions())
		}
	}
}

// TestRunIsVerifyProbe pins how verify maps onto the generic engine: its
// names, its command, its deadline without a window, ClassifyPod for the
// result, Unknown with verify's words for a node given up on.
func TestRunIsVerifyProbe(t *testing.T) {
	run := func(ctx context.Context, c *fake.Clientset) <-chan runResult[NodeResult] {
		done := make(chan runResult[NodeResult], 1)
		e := testEngine(c, &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
		go func() {
			out, err := e.Run(ctx, []corev1.Node{testNode("n1", true)})
			done <- runResult[NodeResult]{out, err}
		}()
		return done
	}

	c := fakecluster.New()
	done := run(context.Background(), c)
	p := fakecluster.WaitPods(t, c, 1)["verify-n1"]
	if p == nil {
		t.Fatal("no pod verify-n1")
	}
	if !strings.HasPrefix(p.Namespace, "oc-kubens-verify-") {
		t.Errorf("namespace %q, want the prefix oc-kubens-verify-", p.Namespace)
	}
	if !slices.Equal(p.Spec.Containers[0].Command, ProbeCommand()) {
		t.Error("verify pod does not run the probe script")
	}
	if d := p.Spec.ActiveDeadlineSeconds; d == nil || *d != 90 {
		t.Errorf("activeDeadlineSeconds %s, want 90 (timeout plus slack)", deref(d))
	}
	setContainer(t, c, p, corev1.PodFailed,
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Message: "boom"}})
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Results[0]; r.Node != "n1" || r.State != StateUnknown || r.Reason != ReasonProbeFailed {
		t.Errorf("n1: %+v, want ClassifyPod's Unknown(%s)", r, ReasonProbeFailed)
	}
	if createdNamespace(t, c).Labels[RunLabel] != "verify" {
		t.Error("namespace not labelled verify")
	}
	if _, err := c.CoreV1().Namespaces().Get(context.Background(), out.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s still there (%v)", out.Namespace, err)
	}

	c = fakecluster.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done = run(ctx, c)
	fakecluster.WaitPods(t, c, 1)
	cancel()
	out, err = wait(t, done)
	if !errors.Is(err, context.Canceled) || out == nil {
		t.Fatalf("err %v, outcome %v; want context.Canceled with the partial outcome", err, out)
	}
	want := NodeResult{Node: "n1", State: StateUnknown, Reason: ReasonInterrupted,
		Message: "verify was interrupted before this node's probe finished"}
	if r := out.Results[0]; r.Node != want.Node || r.State != want.State || r.Reason != want.Reason || r.Message != want.Message {
		t.Errorf("interrupted: %+v, want %+v", r, want)
	}
	if len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind after the cancel: %v", namespaces(t, c))
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func deref(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

// TestRunWithUnits: every pod probes the union of the nodes' wrapped units
// (valid names only, sorted) and each node's result covers its own units; too
// many units is an error before anything is created.
func TestRunWithUnits(t *testing.T) {
	c := fakecluster.New()
	e := testEngine(c, &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	nodes := []corev1.Node{testNode("n1", true), testNode("n2", true), testNode("n3", true)}
	wrapped := map[string][]string{
		"n1": {"b.service", "a.service"},
		"n2": {"b.service", "odd.socket"},
	}
	done := make(chan runResult[NodeResult], 1)
	go func() {
		out, err := e.RunWithUnits(context.Background(), nodes, wrapped)
		done <- runResult[NodeResult]{out, err}
	}()
	pods := fakecluster.WaitPods(t, c, 3)
	units := []string{"a.service", "b.service"}
	for _, p := range pods {
		if got := p.Spec.Containers[0].Command; !slices.Equal(got, ProbeCommand(units...)) {
			t.Errorf("pod %s runs ... %q, want the probe given %q", p.Name, got[3:], units)
		}
	}
	r := sampleReport()
	r.Wrapped = []WrappedProc{{PID: 300, NS: r.KubeletNS}, {PID: 400, NS: r.PID1NS}}
	for _, p := range pods {
		setContainer(t, c, p, corev1.PodSucceeded,
			corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: r.Format()}})
	}
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n1": "a.service:300,b.service:400", "n2": "b.service:400,odd.socket:0", "n3": ""}
	for _, res := range out.Results {
		var got []string
		for _, w := range res.Wrapped {
			got = append(got, fmt.Sprintf("%s:%d", w.Unit, w.PID))
		}
		if strings.Join(got, ",") != want[res.Node] || res.State != Encapsulated {
			t.Errorf("%s: %s, wrapped %v, want %s", res.Node, res.State, got, want[res.Node])
		}
		failed := slices.Contains(res.FailedChecks(), CheckWrappedUnits)
		if failed != (res.Node != "n3") {
			t.Errorf("%s: failed checks %v", res.Node, res.FailedChecks())
		}
	}

	c = fakecluster.New()
	many := map[string][]string{}
	for i := range MaxWrappedUnits + 1 {
		many[fmt.Sprintf("n%d", i%3)] = append(many[fmt.Sprintf("n%d", i%3)], fmt.Sprintf("u%02d.service", i))
	}
	_, err = testEngine(c, &testClock{}).RunWithUnits(context.Background(), nodes, many)
	if err == nil || !strings.Contains(err.Error(), "33 distinct units, more than the 32") || !errors.As(err, new(*TooManyUnitsError)) {
		t.Errorf("33 units: %v", err)
	}
	if len(c.Actions()) != 0 {
		t.Errorf("the run touched the cluster: %v", c.Actions())
	}
}
