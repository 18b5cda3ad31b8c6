package change

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

func TestCompareMC(t *testing.T) {
	want, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	w := want[0]
	seedStyle := w.DeepCopy() // made by hand from the docs: no managed label, reordered JSON
	delete(seedStyle.Labels, manifests.ManagedByLabel)
	seedStyle.Spec.Config = runtime.RawExtension{Raw: []byte(`{"systemd":{"units":[{"name":"kubens.service","enabled":true}]},"ignition":{"version":"3.2.0"}}`)}
	disabled := w.DeepCopy()
	disabled.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"enabled":false,"name":"kubens.service"}]}}`)}
	extra := w.DeepCopy()
	extra.Spec.KernelArguments = []string{"nosmt"}
	// Item 5 of issue 9: a same-name object somebody else made, with more
	// in it than ours, is never updated (the units list is atomic under
	// server-side apply, so an update would drop their units).
	foreign := extra.DeepCopy()
	delete(foreign.Labels, manifests.ManagedByLabel)
	foreignUnits := seedStyle.DeepCopy()
	foreignUnits.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"site-agent.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}}`)}
	foreignOff := disabled.DeepCopy()
	delete(foreignOff.Labels, manifests.ManagedByLabel)
	// Ours, but a wrap config (enable --role wrap-worker would name its
	// config like wrap's): not enable's to take over.
	wrapConfig := w.DeepCopy()
	wrapConfig.Labels[manifests.ComponentLabel] = manifests.ComponentWrap
	tests := []struct {
		name string
		have *mcfgv1.MachineConfig
		want Action
	}{
		{"missing", nil, Create},
		{"same", w.DeepCopy(), Unchanged},
		// Made by hand from the docs: the same config, but not ours to
		// label, change or delete.
		{"hand-made from the docs", seedStyle, Foreign},
		{"different config", disabled, Update},
		{"someone else's fields in ours", extra, Update},
		{"not ours, kernel arguments", foreign, Foreign},
		{"not ours, another unit", foreignUnits, Foreign},
		{"not ours, disabled", foreignOff, Foreign},
		{"ours, but a wrap config", wrapConfig, Foreign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compareMC(tt.have, w); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
