package controlplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
)

// The apiserver enforces the MCO's custom-pool policy: a custom pool must
// take the worker configs. The harness's own pools pass it.
func TestCustomPoolAdmission(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "custom-machine-config-pool-selector", metav1.GetOptions{}); err != nil {
		t.Fatalf("policy: %v", err)
	}
	b, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, "custom-machine-config-pool-selector-binding", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("binding: %v", err)
	}
	if b.Spec.PolicyName != "custom-machine-config-pool-selector" || len(b.Spec.ValidationActions) != 1 || b.Spec.ValidationActions[0] != "Deny" {
		t.Errorf("binding spec = %+v", b.Spec)
	}

	mc := mcfgclient.NewForConfigOrDie(cp.RESTConfig()).MachineconfigurationV1().MachineConfigPools()
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	gpu := controlplane.Pool{Name: "gpu"}.Object() // selects role gpu only

	// The apiserver takes a new policy up within a second or so.
	deadline := time.Now().Add(30 * time.Second)
	var denied error
	for {
		_, denied = mc.Create(ctx, gpu, dryRun)
		if denied != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if denied == nil || !strings.Contains(denied.Error(), controlplane.CustomPoolPolicyMessage) {
		t.Fatalf("a custom pool without worker: err = %v, want the policy's message", denied)
	}
	t.Logf("denied: %v", denied)

	sel := func(name string, s metav1.LabelSelector) *mcfgv1.MachineConfigPool {
		p := controlplane.Pool{Name: name}.Object()
		p.Spec.MachineConfigSelector = &s
		return p
	}
	role := "machineconfiguration.openshift.io/role"
	tests := []struct {
		name  string
		pool  *mcfgv1.MachineConfigPool
		allow bool
	}{
		{"In with worker", controlplane.Pool{Name: "gpu", Roles: []string{"gpu", "worker"}}.Object(), true},
		{"In without worker", controlplane.Pool{Name: "gpu", Roles: []string{"gpu", "infra"}}.Object(), false},
		{"NotIn without worker", sel("gpu", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: role, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"master"}}}}), true},
		{"NotIn worker", sel("gpu", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: role, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"worker"}}}}), false},
		{"matchLabels arbiter", controlplane.Pool{Name: "arbiter"}.Object(), true},
		{"matchLabels of another key", sel("gpu", metav1.LabelSelector{MatchLabels: map[string]string{"team": "gpu"}}), false},
		{"no selector", sel("gpu", metav1.LabelSelector{}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mc.Create(ctx, tt.pool, dryRun)
			if tt.allow && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.allow && err == nil {
				t.Error("admitted")
			}
		})
	}

	// The pools the harness created pass it too (an update is checked as
	// a create is).
	for _, name := range []string{"master", "worker", infraPool.Name} {
		p, err := mc.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mc.Update(ctx, p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("pool %s refused: %v", name, err)
		}
	}
}
