package mcosim_test

import (
	"context"
	"testing"
	"time"

	opv1 "github.com/openshift/api/operator/v1"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node disruption policy (issue 14, hazard 1): with None for
// kubens.service, the rollout of a config that only changes that unit
// marks every node Done without a Rebooter call, so the nodes stay booted
// with the old config; without the policy, the same kind of change
// reboots each node again.
func TestNodeDisruptionPolicySkipsTheReboot(t *testing.T) {
	e := newEnv(t)
	e.nodes(map[string][]string{"w1": {"worker"}, "w2": {"worker"}})
	for _, n := range []string{"w1", "w2"} {
		if err := setReadyAt(e.ctx, e.kube, n, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{kube: e.kube}
	m := e.start(r, fast)
	e.eventually(60*time.Second, "the worker pool at rest", e.poolDone("worker", 2))
	before := e.pool("worker").Status.Configuration.Name

	op := operatorclient.NewForConfigOrDie(e.cfg).OperatorV1().MachineConfigurations()
	policy := &opv1.MachineConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cluster"}}
	policy.Spec.ManagementState = "Managed"
	none := []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}
	policy.Spec.NodeDisruptionPolicy.Units = []opv1.NodeDisruptionPolicySpecUnit{{Name: "kubens.service", Actions: none}}
	policy.Spec.NodeDisruptionPolicy.SSHKey.Actions = none
	if _, err := op.Create(e.ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The control plane is shared: the next test starts without it.
	t.Cleanup(func() { _ = op.Delete(context.Background(), "cluster", metav1.DeleteOptions{}) })

	e.createMC("99-kubens-worker", "worker", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`)
	e.eventually(60*time.Second, "the worker pool at the kubens config", func() (bool, string) {
		p := e.pool("worker")
		ok, line := poolDoneOf(p, 2)
		return ok && p.Status.Configuration.Name != before && contains(sourceNames(p), "99-kubens-worker"), line
	})
	if calls := r.list(); len(calls) != 0 {
		t.Fatalf("Rebooter called under a None policy: %v", calls)
	}
	for _, n := range []string{"w1", "w2"} {
		booted, _ := m.BootedConfig(n)
		if booted != before {
			t.Errorf("node %s booted with %q, want %q (not rebooted)", n, booted, before)
		}
	}

	// Without the policy the next change of the unit reboots again.
	if err := op.Delete(e.ctx, "cluster", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deleteMC("99-kubens-worker")
	e.eventually(60*time.Second, "the worker pool back at its first config", func() (bool, string) {
		p := e.pool("worker")
		ok, line := poolDoneOf(p, 2)
		return ok && p.Status.Configuration.Name == before, line
	})
	if calls := r.list(); len(calls) != 2 {
		t.Errorf("Rebooter calls without a policy: %v, want one per node", calls)
	}
}
