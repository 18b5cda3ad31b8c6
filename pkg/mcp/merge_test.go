package mcp

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

func rawMC(name, role, ignJSON string) mcfgv1.MachineConfig {
	m := mc(name, role, nil)
	m.Spec.Config = runtime.RawExtension{Raw: []byte(ignJSON)}
	return m
}

func TestForecastPoolMergesInTheMCOsOrder(t *testing.T) {
	kubensOn := map[string]bool{manifests.UnitName: true}
	kubensOff := map[string]bool{manifests.UnitName: false}
	dropinOnly := `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kubens.service","dropins":[{"name":"10-local.conf","contents":"[Unit]\n"}]}]}}`
	ign22On := `{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`
	ign22Sctp := `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/modules-load.d/sctp-load.conf","mode":420,"contents":{"source":"data:,sctp"}}]}}`
	ztpNoEnabled := `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","contents":"[Unit]\nDescription=x\n"},{"name":"crio.service","dropins":[{"name":"90-container-mount-namespace.conf","contents":"[Unit]\n"}]}]}}`
	infra := pool("infra", "worker", "infra")
	worker := pool("worker", "worker")
	tests := []struct {
		name    string
		pool    mcfgv1.MachineConfigPool
		mcs     []mcfgv1.MachineConfig
		want    UnitState
		wantZTP bool
		order   string
	}{
		{
			// Item 3: name order alone says enabled (99 after 00); the MCO
			// merges worker-role configs first, so infra's 00 config wins.
			name: "infra config overrides worker config whatever the names", pool: infra,
			mcs:  []mcfgv1.MachineConfig{mc("00-infra-keep-kubens-off", "infra", kubensOff), mc("99-kubens-worker", "worker", kubensOn)},
			want: UnitDisabled, order: "99-kubens-worker,00-infra-keep-kubens-off",
		},
		{
			name: "worker pool does not see infra configs", pool: worker,
			mcs:  []mcfgv1.MachineConfig{mc("00-infra-keep-kubens-off", "infra", kubensOff), mc("99-kubens-worker", "worker", kubensOn)},
			want: UnitEnabled, order: "99-kubens-worker",
		},
		{
			// Item 2: a later unmanaged config keeps it off.
			name: "later disable wins", pool: worker,
			mcs:  []mcfgv1.MachineConfig{mc("99-zz-worker-keep-kubens-off", "worker", kubensOff), mc("99-kubens-worker", "worker", kubensOn)},
			want: UnitDisabled, order: "99-kubens-worker,99-zz-worker-keep-kubens-off",
		},
		{
			// Item 3: a drop-in-only entry keeps the earlier enabled.
			name: "drop-in only entry keeps the earlier value", pool: worker,
			mcs:  []mcfgv1.MachineConfig{mc("99-kubens-worker", "worker", kubensOn), rawMC("99-kubens-worker-local-dropin", "worker", dropinOnly)},
			want: UnitEnabled,
		},
		{
			// Item 1: a 2.2.0 config anywhere in the pool no longer makes it unknown.
			name: "Ignition 2.2 config without kubens", pool: worker,
			mcs:  []mcfgv1.MachineConfig{rawMC("load-sctp-module-worker", "worker", ign22Sctp), mc("99-kubens-worker", "worker", kubensOn)},
			want: UnitEnabled,
		},
		{
			name: "Ignition 2.2 config enabling kubens", pool: worker,
			mcs:  []mcfgv1.MachineConfig{rawMC("99-custom-enable-kubens-worker", "worker", ign22On)},
			want: UnitEnabled,
		},
		{
			name: "ZTP without enabled", pool: worker,
			mcs:  []mcfgv1.MachineConfig{rawMC("container-mount-namespace-and-kubelet-conf-worker", "worker", ztpNoEnabled)},
			want: UnitDisabled, wantZTP: true,
		},
		{
			name: "unreadable config", pool: worker,
			mcs:  []mcfgv1.MachineConfig{rawMC("broken", "worker", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"a.service","enabled":true},{"name":"a.service"}]}}`)},
			want: UnitUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ForecastPool(&tt.pool, tt.mcs)
			if f.Kubens != tt.want || f.ZTP != tt.wantZTP {
				t.Errorf("forecast = %s ztp=%v (err %v), want %s ztp=%v", f.Kubens, f.ZTP, f.Err, tt.want, tt.wantZTP)
			}
			if tt.order != "" && strings.Join(f.Sources, ",") != tt.order {
				t.Errorf("merge order = %v, want %s", f.Sources, tt.order)
			}
			if got := ExpectedUnitState(&tt.pool, tt.mcs, manifests.UnitName); got != tt.want {
				t.Errorf("ExpectedUnitState = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestForecastSameMergedConfig(t *testing.T) {
	worker := pool("worker", "worker")
	on := map[string]bool{manifests.UnitName: true}
	a := ForecastPool(&worker, []mcfgv1.MachineConfig{mc("50-site-kubens", "worker", on)})
	b := ForecastPool(&worker, []mcfgv1.MachineConfig{mc("50-site-kubens", "worker", on), mc("99-kubens-worker", "worker", on)})
	if !a.SameMergedConfig(b) {
		t.Error("adding a second config enabling the same unit changed the merged config")
	}
	c := ForecastPool(&worker, []mcfgv1.MachineConfig{mc("50-site-kubens", "worker", map[string]bool{manifests.UnitName: false})})
	if a.SameMergedConfig(c) {
		t.Error("enabled and disabled merged to the same config")
	}
}
