package mcosim

import (
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The daemon never writes state=Rebooting: it says so through the
// post-config-action annotation, which it clears to "" after the boot.
func TestRebootingIsAPostConfigAction(t *testing.T) {
	if PostConfigActionAnnotation != "machineconfiguration.openshift.io/post-config-action" || StateRebooting != "Rebooting" {
		t.Fatalf("names: %s=%s", PostConfigActionAnnotation, StateRebooting)
	}
	before := rebootingAnnotations()
	if _, ok := before[StateAnnotation]; ok {
		t.Errorf("before the reboot the daemon writes a state: %v", before)
	}
	if len(before) != 1 || before[PostConfigActionAnnotation] != StateRebooting {
		t.Errorf("before the reboot: %v", before)
	}
	after := bootedAnnotations()
	if v, ok := after[PostConfigActionAnnotation]; !ok || v != "" || len(after) != 1 {
		t.Errorf("after the boot: %v, want the action set to \"\"", after)
	}
	for _, a := range []map[string]string{firstBootAnnotations("c"), doneAnnotations("c"), workingAnnotations(node("a", "c", "d", "Done", ""))} {
		for k, v := range a {
			if v == StateRebooting {
				t.Errorf("%s=%s written", k, v)
			}
		}
	}
}

// A retry does not reset a Degraded (or Unreconcilable) node to Working; the
// reason stays too.
func TestRetryKeepsDegraded(t *testing.T) {
	for _, tt := range []struct {
		state string
		want  map[string]string
	}{
		{"Done", map[string]string{StateAnnotation: StateWorking}},
		{"", map[string]string{StateAnnotation: StateWorking}},
		{"Working", nil},
		{"Degraded", nil},
		{"Unreconcilable", nil},
	} {
		got := workingAnnotations(node("a", "old", "new", tt.state, "why"))
		if len(got) != len(tt.want) || got[StateAnnotation] != tt.want[StateAnnotation] {
			t.Errorf("from %q: %v, want %v", tt.state, got, tt.want)
		}
		if _, ok := got[ReasonAnnotation]; ok {
			t.Errorf("from %q: the reason is rewritten: %v", tt.state, got)
		}
	}
}

// A node that does not come back from its reboot is not Ready, however long
// the wait: readyAfter is the daemon's only test, and it has no deadline.
func TestReadyAfterReboot(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 10, 500e6, time.UTC)
	at := func(s corev1.ConditionStatus, hb, tr time.Time) *corev1.Node {
		n := node("a", "old", "new", "Working", "")
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s,
			LastHeartbeatTime: metav1.NewTime(hb), LastTransitionTime: metav1.NewTime(tr)}}
		return n
	}
	old := since.Add(-time.Minute)
	later := since.Add(time.Hour)
	for _, tt := range []struct {
		name string
		n    *corev1.Node
		want bool
	}{
		{"object-only node", node("a", "old", "new", "Working", ""), true},
		{"NotReady an hour later", at(corev1.ConditionFalse, later, later), false},
		{"Unknown an hour later", at(corev1.ConditionUnknown, later, old), false},
		{"Ready from before the reboot", at(corev1.ConditionTrue, old, old), false},
		{"Ready with a fresh heartbeat", at(corev1.ConditionTrue, later, old), true},
		{"Ready in the same second", at(corev1.ConditionTrue, since.Truncate(time.Second), old), true},
	} {
		if got := readyAfter(tt.n, since); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// A node NotReady during its update stays unavailable and Working in
	// the pool status: Updating, never Degraded.
	p := pool("worker", []string{"worker"}, nil)
	p.Spec.Configuration.Name = "new"
	stuck := at(corev1.ConditionFalse, later, later)
	stuck.Annotations[PostConfigActionAnnotation] = StateRebooting
	st := calculateStatus(p, []*corev1.Node{stuck}, later)
	if st.DegradedMachineCount != 0 || st.UnavailableMachineCount != 1 ||
		getCondition(st.Conditions, mcfgv1.MachineConfigPoolUpdating).Status != corev1.ConditionTrue ||
		getCondition(st.Conditions, mcfgv1.MachineConfigPoolDegraded).Status != corev1.ConditionFalse {
		t.Errorf("pool with a node that did not come back: %+v", st)
	}
}

func TestCandidatesSkipNotReadyAndSortByZone(t *testing.T) {
	p := pool("worker", []string{"worker"}, nil)
	p.Spec.Configuration.Name = "new"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name, zone string, age int, mod ...func(*corev1.Node)) *corev1.Node {
		n := node(name, "old", "old", "Done", "", mod...)
		n.CreationTimestamp = metav1.NewTime(t0.Add(-time.Duration(age) * time.Hour))
		n.Labels = map[string]string{}
		if zone != "" {
			n.Labels[ZoneLabel] = zone
		}
		return n
	}
	names := func(ns []*corev1.Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return strings.Join(s, ",")
	}
	// NotReady and cordoned nodes are unavailable, and never candidates:
	// with maxUnavailable 3 and one NotReady node, the other two start.
	got, capacity := updateCandidates(p, []*corev1.Node{mk("a", "", 1, notReady), mk("b", "", 1), mk("c", "", 1)}, 3)
	if names(got) != "b,c" || capacity != 2 {
		t.Errorf("with a NotReady node: %s (capacity %d), want b,c (2)", names(got), capacity)
	}
	got, _ = updateCandidates(p, []*corev1.Node{mk("a", "", 1, cordoned), mk("b", "", 1)}, 5)
	if names(got) != "b" {
		t.Errorf("with a cordoned node: %s, want b", names(got))
	}
	// Zone first (labelled before unlabelled), then oldest first.
	nodes := []*corev1.Node{mk("a", "", 1), mk("b", "", 5), mk("c", "zone-b", 9), mk("d", "zone-a", 1), mk("e", "zone-a", 3)}
	if s := names(sortCandidates(nodes)); s != "e,d,c,b,a" {
		t.Errorf("sortCandidates: %s, want e,d,c,b,a", s)
	}
	got, capacity = updateCandidates(p, nodes, 2)
	if names(got) != "e,d" || capacity != 2 {
		t.Errorf("2 of 5: %s (capacity %d), want e,d", names(got), capacity)
	}
	got, _ = updateCandidates(p, nodes, 1)
	if names(got) != "e" {
		t.Errorf("1 of 5: %s, want e (zone-a, oldest)", names(got))
	}
	// All candidates fit: no reordering needed, all go.
	got, _ = updateCandidates(p, nodes[:2], 2)
	if names(got) != "a,b" {
		t.Errorf("2 of 2: %s", names(got))
	}
}

func TestArbiterPoolOneAtATime(t *testing.T) {
	p := pool(arbiterRole, []string{arbiterRole}, nil)
	p.Spec.MaxUnavailable = ptr(intstr.FromString("100%"))
	if got, err := maxUnavailable(p, 3); err != nil || got != 1 {
		t.Errorf("arbiter pool with maxUnavailable 100%% of 3: %d, %v; want 1", got, err)
	}
	w := pool("worker", []string{"worker"}, nil)
	w.Spec.MaxUnavailable = ptr(intstr.FromString("100%"))
	if got, _ := maxUnavailable(w, 3); got != 3 {
		t.Errorf("worker pool: %d, want 3", got)
	}
}

func TestClusterTopologyAndDrainRequired(t *testing.T) {
	role := func(name string, roles ...string) *corev1.Node {
		n := node(name, "", "", "", "")
		n.Labels = map[string]string{}
		for _, r := range roles {
			n.Labels["node-role.kubernetes.io/"+r] = ""
		}
		return n
	}
	for _, tt := range []struct {
		name  string
		nodes []*corev1.Node
		want  configv1.TopologyMode
	}{
		{"SNO", []*corev1.Node{role("m", "master", "control-plane")}, configv1.SingleReplicaTopologyMode},
		{"one master, two workers", []*corev1.Node{role("m", "master"), role("w1", "worker"), role("w2", "worker")}, configv1.SingleReplicaTopologyMode},
		{"two masters", []*corev1.Node{role("m1", "master"), role("m2", "master")}, configv1.DualReplicaTopologyMode},
		{"two masters and an arbiter", []*corev1.Node{role("m1", "master"), role("m2", "control-plane"), role("a", "arbiter")}, configv1.HighlyAvailableArbiterMode},
		{"three masters", []*corev1.Node{role("m1", "master"), role("m2", "master"), role("m3", "master"), role("w", "worker")}, configv1.HighlyAvailableTopologyMode},
		{"workers only", []*corev1.Node{role("w", "worker")}, configv1.HighlyAvailableTopologyMode},
	} {
		if got := clusterTopology(tt.nodes); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	for topo, want := range map[string]bool{"SingleReplica": false, "HighlyAvailable": true, "DualReplica": true, "HighlyAvailableArbiter": true, "": true, "bogus": true} {
		n := node("a", "old", "new", "Working", "")
		if topo != "" {
			n.Annotations[ControlPlaneTopologyAnnotation] = topo
		}
		if got := drainRequired(n); got != want {
			t.Errorf("drainRequired with topology %q: %v, want %v", topo, got, want)
		}
	}
	n := node("a", "c", "c", "Done", "")
	if w := topologyWrites([]*corev1.Node{n}, configv1.SingleReplicaTopologyMode); len(w) != 1 {
		t.Errorf("topologyWrites: %v", w)
	}
	n.Annotations[ControlPlaneTopologyAnnotation] = "SingleReplica"
	if w := topologyWrites([]*corev1.Node{n}, configv1.SingleReplicaTopologyMode); len(w) != 0 {
		t.Errorf("topologyWrites: %v", w)
	}
}

func TestDrainRequests(t *testing.T) {
	if DesiredDrainAnnotation != "machineconfiguration.openshift.io/desiredDrain" ||
		LastAppliedDrainAnnotation != "machineconfiguration.openshift.io/lastAppliedDrain" {
		t.Fatal("drain annotation names")
	}
	if v := drainValue(drainVerbDrain, "rendered-worker-1"); v != "drain-rendered-worker-1" {
		t.Errorf("drainValue: %s", v)
	}
	with := func(desired, last string) *corev1.Node {
		n := node("a", "old", "new", "Working", "")
		if desired != "" {
			n.Annotations[DesiredDrainAnnotation] = desired
		}
		if last != "" {
			n.Annotations[LastAppliedDrainAnnotation] = last
		}
		return n
	}
	for _, tt := range []struct {
		desired, last, want string
		err                 bool
	}{
		{"", "", "", false},
		{"drain-rendered-worker-2", "uncordon-rendered-worker-1", "drain", false},
		{"drain-rendered-worker-2", "drain-rendered-worker-2", "", false},
		{"uncordon-rendered-worker-2", "drain-rendered-worker-2", "uncordon", false},
		{"evict-rendered-worker-2", "", "", true},
	} {
		got, err := drainRequest(with(tt.desired, tt.last))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("desired %q last %q: %q, %v; want %q (error %v)", tt.desired, tt.last, got, err, tt.want, tt.err)
		}
	}
	// An installed node has its uncordon answered.
	a := firstBootAnnotations("rendered-worker-1")
	if a[DesiredDrainAnnotation] != "uncordon-rendered-worker-1" || a[LastAppliedDrainAnnotation] != a[DesiredDrainAnnotation] {
		t.Errorf("first boot: %v", a)
	}
}
