package mcp

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// t0 is the injected "now" of the stuck-node tests.
var t0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// withReady gives a node a Ready condition that turned to status the given
// time before t0.
func withReady(n corev1.Node, status corev1.ConditionStatus, reason string, ago time.Duration) corev1.Node {
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason,
		LastTransitionTime: metav1.NewTime(t0.Add(-ago)), LastHeartbeatTime: metav1.NewTime(t0.Add(-ago)),
	})
	return n
}

// rollingWorker is a worker pool half way through r1 -> r2.
func rollingWorker() mcfgv1.MachineConfigPool {
	return mkPool("worker", []string{"worker"}, withSpec("r2", "99-kubens-worker"), withStatus("r1", 3, 1, 1, 0), updatingTrue)
}

func TestEvaluateNamesStuckNodes(t *testing.T) {
	w := []string{"worker"}
	tests := []struct {
		name      string
		node      corev1.Node
		pool      mcfgv1.MachineConfigPool
		after     time.Duration // the threshold; 0: 10m
		wantStuck string        // the one node named, "" for none
		wantNext  time.Duration // when to look again, after t0; 0: never
	}{
		{
			name: "NotReady for 5m while updating: not yet",
			node: withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 5*time.Minute),
			pool: rollingWorker(), wantNext: 5 * time.Minute,
		},
		{
			name: "NotReady for 11m while updating: named",
			node: withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 11*time.Minute),
			pool: rollingWorker(), wantStuck: "w1",
		},
		{
			name: "Ready=False for 11m, desiredConfig ahead, no state yet: named",
			node: withReady(node("w1", w, "r1", "r2", "Done", ""), corev1.ConditionFalse, "KubeletNotReady", 11*time.Minute),
			pool: rollingWorker(), wantStuck: "w1",
		},
		{
			name: "Working at its desired config (after the reboot, before Done): named",
			node: withReady(node("w1", w, "r2", "r2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 11*time.Minute),
			pool: rollingWorker(), wantStuck: "w1",
		},
		{
			name: "NotReady for 11m but not updating: not named",
			node: withReady(node("w1", w, "r1", "r1", "Done", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 11*time.Minute),
			pool: rollingWorker(),
		},
		{
			name: "Ready while updating: not named",
			node: withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionTrue, "KubeletReady", time.Hour),
			pool: rollingWorker(),
		},
		{
			name: "no Ready condition (never registered): not named",
			node: node("w1", w, "r1", "r2", "Working", ""),
			pool: rollingWorker(),
		},
		{
			name: "a node of another pool: not named",
			node: withReady(node("m1", []string{"master"}, "m1", "m2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", time.Hour),
			pool: rollingWorker(),
		},
		{
			name: "the pool is done: nothing to wait for, nothing named",
			node: withReady(node("w1", w, "r2", "r3", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", time.Hour),
			pool: mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r2", 3, 3, 3, 0), updatedTrue),
		},
		{
			name: "a tiny threshold",
			node: withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionFalse, "", 3*time.Second),
			pool: rollingWorker(), after: 2 * time.Second, wantStuck: "w1",
		},
		{
			name: "writer's clock ahead of ours: not stuck yet",
			node: withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "", -time.Minute),
			pool: rollingWorker(), wantNext: 10 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := tt.after
			if after == 0 {
				after = DefaultStuckAfter
			}
			view := NodeView{Nodes: []corev1.Node{tt.node}, Now: t0, StuckAfter: after}
			pools := []mcfgv1.MachineConfigPool{tt.pool, mkPool("master", []string{"master"}, withSpec("m2", "00-master"), withStatus("m1", 1, 0, 0, 0))}
			prog, _, err := Evaluate(pools, expWorker, nil, view)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range prog[0].Stuck {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, ","); got != tt.wantStuck {
				t.Fatalf("stuck = %q, want %q (%+v)", got, tt.wantStuck, prog[0].Stuck)
			}
			_, _, next, _ := evaluate(pools, expWorker, nil, nil, view)
			var wantNext time.Time
			if tt.wantNext > 0 {
				wantNext = t0.Add(tt.wantNext)
			}
			if !next.Equal(wantNext) {
				t.Errorf("next check at %v, want %v", next, wantNext)
			}
		})
	}
}

func TestEvaluateWithoutNodesJudgesNoNode(t *testing.T) {
	prog, _, err := Evaluate([]mcfgv1.MachineConfigPool{rollingWorker()}, expWorker, nil, NodeView{Now: t0, StuckAfter: time.Minute})
	if err != nil || len(prog[0].Stuck) != 0 {
		t.Fatalf("%+v %v", prog, err)
	}
	n := withReady(node("w1", []string{"worker"}, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "", time.Hour)
	prog, _, _ = Evaluate([]mcfgv1.MachineConfigPool{rollingWorker()}, expWorker, nil, NodeView{Nodes: []corev1.Node{n}, Now: t0, StuckAfter: -1})
	if len(prog[0].Stuck) != 0 {
		t.Fatalf("a negative threshold still named %+v", prog[0].Stuck)
	}
}

func TestStuckNodeMessages(t *testing.T) {
	n := withReady(node("worker-1", []string{"worker"}, "rendered-worker-1", "rendered-worker-2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 12*time.Minute)
	pool := mkPool("worker", []string{"worker"}, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-1", 2, 1, 1, 0), updatingTrue)
	prog, _, _ := Evaluate([]mcfgv1.MachineConfigPool{pool}, expWorker, nil, NodeView{Nodes: []corev1.Node{n}, Now: t0, StuckAfter: 10 * time.Minute})
	if len(prog[0].Stuck) != 1 {
		t.Fatalf("%+v", prog)
	}
	s := prog[0].Stuck[0]
	warn := s.Warning()
	for _, want := range []string{
		"node worker-1 has been NotReady for 12m while updating to rendered-worker-2",
		"daemon state Working", "Ready=Unknown NodeStatusUnknown", "pool worker stays Updating",
		"console or BMC", "`oc describe node worker-1`", "machine-config-daemon", "spec.nodeName=worker-1",
	} {
		if !strings.Contains(warn, want) {
			t.Errorf("warning lacks %q:\n%s", want, warn)
		}
	}
	if got, want := prog[0].String(), "worker: Updating 1/2 updated, 1 ready, 0 degraded (rendered-worker-2); NotReady while updating: worker-1"; got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
	te := &TimeoutError{After: 30 * time.Minute, Pending: prog}
	for _, want := range []string{"timed out after 30m0s", "stuck in their update: worker-1 (NotReady for 12m while updating to rendered-worker-2)",
		"`oc describe node worker-1`", "the rollout goes on in the cluster"} {
		if !strings.Contains(te.Error(), want) {
			t.Errorf("timeout error lacks %q:\n%s", want, te.Error())
		}
	}
}

// deadlineCtx is a context whose cancel reads as a deadline: a timeout
// without waiting for one.
type deadlineCtx struct{ context.Context }

func (c deadlineCtx) Err() error {
	if c.Context.Err() != nil {
		return context.DeadlineExceeded
	}
	return nil
}

// The wait names a node once it crosses the threshold, on the injected
// clock, once however often it is seen again, and the timeout names it.
func TestWaitWarnsOnceAboutStuckNode(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	w := []string{"worker"}
	stuck := withReady(node("w2", w, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "NodeStatusUnknown", 5*time.Minute)
	nodes := []corev1.Node{withReady(node("w1", w, "r2", "r2", "Done", ""), corev1.ConditionTrue, "", time.Hour), stuck}
	pools := make(chan []mcfgv1.MachineConfigPool, 1)
	nodeCh := make(chan []corev1.Node, 1)
	progress := make(chan []PoolProgress)
	var warnings []StuckNode
	var watchStarted int
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := deadlineCtx{base}
	errc := make(chan error, 1)
	go func() {
		errc <- Wait(ctx, pools, WaitOptions{
			Expectations: expWorker, Clock: clk, StuckAfter: 10 * time.Minute,
			WatchNodes: func(context.Context) <-chan []corev1.Node { watchStarted++; return nodeCh },
			Stuck:      func(s StuckNode) { warnings = append(warnings, s) },
			Progress:   func(p []PoolProgress) { progress <- p },
		})
	}()
	pools <- []mcfgv1.MachineConfigPool{rollingWorker()}
	if p := recv(t, progress, "progress"); len(p[0].Stuck) != 0 {
		t.Fatalf("stuck before any node list: %+v", p)
	}
	nodeCh <- nodes
	if p := recv(t, progress, "progress"); len(p[0].Stuck) != 0 {
		t.Fatalf("5 minutes NotReady is not stuck yet: %+v", p)
	}
	// Wait arms a timer for the moment w2 crosses 10 minutes.
	for deadline := time.Now().Add(5 * time.Second); !clk.HasWaiters(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("no timer armed for the threshold")
		}
	}
	clk.Step(5*time.Minute + time.Second)
	p := recv(t, progress, "progress")
	if len(p[0].Stuck) != 1 || p[0].Stuck[0].Name != "w2" || len(warnings) != 1 {
		t.Fatalf("after 10m: progress %+v, warnings %+v", p, warnings)
	}
	if warnings[0].For != 10*time.Minute+time.Second || warnings[0].Config != "r2" || warnings[0].Pool != "worker" {
		t.Errorf("warning %+v", warnings[0])
	}
	// Seen again (pool and node changes): no second warning.
	clk.Step(time.Minute)
	pools <- []mcfgv1.MachineConfigPool{rollingWorker()}
	recv(t, progress, "progress")
	nodeCh <- nodes
	recv(t, progress, "progress")
	if len(warnings) != 1 || watchStarted != 1 {
		t.Fatalf("warnings %d, node watches %d; want 1 and 1", len(warnings), watchStarted)
	}
	clk.Step(time.Minute)
	cancel()
	err := recv(t, errc, "wait result")
	var te *TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "w2 (NotReady for 12m while updating to r2)") {
		t.Fatalf("timeout error should name w2 at 12m: %v", err)
	}
}

// A node that comes back is not named, and the wait ends with the pool.
func TestWaitStuckNodeComesBack(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	w := []string{"worker"}
	down := withReady(node("w1", w, "r1", "r2", "Working", ""), corev1.ConditionUnknown, "", 3*time.Minute)
	up := withReady(node("w1", w, "r2", "r2", "Done", ""), corev1.ConditionTrue, "", 0)
	done := mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r2", 1, 1, 1, 0), updatedTrue)
	pools := make(chan []mcfgv1.MachineConfigPool, 1)
	nodeCh := make(chan []corev1.Node, 1)
	var warnings int
	pools <- []mcfgv1.MachineConfigPool{rollingWorker()}
	nodeCh <- []corev1.Node{down}
	errc := make(chan error, 1)
	stepped := make(chan []PoolProgress, 10)
	go func() {
		errc <- Wait(context.Background(), pools, WaitOptions{
			Expectations: expWorker, Clock: clk,
			WatchNodes: func(context.Context) <-chan []corev1.Node { return nodeCh },
			Stuck:      func(StuckNode) { warnings++ },
			Progress:   func(p []PoolProgress) { stepped <- p },
		})
	}()
	recv(t, stepped, "progress")
	recv(t, stepped, "progress with the nodes")
	nodeCh <- []corev1.Node{up}
	recv(t, stepped, "progress")
	pools <- []mcfgv1.MachineConfigPool{done}
	if err := recv(t, errc, "wait result"); err != nil || warnings != 0 {
		t.Fatalf("err %v, warnings %d", err, warnings)
	}
}

// WatchNodes lists once and then follows the watch, keeping only what the
// wait reads; it makes no request per node.
func TestWatchNodesKeepsLightNodes(t *testing.T) {
	n := withReady(node("w1", []string{"worker"}, "r1", "r2", "Working", ""), corev1.ConditionTrue, "KubeletReady", time.Hour)
	n.Annotations["other.io/big"] = strings.Repeat("x", 100)
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"quay.io/big"}, SizeBytes: 1 << 30}}
	n2 := node("w2", []string{"worker"}, "r1", "r1", "Done", "")
	client := fake.NewClientset(&n, &n2)
	fw := watch.NewFake()
	client.PrependWatchReactor("nodes", func(action k8stesting.Action) (bool, watch.Interface, error) { return true, fw, nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := WatchNodes(ctx, client.CoreV1().Nodes(), WatchOptions{})
	first := recv(t, ch, "first snapshot")
	if len(first) != 2 || first[0].Name != "w1" || len(first[0].Status.Images) != 0 || first[0].Annotations["other.io/big"] != "" ||
		first[0].Annotations[DesiredConfigAnnotation] != "r2" || len(first[0].Status.Conditions) != 1 {
		t.Fatalf("first snapshot %+v", first)
	}
	down := n.DeepCopy()
	down.Status.Conditions[0].Status = corev1.ConditionUnknown
	fw.Modify(down)
	second := recv(t, ch, "second snapshot")
	if c, ok := notReadyWhileUpdating(&second[0]); !ok || c.Status != corev1.ConditionUnknown {
		t.Fatalf("second snapshot %+v", second)
	}
	fw.Delete(&n2)
	if third := recv(t, ch, "third snapshot"); len(third) != 1 {
		t.Fatalf("third snapshot %+v", third)
	}
	var verbs []string
	for _, a := range client.Actions() {
		verbs = append(verbs, a.GetVerb()+" "+a.GetResource().Resource)
	}
	if got := strings.Join(verbs, ","); got != "list nodes,watch nodes" {
		t.Fatalf("requests %s, want one list and one watch", got)
	}
}
