package controlplane_test

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
)

// Pool.Object needs no cluster: the shapes the MCO and the OpenShift docs use.
func TestPoolObject(t *testing.T) {
	two := intstr.FromInt32(2)
	tests := []struct {
		name string
		pool controlplane.Pool
		want string // spec as JSON
	}{
		{
			name: "one role: matchLabels, default node selector",
			pool: controlplane.Pool{Name: "worker"},
			want: `{"machineConfigSelector":{"matchLabels":{"machineconfiguration.openshift.io/role":"worker"}},"nodeSelector":{"matchLabels":{"node-role.kubernetes.io/worker":""}},"paused":false,"configuration":{}}`,
		},
		{
			name: "several roles: In, as documented for infra pools",
			pool: controlplane.Pool{Name: "infra", Roles: []string{"worker", "infra"}},
			want: `{"machineConfigSelector":{"matchExpressions":[{"key":"machineconfiguration.openshift.io/role","operator":"In","values":["worker","infra"]}]},"nodeSelector":{"matchLabels":{"node-role.kubernetes.io/infra":""}},"paused":false,"configuration":{}}`,
		},
		{
			name: "explicit node selector and maxUnavailable",
			pool: controlplane.Pool{Name: "gpu", NodeSelector: map[string]string{"gpu": "true"}, MaxUnavailable: &two},
			want: `{"machineConfigSelector":{"matchLabels":{"machineconfiguration.openshift.io/role":"gpu"}},"nodeSelector":{"matchLabels":{"gpu":"true"}},"paused":false,"maxUnavailable":2,"configuration":{}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.pool.Object().Spec)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("spec =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}

func TestBuiltInPoolsLabels(t *testing.T) {
	want := map[string]map[string]string{
		"master": {
			"machineconfiguration.openshift.io/mco-built-in":                  "",
			"pools.operator.machineconfiguration.openshift.io/master":         "",
			"operator.machineconfiguration.openshift.io/required-for-upgrade": "",
		},
		"worker": {
			"machineconfiguration.openshift.io/mco-built-in":          "",
			"pools.operator.machineconfiguration.openshift.io/worker": "",
		},
	}
	pools := controlplane.BuiltInPools()
	if len(pools) != len(want) {
		t.Fatalf("built-in pools = %d, want master and worker", len(pools))
	}
	for _, p := range pools {
		obj := p.Object()
		if !equalMaps(obj.Labels, want[p.Name]) {
			t.Errorf("%s labels = %v, want %v", p.Name, obj.Labels, want[p.Name])
		}
		if obj.Spec.MaxUnavailable != nil {
			t.Errorf("%s maxUnavailable = %v, want unset as on a fresh cluster", p.Name, obj.Spec.MaxUnavailable)
		}
	}
}
