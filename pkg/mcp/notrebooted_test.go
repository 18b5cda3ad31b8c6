package mcp

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Issue 14 hazard 1: under a node disruption policy that lets
// kubens.service change without a reboot, a node whose Ready condition
// last changed before its current config was rendered is flagged.
func TestNotRebootedNodes(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cfg := rendered("rendered-worker-2", "worker", map[string]bool{"kubens.service": true})
	cfg.CreationTimestamp = metav1.NewTime(created)
	readyAt := func(n corev1.Node, at time.Time) corev1.Node {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
		return n
	}
	at := func(name string) corev1.Node {
		return node(name, []string{"worker"}, "rendered-worker-2", "rendered-worker-2", "Done", "")
	}
	nodes := []corev1.Node{
		readyAt(at("before"), created.Add(-time.Minute)), // booted before the config existed
		readyAt(at("after"), created.Add(time.Minute)),   // rebooted into it
		at("no-condition"),
		readyAt(node("working", []string{"worker"}, "rendered-worker-2", "rendered-worker-3", "Working", ""), created.Add(-time.Minute)),
	}
	pools := []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("rendered-worker-2"), withStatus("rendered-worker-2", 4, 4, 3, 0))}
	for _, rebootless := range []bool{false, true} {
		rep := Derive(Snapshot{Pools: pools, MachineConfigs: []mcfgv1.MachineConfig{cfg}, Nodes: nodes, KubensRebootless: rebootless})
		for _, n := range rep.Nodes {
			want := rebootless && n.Name == "before"
			if n.NotRebooted != want {
				t.Errorf("rebootless=%v: node %s NotRebooted=%v, want %v", rebootless, n.Name, n.NotRebooted, want)
			}
		}
	}
}
