package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/internal/fakecluster"
)

// Table tests of verify's pod engine on a fake clientset (issue 13 item 6):
// how a node ends up Unknown, events that overtake their pod's Create,
// NotReady nodes and the parallelism bound, Ctrl-C, a dropped watch and
// the stale-namespace sweep. engine_test.go holds the helpers (testNode,
// testClock, testEngine, start, wait, setContainer, waitSeen, namespaces).

// seenProbe is verify's own probe (what Engine.Run runs), telling the test
// "node/phase" for every pod it reads: the engine reads only pods it waits
// on, so a test knows the engine has taken a pod up.
type seenProbe struct {
	verifyProbe
	seen chan<- string
}

func (p seenProbe) Read(node string, pod *corev1.Pod) (NodeResult, bool) {
	if p.seen != nil {
		select {
		case p.seen <- node + "/" + string(pod.Status.Phase):
		default:
		}
	}
	return p.verifyProbe.Read(node, pod)
}

// startVerify runs verify's probe on nodes, as Engine.Run does.
func startVerify(ctx context.Context, e *Engine, nodes []corev1.Node, seen chan<- string) <-chan runResult[NodeResult] {
	return start(ctx, e, nodes, verifyRun, Probe[NodeResult](seenProbe{seen: seen}))
}

// reportOK makes pod finish with an encapsulated node's report.
func reportOK(t *testing.T, c *fake.Clientset, pod *corev1.Pod) {
	t.Helper()
	setContainer(t, c, pod, corev1.PodSucceeded,
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: sampleReport().Format()}})
}

// tickUntilDone moves the engine's clock a minute at a time until the run
// ends: a deadline counts from when the pod's Create returned, which the
// test cannot see, so one step may come too early.
func tickUntilDone(t *testing.T, clk *testClock, done <-chan runResult[NodeResult]) (*Outcome, error) {
	t.Helper()
	giveUp := time.After(10 * time.Second)
	for {
		clk.Add(time.Minute)
		select {
		case r := <-done:
			return r.out, r.err
		case <-time.After(50 * time.Millisecond):
		case <-giveUp:
			t.Fatal("the run did not end although every deadline is behind")
		}
	}
}

func byNode(rs []NodeResult) map[string]NodeResult {
	m := map[string]NodeResult{}
	for _, r := range rs {
		m[r.Node] = r
	}
	return m
}

// TestEngineUnknownReasons: each way the engine gives up on a node is an
// Unknown with its own reason, and the run still ends clean.
func TestEngineUnknownReasons(t *testing.T) {
	createFails := func(err error) func(c *fake.Clientset) {
		return func(c *fake.Clientset) {
			c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, err
			})
		}
	}
	podsGR := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name    string
		ready   bool
		setup   func(c *fake.Clientset)
		act     func(t *testing.T, c *fake.Clientset, pod *corev1.Pod, seen <-chan string)
		tick    bool // the node has no result until its deadline
		want    State
		reason  string
		message string
	}{
		{
			name: "the probe reports (control)", ready: true,
			act: func(t *testing.T, c *fake.Clientset, pod *corev1.Pod, _ <-chan string) {
				reportOK(t, c, pod)
			},
			want: Encapsulated,
		},
		{
			name: "Forbidden on pod create", ready: true,
			setup:  createFails(apierrors.NewForbidden(podsGR, "verify-n1", errors.New(`violates PodSecurity "restricted:latest"`))),
			want:   StateUnknown,
			reason: ReasonForbidden, message: "could not create the probe pod: pods \"verify-n1\" is forbidden",
		},
		{
			name: "pod create fails otherwise", ready: true,
			setup:  createFails(apierrors.NewInternalError(errors.New("etcdserver: request timed out\nsecond line"))),
			want:   StateUnknown,
			reason: ReasonCreateFailed, message: "could not create the probe pod: Internal error occurred: etcdserver: request timed out",
		},
		{
			name: "pod deleted before it reported", ready: true,
			act: func(t *testing.T, c *fake.Clientset, pod *corev1.Pod, seen <-chan string) {
				setContainer(t, c, pod, corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
				waitSeen(t, seen, "n1/Running")
				if err := c.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: StateUnknown, reason: ReasonPodDeleted, message: "the probe pod was deleted before it finished",
		},
		{
			name: "Ready node, no result in time", ready: true, tick: true,
			want: StateUnknown, reason: ReasonTimeout, message: "no result within the 60s timeout: ",
		},
		{
			name: "NotReady node, no result in time", ready: false, tick: true,
			want: StateUnknown, reason: ReasonNodeNotReady, message: "no result within the 60s timeout: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakecluster.New()
			if tt.setup != nil {
				tt.setup(c)
			}
			clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			seen := make(chan string, 16)
			done := startVerify(context.Background(), testEngine(c, clk), []corev1.Node{testNode("n1", tt.ready)}, seen)
			if tt.act != nil {
				tt.act(t, c, fakecluster.WaitPods(t, c, 1)["verify-n1"], seen)
			}
			var out *Outcome
			var err error
			if tt.tick {
				out, err = tickUntilDone(t, clk, done)
			} else {
				out, err = wait(t, done)
			}
			if err != nil {
				t.Fatal(err)
			}
			r := out.Results[0]
			if r.Node != "n1" || r.State != tt.want || r.Reason != tt.reason || !strings.HasPrefix(r.Message, tt.message) {
				t.Errorf("result %s/%s %q, want %s/%s %q...", r.State, r.Reason, r.Message, tt.want, tt.reason, tt.message)
			}
			if strings.Contains(r.Message, "\n") {
				t.Errorf("message %q has more than one line", r.Message)
			}
			if out.CleanupErr != nil || len(namespaces(t, c)) != 0 {
				t.Errorf("namespace left behind: %v (%v)", namespaces(t, c), out.CleanupErr)
			}
		})
	}
}

// createHooked is a clientset whose pod Create calls hook around the
// fake's own: the fake holds its lock while a reactor runs, so a reactor
// cannot block or wait for the engine's watch.
type createHooked struct {
	*fake.Clientset
	before func(pod *corev1.Pod)
	after  func(pod *corev1.Pod)
}

func (c createHooked) CoreV1() typedcorev1.CoreV1Interface {
	return hookedCore{c.Clientset.CoreV1(), c}
}

type hookedCore struct {
	typedcorev1.CoreV1Interface
	c createHooked
}

func (h hookedCore) Pods(ns string) typedcorev1.PodInterface {
	return hookedPods{h.CoreV1Interface.Pods(ns), h.c}
}

type hookedPods struct {
	typedcorev1.PodInterface
	c createHooked
}

func (p hookedPods) Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error) {
	if p.c.before != nil {
		p.c.before(pod)
	}
	got, err := p.PodInterface.Create(ctx, pod, opts)
	if err == nil && p.c.after != nil {
		p.c.after(got)
	}
	return got, err
}

// TestEngineEventsBeforeCreateReturns: the watch may deliver a pod's events,
// up to its result, before the Create call that made it returns. The engine
// keeps them and takes the result when the Create returns.
func TestEngineEventsBeforeCreateReturns(t *testing.T) {
	c := fakecluster.New()
	fw := watch.NewFake() // unbuffered: each send returns once the watch consumer took it
	c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, fw, nil
	})
	var mu sync.Mutex
	var order []string
	after := func(pod *corev1.Pod) {
		fw.Add(pod.DeepCopy())
		finished := pod.DeepCopy()
		finished.ResourceVersion += "0"
		finished.Status.Phase = corev1.PodSucceeded
		finished.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ProbeContainer,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: sampleReport().Format()}}}}
		fw.Modify(finished)
		// The watch hands over one event at a time: once it has taken
		// this one, the engine has the pod's result event in hand.
		fw.Modify(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: pod.Namespace, ResourceVersion: pod.ResourceVersion + "1"}})
		mu.Lock()
		order = append(order, pod.Name)
		mu.Unlock()
	}
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := testEngine(c, clk)
	e.Client = createHooked{Clientset: c, after: after}
	done := startVerify(context.Background(), e, []corev1.Node{testNode("n1", true), testNode("n2", true)}, nil)
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Results {
		if r.State != Encapsulated {
			t.Errorf("%s: %s/%s %q, want the result its pod's early events carried", r.Node, r.State, r.Reason, r.Message)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 {
		t.Errorf("creates %v, want both pods' events delivered before their Create returned", order)
	}
}

// TestEngineNotReadyNodesTakeNoSlot: with --parallelism 1 and two NotReady
// nodes first in line, the Ready nodes are still probed one after the other
// at once; the NotReady ones wait for their deadline on the side.
func TestEngineNotReadyNodesTakeNoSlot(t *testing.T) {
	c := fakecluster.New()
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := testEngine(c, clk)
	e.Parallelism = 1
	nodes := []corev1.Node{testNode("down-a", false), testNode("down-b", false), testNode("up-a", true), testNode("up-b", true)}
	done := startVerify(context.Background(), e, nodes, nil)

	// Had the NotReady pods taken the one slot, up-a would wait for their
	// deadline, which never comes while the clock stands still.
	pods := fakecluster.WaitPods(t, c, 3)
	for _, name := range []string{"verify-down-a", "verify-down-b", "verify-up-a"} {
		if pods[name] == nil {
			t.Fatalf("pods %v, want %s", keys(pods), name)
		}
	}
	if pods["verify-up-b"] != nil {
		t.Fatal("up-b's pod was created while up-a's held the only slot")
	}
	reportOK(t, c, pods["verify-up-a"])
	pods = fakecluster.WaitPods(t, c, 4)
	reportOK(t, c, pods["verify-up-b"])

	out, err := tickUntilDone(t, clk, done)
	if err != nil {
		t.Fatal(err)
	}
	got := byNode(out.Results)
	for node, want := range map[string]string{"down-a": ReasonNodeNotReady, "down-b": ReasonNodeNotReady, "up-a": "", "up-b": ""} {
		r := got[node]
		if r.Reason != want || (want == "" && r.State != Encapsulated) {
			t.Errorf("%s: %s/%s, want %q", node, r.State, r.Reason, want)
		}
	}
}

// TestEngineParallelismBoundsPodsInFlight: --parallelism is the number of
// probe pods without a result at any time, and the engine does use all of
// it. The test finishes one pod at a time once the engine has filled every
// slot; a reactor counts pods in flight at each creation.
func TestEngineParallelismBoundsPodsInFlight(t *testing.T) {
	for _, tc := range []struct{ par, nodes int }{{1, 3}, {3, 10}, {8, 9}} {
		t.Run(fmt.Sprintf("parallelism %d, %d nodes", tc.par, tc.nodes), func(t *testing.T) {
			c := fakecluster.New()
			var mu sync.Mutex
			created, finished, most := 0, 0, 0
			c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				created++
				most = max(most, created-finished)
				return false, nil, nil
			})
			clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			e := testEngine(c, clk)
			e.Parallelism = tc.par
			var nodes []corev1.Node
			for i := range tc.nodes {
				nodes = append(nodes, testNode(fmt.Sprintf("n%02d", i), true))
			}
			done := startVerify(context.Background(), e, nodes, nil)

			reported := map[string]bool{}
			for len(reported) < tc.nodes {
				// Wait until every slot is taken (or every node is).
				want := len(reported) + min(tc.par, tc.nodes-len(reported))
				pods := fakecluster.WaitPods(t, c, want)
				var open []string
				for name := range pods {
					if !reported[name] {
						open = append(open, name)
					}
				}
				slices.Sort(open)
				mu.Lock()
				finished++
				mu.Unlock()
				reported[open[0]] = true
				reportOK(t, c, pods[open[0]])
			}
			out, err := wait(t, done)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Results {
				if r.State != Encapsulated {
					t.Errorf("%s: %s/%s", r.Node, r.State, r.Reason)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if most != tc.par {
				t.Errorf("at most %d pods in flight, want exactly --parallelism %d", most, tc.par)
			}
		})
	}
}

// TestEngineInterruptDeletesEveryPod: on Ctrl-C the engine waits for the
// creations in flight, then force-deletes every pod without a result (so a
// node whose kubelet is gone cannot hold the namespace in Terminating) and
// deletes the namespace. A finished pod goes with its namespace.
func TestEngineInterruptDeletesEveryPod(t *testing.T) {
	c := fakecluster.New()
	entered, release := make(chan struct{}), make(chan struct{})
	before := func(pod *corev1.Pod) {
		if pod.Name == "verify-n3" {
			close(entered)
			<-release // stuck on the wire when Ctrl-C comes
		}
	}
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 16)
	nodes := []corev1.Node{testNode("n1", true), testNode("n2", true), testNode("n3", true)}
	e := testEngine(c, clk)
	e.Client = createHooked{Clientset: c, before: before}
	done := startVerify(ctx, e, nodes, seen)
	released := false
	defer func() {
		if !released {
			close(release) // a failed test must not leave the engine stuck
		}
	}()

	pods := fakecluster.WaitPods(t, c, 2)
	reportOK(t, c, pods["verify-n1"])
	waitSeen(t, seen, "n1/Succeeded")
	setContainer(t, c, pods["verify-n2"], corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	waitSeen(t, seen, "n2/Running")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("n3's pod creation never started")
	}
	cancel()
	close(release) // n3's pod now comes into being, after the cancel
	released = true

	out, err := wait(t, done)
	if !errors.Is(err, context.Canceled) || out == nil {
		t.Fatalf("err %v, outcome %v; want context.Canceled with the partial outcome", err, out)
	}
	got := byNode(out.Results)
	if got["n1"].State != Encapsulated || got["n2"].Reason != ReasonInterrupted || got["n3"].Reason != ReasonInterrupted {
		t.Errorf("results %+v", out.Results)
	}
	forced := map[string]bool{}
	nsDeleted := false
	for _, a := range c.Actions() {
		d, ok := a.(k8stesting.DeleteAction)
		if !ok {
			continue
		}
		switch a.GetResource().Resource {
		case "pods":
			if g := d.GetDeleteOptions().GracePeriodSeconds; g != nil && *g == 0 {
				forced[d.GetName()] = true
			}
		case "namespaces":
			nsDeleted = d.GetName() == out.Namespace
		}
	}
	if !forced["verify-n2"] || !forced["verify-n3"] || forced["verify-n1"] || !nsDeleted {
		t.Errorf("force-deleted pods %v, namespace deleted %v; want verify-n2 and verify-n3 (not the finished verify-n1), then the namespace", keys(forced), nsDeleted)
	}
	left := fakecluster.WaitPods(t, c, 0)
	if len(left) != 1 || left["verify-n1"] == nil {
		t.Errorf("pods left %v, want only the finished verify-n1 (the namespace deletion takes it)", keys(left))
	}
}

// TestEngineWatchDrops: the pod watch ends while results come in. A watch
// that just closes is resumed by the retry watcher from the last
// resourceVersion seen; an error event (410 Gone: that version is too old)
// ends it, and the engine lists the pods to catch up, then watches from the
// list's resourceVersion. Either way no result is lost: neither the one
// written while the watch was down nor the one written after.
func TestEngineWatchDrops(t *testing.T) {
	tests := []struct {
		name string
		drop func(fw *watch.FakeWatcher)
		// podLists counts the engine's lists of its namespace's pods:
		// the cleanup's, plus one per re-list.
		podLists int
	}{
		{"watch closed", func(fw *watch.FakeWatcher) { fw.Stop() }, 1},
		{"410 Gone", func(fw *watch.FakeWatcher) {
			fw.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakecluster.New()
			// The first watch delivers nothing, as if its events were lost;
			// later ones are the fake's own.
			fw := watch.NewFake()
			var mu sync.Mutex
			watches := 0
			back := make(chan string, 4) // "watch" or "list", once the engine is back
			c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
				mu.Lock()
				defer mu.Unlock()
				watches++
				if watches == 1 {
					return true, fw, nil
				}
				back <- "watch"
				return false, nil, nil
			})
			c.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetNamespace() != "" {
					select {
					case back <- "list":
					default:
					}
				}
				return false, nil, nil
			})
			clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			done := startVerify(context.Background(), testEngine(c, clk), []corev1.Node{testNode("n1", true), testNode("n2", true)}, nil)
			pods := fakecluster.WaitPods(t, c, 2)
			reportOK(t, c, pods["verify-n1"]) // while the watch delivers nothing
			tt.drop(fw)
			select {
			case <-back:
			case <-time.After(10 * time.Second):
				t.Fatal("the engine neither watched nor listed again after the drop")
			}
			reportOK(t, c, pods["verify-n2"]) // once it is back
			out, err := wait(t, done)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Results {
				if r.State != Encapsulated {
					t.Errorf("%s: %s/%s %q, want its pod's result", r.Node, r.State, r.Reason, r.Message)
				}
			}
			lists := 0
			for _, a := range c.Actions() {
				if a.GetVerb() == "list" && a.GetResource().Resource == "pods" && a.GetNamespace() == out.Namespace {
					lists++
				}
			}
			if lists != tt.podLists {
				t.Errorf("%d lists of the run's pods, want %d", lists, tt.podLists)
			}
		})
	}
}

// TestSweepStale: a namespace of an earlier run is deleted once past its
// expiry annotation, or, without a readable one, once a day old.
func TestSweepStale(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ns := func(name string, age time.Duration, expires string, opts ...func(*corev1.Namespace)) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:            map[string]string{RunLabel: "verify"},
			CreationTimestamp: metav1.NewTime(now.Add(-age))}}
		if expires != "" {
			n.Annotations = map[string]string{ExpiresAnnotation: expires}
		}
		for _, o := range opts {
			o(n)
		}
		return n
	}
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	tests := []struct {
		ns      *corev1.Namespace
		deleted bool
	}{
		{ns("no-expiry-25h", 25*time.Hour, ""), true},
		{ns("no-expiry-24h", 24*time.Hour, ""), true},
		{ns("no-expiry-23h", 23*time.Hour, ""), false},
		{ns("bad-expiry-25h", 25*time.Hour, "tomorrow"), true},
		{ns("bad-expiry-1h", time.Hour, "tomorrow"), false},
		{ns("expired", 2*time.Hour, at(-time.Hour)), true},
		// The annotation wins over the age: a long run's namespace lives on.
		{ns("expires-later-3d", 72*time.Hour, at(time.Hour)), false},
		{ns("terminating-25h", 25*time.Hour, "", func(n *corev1.Namespace) {
			n.DeletionTimestamp = &metav1.Time{Time: now.Add(-time.Minute)}
			n.Finalizers = []string{"kubernetes"}
		}), false},
		{ns("not-a-run-3d", 72*time.Hour, "", func(n *corev1.Namespace) { n.Labels = nil }), false},
	}
	var objs []runtime.Object
	var want []string
	for _, tt := range tests {
		objs = append(objs, tt.ns)
		if tt.deleted {
			want = append(want, tt.ns.Name)
		}
	}
	c := fake.NewClientset(objs...)
	got, err := SweepStale(context.Background(), c, now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("swept %v, want %v", got, want)
	}
	var deletes []string
	for _, a := range c.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "namespaces" {
			deletes = append(deletes, d.GetName())
		}
	}
	slices.Sort(deletes)
	if !slices.Equal(deletes, want) {
		t.Errorf("deleted namespaces %v, want %v", deletes, want)
	}
}
