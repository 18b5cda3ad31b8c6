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

// ZTP is an unmanaged MachineConfig in the shape of the telco ZTP
// container-mount-namespace configs (Ignition 3.2, no enabled on the unit,
// as the 2023+ extra-manifests have it): the unit that makes the namespace
// and the kubelet and CRI-O drop-ins that enter it. With housekeeping, the
// kubelet drop-in also appends --housekeeping-interval and a second
// drop-in sets the OpenShift housekeeping and eviction monitoring
// intervals, as the "container-mount-namespace-and-kubelet-conf" configs do.
func ZTP(name, role string, housekeeping bool) mcfgv1.MachineConfig {
	enter := `[Unit]\nWants=container-mount-namespace.service\nAfter=container-mount-namespace.service\n\n[Service]\nExecStartPre=/usr/local/bin/extractExecStart %n /%t/%N-execstart.env ORIG_EXECSTART\nEnvironmentFile=-/%t/%N-execstart.env\nExecStart=\nExecStart=bash -c \"nsenter --mount=%t/container-mount-namespace/mnt ${ORIG_EXECSTART}`
	kubeletDropins := `{"name":"90-container-mount-namespace.conf","contents":"` + enter + `\"\n"}`
	if housekeeping {
		kubeletDropins = `{"name":"90-container-mount-namespace.conf","contents":"` + enter + ` --housekeeping-interval=30s\"\n"},` +
			`{"name":"30-kubelet-interval-tuning.conf","contents":"[Service]\nEnvironment=\"OPENSHIFT_MAX_HOUSEKEEPING_INTERVAL_DURATION=60s\"\nEnvironment=\"OPENSHIFT_EVICTION_MONITORING_PERIOD_DURATION=30s\"\n"}`
	}
	raw := `{"ignition":{"version":"3.2.0"},"systemd":{"units":[` +
		`{"name":"container-mount-namespace.service","contents":"[Unit]\nDescription=Manages a mount namespace that both kubelet and crio can use to share their container-specific mounts\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nRuntimeDirectory=container-mount-namespace\nEnvironment=BIND_POINT=%t/container-mount-namespace/mnt\nExecStartPre=touch ${BIND_POINT}\nExecStart=unshare --mount=${BIND_POINT} --propagation slave mount --make-rshared /\n"},` +
		`{"name":"crio.service","dropins":[{"name":"90-container-mount-namespace.conf","contents":"` + enter + `\"\n"}]},` +
		`{"name":"kubelet.service","dropins":[` + kubeletDropins + `]}]}}`
	return mcfgv1.MachineConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{manifests.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: kruntime.RawExtension{Raw: []byte(raw)}},
	}
}
