package mcp

import (
	"reflect"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestInputSelectors(t *testing.T) {
	const role = "machineconfiguration.openshift.io/role"
	matchLabels := func(name string, l map[string]string) mcfgv1.MachineConfigPool {
		p := pool(name)
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: l}
		return p
	}
	empty := pool("empty")
	empty.Spec.MachineConfigSelector = &metav1.LabelSelector{}
	tests := []struct {
		name  string
		pools []mcfgv1.MachineConfigPool
		want  []string
	}{
		{"built-in and custom pools fold into one list",
			[]mcfgv1.MachineConfigPool{matchLabels("master", map[string]string{role: "master"}), matchLabels("worker", map[string]string{role: "worker"}), pool("infra", "worker", "infra")},
			[]string{role + " in (infra,master,worker)"}},
		{"a pool selecting on another label gets its own list",
			[]mcfgv1.MachineConfigPool{pool("worker", "worker"), matchLabels("edge", map[string]string{"example.com/site": "edge"})},
			[]string{"example.com/site=edge", role + " in (worker)"}},
		{"pools selecting nothing add nothing", []mcfgv1.MachineConfigPool{empty, pool("nil")}, nil},
	}
	tests[2].pools[1].Spec.MachineConfigSelector = nil
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InputSelectors(tt.pools)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			// Every MC a pool selects matches one of the selectors; a
			// rendered config (no labels) matches none.
			for _, p := range tt.pools {
				for _, mcLabels := range []map[string]string{{role: "worker"}, {role: "master"}, {role: "infra"}, {"example.com/site": "edge"}} {
					m := mc("x", "", nil)
					m.Labels = mcLabels
					if ok, _ := PoolSelectsMC(&p, &m); !ok {
						continue
					}
					if !anyMatches(t, got, mcLabels) {
						t.Errorf("pool %s selects %v, no selector lists it", p.Name, mcLabels)
					}
				}
			}
			if anyMatches(t, got, nil) {
				t.Errorf("a selector lists unlabelled (rendered) configs")
			}
		})
	}
}

func anyMatches(t *testing.T, sels []string, l map[string]string) bool {
	for _, s := range sels {
		sel, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

func TestReferencedConfigs(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{
		mkPool("worker", []string{"worker"}, withSpec("rendered-worker-2"), withStatus("rendered-worker-1", 2, 2, 1, 0)),
		mkPool("master", []string{"master"}, withSpec("rendered-master-1"), withStatus("rendered-master-1", 1, 1, 1, 0)),
		mkPool("new", []string{"new"}),
	}
	nodes := []corev1.Node{node("w1", []string{"worker"}, "rendered-worker-1", "rendered-worker-2", "Working", ""), node("x", nil, "rendered-worker-0", "", "", "")}
	got := ReferencedConfigs(pools, nodes)
	want := []string{"rendered-master-1", "rendered-worker-0", "rendered-worker-1", "rendered-worker-2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
