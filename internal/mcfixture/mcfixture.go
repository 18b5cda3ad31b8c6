// Package mcfixture builds the MachineConfigPools and MachineConfigs the
// planning and printing tests share.
package mcfixture

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// Pool is a pool selecting MCs whose role is in roles, with 2 machines.
func Pool(name string, roles ...string) mcfgv1.MachineConfigPool {
	p := mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: manifests.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles,
			}}},
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}},
		},
	}
	p.Status.MachineCount = 2
	return p
}

// MC is an unmanaged Ignition 3.2 MC setting the given units' enabled.
func MC(name, role string, units map[string]bool) mcfgv1.MachineConfig {
	raw := `{"ignition":{"version":"3.2.0"},"systemd":{"units":[`
	first := true
	for u, on := range units {
		if !first {
			raw += ","
		}
		first = false
		raw += `{"name":"` + u + `","enabled":` + map[bool]string{true: "true", false: "false"}[on] + `}`
	}
	raw += `]}}`
	return mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{manifests.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: kruntime.RawExtension{Raw: []byte(raw)}},
	}
}

// RealWorld reads one of the real-world-shaped MachineConfigs in
// test/testdata/realworld.
func RealWorld(t testing.TB, file string) mcfgv1.MachineConfig {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "test", "testdata", "realworld", file))
	if err != nil {
		t.Fatal(err)
	}
	var mc mcfgv1.MachineConfig
	if err := yaml.UnmarshalStrict(data, &mc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return mc
}

// Managed marks m as created by oc-kubens.
func Managed(m mcfgv1.MachineConfig) mcfgv1.MachineConfig {
	m.Labels[manifests.ManagedByLabel] = manifests.ManagedByValue
	return m
}
