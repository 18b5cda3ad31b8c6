package mcosim

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func specOf(raw string, kargs ...string) mcfgv1.MachineConfigSpec {
	return mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(raw)}, KernelArguments: kargs}
}

// The simulated daemon decides reboot or not as the MCD does: by the
// units and files that changed between the two rendered configs.
func TestDisruptionActions(t *testing.T) {
	const (
		base   = `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"chronyd.service","enabled":true}]}}`
		kubens = `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"chronyd.service","enabled":true},{"name":"kubens.service","enabled":true}]}}`
		file   = `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/containers/registries.d/a.yaml","contents":{"source":"data:,a"}}]},"systemd":{"units":[{"name":"chronyd.service","enabled":true}]}}`
	)
	none := []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}
	kubensNone := &opv1.NodeDisruptionPolicyConfig{Units: []opv1.NodeDisruptionPolicySpecUnit{{Name: "kubens.service", Actions: none}}}
	dirDrain := &opv1.NodeDisruptionPolicyConfig{Files: []opv1.NodeDisruptionPolicySpecFile{
		{Path: "/etc/containers", Actions: []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.DrainSpecAction}}}}}
	tests := []struct {
		name     string
		old, new mcfgv1.MachineConfigSpec
		policy   *opv1.NodeDisruptionPolicyConfig
		want     string
	}{
		{"no MachineConfiguration: always reboot", specOf(base), specOf(kubens), nil, "Reboot"},
		{"None for kubens.service: enable does not reboot", specOf(base), specOf(kubens), kubensNone, "None"},
		{"None for kubens.service: disable does not reboot", specOf(kubens), specOf(base), kubensNone, "None"},
		{"kernel arguments always reboot", specOf(base), specOf(kubens, "nosmt"), kubensNone, "Reboot"},
		{"a unit the policy does not name reboots", specOf(base), specOf(kubens), dirDrain, "Reboot"},
		{"a file under a policy directory", specOf(base), specOf(file), dirDrain, "Drain"},
		{"nothing changed", specOf(base), specOf(base), kubensNone, "None"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := disruptionActions(tt.old, tt.new, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if d := describeActions(got); d != tt.want {
				t.Errorf("actions %s, want %s", d, tt.want)
			}
		})
	}
}
