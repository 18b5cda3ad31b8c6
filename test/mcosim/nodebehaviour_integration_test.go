package mcosim_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// lostRebooter plays a node that does not come back from its reboot: its
// kubelet stops posting (NotReady) and the reboot reports an error.
type lostRebooter struct {
	recorder
	lost string
}

func (r *lostRebooter) Reboot(ctx context.Context, node string, encapsulated bool) error {
	if node != r.lost {
		return r.recorder.Reboot(ctx, node, encapsulated)
	}
	patch := `{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown","message":"Kubelet stopped posting node status."}]}}`
	if _, err := r.kube.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		return err
	}
	return errors.New("node did not boot")
}

// TestNodeThatDoesNotComeBack: the real MCO never marks a node Degraded for
// not coming back from its reboot; it stays Working (post-config-action
// Rebooting), NotReady, the pool Updating, and no other node starts. Drain
// and uncordon go through desiredDrain/lastAppliedDrain, and the state is
// never Rebooting.
func TestNodeThatDoesNotComeBack(t *testing.T) {
	e := newEnv(t)
	e.nodes(map[string][]string{"w1": {"worker"}, "w2": {"worker"}, "w3": {"worker"}})
	// Ready since a minute ago: the heartbeat has second precision, and a
	// reboot starting in the same second as a fresh one would take it for
	// the node coming back (the simulator may render at once, when a
	// render was already due at start).
	for _, n := range []string{"w1", "w2", "w3"} {
		if err := setReadyAt(e.ctx, e.kube, n, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// w1 must be the first candidate: the nodes come from a map, so their
	// creation order (the tie-breaker) is random; a zone label puts w1
	// ahead of the unlabelled ones, as the node controller sorts them.
	zone := `{"metadata":{"labels":{"` + mcosim.ZoneLabel + `":"zone-a"}}}`
	if _, err := e.kube.CoreV1().Nodes().Patch(e.ctx, "w1", types.StrategicMergePatchType, []byte(zone), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := e.kube.CoreV1().Nodes().Watch(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var mu sync.Mutex
	states := map[string]bool{}
	go func() {
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*corev1.Node); ok && ev.Type != watch.Deleted {
				mu.Lock()
				states[n.Annotations[mcosim.StateAnnotation]] = true
				mu.Unlock()
			}
		}
	}()

	r := &lostRebooter{recorder: recorder{kube: e.kube}, lost: "w1"}
	e.start(r, fast) // workers only: HighlyAvailable, so drain
	e.createMC("99-kubens-worker", "worker", enableKubens)
	target := ""
	e.eventually(20*time.Second, "w1 rebooting", func() (bool, string) {
		n := e.node("w1")
		target = n.Annotations[mcosim.DesiredConfigAnnotation]
		a := n.Annotations
		return a[mcosim.PostConfigActionAnnotation] == mcosim.StateRebooting, fmt.Sprint(a)
	})
	// Well past the old 3-attempt flapping and any backoff of the fast
	// options. A sleep on purpose: what is under test is that the daemon
	// waits for the node without a deadline, which only time shows.
	time.Sleep(5 * time.Second)
	n := e.node("w1")
	a := n.Annotations
	if a[mcosim.StateAnnotation] != mcosim.StateWorking || a[mcosim.PostConfigActionAnnotation] != mcosim.StateRebooting || a[mcosim.ReasonAnnotation] != "" {
		t.Errorf("w1 after not coming back: %v", a)
	}
	if a[mcosim.DesiredDrainAnnotation] != "drain-"+target || a[mcosim.LastAppliedDrainAnnotation] != "drain-"+target || !n.Spec.Unschedulable {
		t.Errorf("w1 drain: %v unschedulable=%v", a, n.Spec.Unschedulable)
	}
	p := e.pool("worker")
	if p.Status.DegradedMachineCount != 0 || cond(p, mcfgv1.MachineConfigPoolDegraded).Status != corev1.ConditionFalse ||
		cond(p, mcfgv1.MachineConfigPoolUpdating).Status != corev1.ConditionTrue || p.Status.UpdatedMachineCount != 0 {
		t.Errorf("pool while w1 is lost: %s", poolLine(p))
	}
	for _, o := range []string{"w2", "w3"} {
		if d := e.node(o).Annotations[mcosim.DesiredConfigAnnotation]; d == target {
			t.Errorf("%s targeted while w1 is lost (maxUnavailable 1)", o)
		}
	}

	// The node comes back: the update finishes, and the rollout goes on.
	if err := setReady(e.ctx, e.kube, "w1"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "rolled out once w1 is back", e.poolDone("worker", 3))
	for _, name := range []string{"w1", "w2", "w3"} {
		n := e.node(name)
		a := n.Annotations
		if a[mcosim.PostConfigActionAnnotation] != "" || a[mcosim.DesiredDrainAnnotation] != "uncordon-"+target ||
			a[mcosim.LastAppliedDrainAnnotation] != "uncordon-"+target || n.Spec.Unschedulable {
			t.Errorf("%s after the rollout: %v unschedulable=%v", name, a, n.Spec.Unschedulable)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if states[mcosim.StateRebooting] || states[mcosim.StateDegraded] {
		t.Errorf("states seen: %v; want neither Rebooting nor Degraded", states)
	}
}
