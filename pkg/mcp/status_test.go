package mcp

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

func TestDerivePools(t *testing.T) {
	on := map[string]bool{"kubens.service": true}
	off := map[string]bool{"kubens.service": false}
	ztp := map[string]bool{"container-mount-namespace.service": true}
	tests := []struct {
		name  string
		snap  Snapshot
		check func(t *testing.T, ps PoolStatus)
	}{
		{
			name: "enabled by us and rolled out",
			snap: Snapshot{
				Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"},
					withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 3, 0),
					withCond(mcfgv1.MachineConfigPoolUpdated, true, ""))},
				MachineConfigs: []mcfgv1.MachineConfig{
					managed(mc("99-kubens-worker", "worker", on)), mc("00-worker", "worker", nil),
					rendered("rendered-worker-1", "worker", off), rendered("rendered-worker-2", "worker", on),
				},
			},
			check: func(t *testing.T, ps PoolStatus) {
				want := PoolStatus{Name: "worker", Kubens: UnitEnabled, CurrentConfig: "rendered-worker-2", DesiredConfig: "rendered-worker-2",
					DesiredKubens: UnitEnabled, EnabledBy: []string{"99-kubens-worker"}, Managed: []string{"99-kubens-worker"}, Wrapped: []string{},
					Updated: true, MachineCount: 3, ReadyMachineCount: 3, UpdatedMachineCount: 3, MaxUnavailable: 1}
				if !reflect.DeepEqual(ps, want) {
					t.Fatalf("got  %+v\nwant %+v", ps, want)
				}
			},
		},
		{
			name: "pending: MC applied, not rolled out; ground truth is the current rendered config",
			snap: Snapshot{
				Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"},
					withSpec("rendered-worker-2"), withStatus("rendered-worker-1", 3, 2, 1, 0),
					withCond(mcfgv1.MachineConfigPoolUpdating, true, ""))},
				MachineConfigs: []mcfgv1.MachineConfig{
					managed(mc("99-kubens-worker", "worker", on)),
					rendered("rendered-worker-1", "worker", off), rendered("rendered-worker-2", "worker", on),
				},
			},
			check: func(t *testing.T, ps PoolStatus) {
				if ps.Kubens != UnitDisabled || ps.DesiredKubens != UnitEnabled || !ps.PendingChange || !ps.Updating || ps.Updated {
					t.Fatalf("got %+v", ps)
				}
			},
		},
		{
			name: "enabled by somebody else's MC",
			snap: Snapshot{
				Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r1"), withStatus("r1", 1, 1, 1, 0))},
				MachineConfigs: []mcfgv1.MachineConfig{
					mc("99-custom-enable-kubens-worker", "worker", on), mc("99-kubens-master", "master", on),
					rendered("r1", "worker", on),
				},
			},
			check: func(t *testing.T, ps PoolStatus) {
				if !reflect.DeepEqual(ps.EnabledBy, []string{"99-custom-enable-kubens-worker"}) || len(ps.Managed) != 0 || ps.Kubens != UnitEnabled {
					t.Fatalf("got %+v", ps)
				}
			},
		},
		{
			name: "ZTP container-mount-namespace detected",
			snap: Snapshot{
				Pools:          []mcfgv1.MachineConfigPool{mkPool("master", []string{"master"}, withSpec("r1"), withStatus("r1", 1, 1, 1, 0))},
				MachineConfigs: []mcfgv1.MachineConfig{mc("01-container-mount-ns-and-kubelet-conf-master", "master", ztp), rendered("r1", "master", ztp)},
			},
			check: func(t *testing.T, ps PoolStatus) {
				if !ps.ZTP || ps.Kubens != UnitDisabled {
					t.Fatalf("got %+v", ps)
				}
			},
		},
		{
			name: "rendered config missing is unknown; degraded and paused are reported",
			snap: Snapshot{
				Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, paused, withSpec("r2"), withStatus("r1", 3, 2, 2, 1),
					withCond(mcfgv1.MachineConfigPoolNodeDegraded, true, `Node w1 is reporting: "disk full"`),
					withCond(mcfgv1.MachineConfigPoolDegraded, true, `Node w1 is reporting: "disk full"`))},
			},
			check: func(t *testing.T, ps PoolStatus) {
				if ps.Kubens != UnitUnknown || !ps.Degraded || !ps.Paused || ps.DegradedReason != `Node w1 is reporting: "disk full"` || ps.DegradedMachineCount != 1 {
					t.Fatalf("got %+v", ps)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Derive(tt.snap)
			if rep.APIVersion != ReportAPIVersion || rep.Kind != ReportKind || len(rep.Pools) != 1 {
				t.Fatalf("envelope: %+v", rep)
			}
			tt.check(t, rep.Pools[0])
		})
	}
}

func TestDeriveNodes(t *testing.T) {
	on := map[string]bool{"kubens.service": true}
	snap := Snapshot{
		Pools: []mcfgv1.MachineConfigPool{pool("master", "master"), pool("worker", "worker"), pool("infra", "worker", "infra")},
		MachineConfigs: []mcfgv1.MachineConfig{
			rendered("rendered-worker-1", "worker", nil), rendered("rendered-worker-2", "worker", on), rendered("rendered-infra-2", "infra", on),
		},
		Nodes: []corev1.Node{
			node("w2", []string{"worker"}, "rendered-worker-1", "rendered-worker-2", "Working", ""),
			node("w1", []string{"worker"}, "rendered-worker-2", "rendered-worker-2", "Done", ""),
			node("i1", []string{"worker", "infra"}, "rendered-infra-2", "rendered-infra-2", "Degraded", "unexpected on-disk state"),
			node("x1", nil, "", "", "", ""),
		},
	}
	got := Derive(snap).Nodes
	want := []NodeStatus{
		{Name: "x1", Pool: "", Kubens: UnitUnknown},
		{Name: "i1", Pool: "infra", CurrentConfig: "rendered-infra-2", DesiredConfig: "rendered-infra-2", State: "Degraded", Reason: "unexpected on-disk state", Kubens: UnitEnabled},
		{Name: "w1", Pool: "worker", CurrentConfig: "rendered-worker-2", DesiredConfig: "rendered-worker-2", State: "Done", Kubens: UnitEnabled},
		{Name: "w2", Pool: "worker", CurrentConfig: "rendered-worker-1", DesiredConfig: "rendered-worker-2", State: "Working", Kubens: UnitDisabled},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	deg := DegradedNodes(snap.Pools, snap.Nodes, "infra")
	if len(deg) != 1 || !strings.Contains(deg[0], "i1 (Degraded: unexpected on-disk state)") {
		t.Fatalf("DegradedNodes = %v", deg)
	}
}

func TestExpectedUnitState(t *testing.T) {
	p := pool("worker", "worker")
	on, off := map[string]bool{"kubens.service": true}, map[string]bool{"kubens.service": false}
	tests := []struct {
		name string
		mcs  []mcfgv1.MachineConfig
		want UnitState
	}{
		{"nothing lists it", []mcfgv1.MachineConfig{mc("00-worker", "worker", nil)}, UnitDisabled},
		{"ours enables it over the base", []mcfgv1.MachineConfig{mc("99-kubens-worker", "worker", on), mc("00-worker", "worker", off)}, UnitEnabled},
		{"a later MC disables it", []mcfgv1.MachineConfig{mc("99-kubens-worker", "worker", on), mc("99-zz-off", "worker", off)}, UnitDisabled},
		{"other pools' MCs and rendered configs do not count", []mcfgv1.MachineConfig{mc("99-kubens-master", "master", on), rendered("rendered-worker-1", "worker", on)}, UnitDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExpectedUnitState(&p, tt.mcs, "kubens.service"); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// The -o json schema is a contract (README "### status"): field names and
// shapes may only grow within one apiVersion. This golden file catches a
// rename or removal; after an intended addition, regenerate it with
// UPDATE_GOLDEN=1 go test ./pkg/mcp.
func TestReportSchemaGolden(t *testing.T) {
	on := map[string]bool{"kubens.service": true}
	rep := Derive(Snapshot{
		Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("rendered-worker-2", "99-kubens-worker"),
			withStatus("rendered-worker-1", 2, 1, 1, 1), withCond(mcfgv1.MachineConfigPoolUpdating, true, ""),
			withCond(mcfgv1.MachineConfigPoolNodeDegraded, true, `Node w2 is reporting: "disk full"`))},
		MachineConfigs: []mcfgv1.MachineConfig{managed(mc("99-kubens-worker", "worker", on)),
			rendered("rendered-worker-1", "worker", nil), rendered("rendered-worker-2", "worker", on)},
		Nodes: []corev1.Node{node("w1", []string{"worker"}, "rendered-worker-2", "rendered-worker-2", "Done", ""),
			node("w2", []string{"worker"}, "rendered-worker-1", "rendered-worker-2", "Degraded", "disk full")},
	})
	got, err := json.MarshalIndent(rep, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/status-v1alpha1.json"
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("status JSON differs from %s:\n%s", golden, got)
	}
}

// Configs as found on real clusters (test/testdata/realworld): Ignition 2.2
// ones, and ZTP's container-mount-namespace.service without enabled: true.
const (
	ign22EnableKubens = `{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`
	ign22LoadSCTP     = `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/modules-load.d/sctp-load.conf","mode":420,"contents":{"source":"data:,sctp"}}]}}`
	ztpNoEnabled      = `{"ignition":{"version":"3.2.0"},"systemd":{"units":[` +
		`{"name":"container-mount-namespace.service","contents":"[Unit]\nDescription=Mount namespace shared by CRI-O and kubelet\n[Service]\nType=oneshot\nExecStart=/bin/true\n"},` +
		`{"name":"crio.service","dropins":[{"name":"90-container-mount-namespace.conf","contents":"[Unit]\nWants=container-mount-namespace.service\n"}]},` +
		`{"name":"kubelet.service","dropins":[{"name":"90-container-mount-namespace.conf","contents":"[Unit]\nWants=container-mount-namespace.service\n"}]}]}}`
)

// withRaw replaces an MC's Ignition config.
func withRaw(m mcfgv1.MachineConfig, ignJSON string) mcfgv1.MachineConfig {
	m.Spec.Config.Raw = []byte(ignJSON)
	return m
}

// Issue 9 item 1: an Ignition 2.2.0 config that enables kubens.service is
// listed under ENABLED BY, and a 2.2.0 config that does not mention it
// leaves the others readable.
func TestDeriveReadsIgnition22(t *testing.T) {
	on := map[string]bool{"kubens.service": true}
	rep := Derive(Snapshot{
		Pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r1"), withStatus("r1", 1, 1, 1, 0))},
		MachineConfigs: []mcfgv1.MachineConfig{
			withRaw(mc("99-custom-enable-kubens-worker", "worker", nil), ign22EnableKubens),
			withRaw(mc("load-sctp-module-worker", "worker", nil), ign22LoadSCTP),
			rendered("r1", "worker", on),
		},
	})
	ps := rep.Pools[0]
	if !reflect.DeepEqual(ps.EnabledBy, []string{"99-custom-enable-kubens-worker"}) || ps.Kubens != UnitEnabled {
		t.Fatalf("got %+v", ps)
	}
}

// Issue 9 item 4: ZTP is detected by presence, in the rendered config the
// pool runs and in the input configs, not by an enabled flag that configs
// since 2023 leave out.
func TestDeriveZTPWithoutEnabledFlag(t *testing.T) {
	ztpRendered := withRaw(rendered("r1", "worker", nil), ztpNoEnabled)
	plainRendered := rendered("r0", "worker", nil)
	input := withRaw(mc("container-mount-namespace-and-kubelet-conf-worker", "worker", nil), ztpNoEnabled)
	tests := []struct {
		name string
		snap Snapshot
		want bool
	}{
		{"rolled out", Snapshot{
			Pools:          []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r1"), withStatus("r1", 1, 1, 1, 0))},
			MachineConfigs: []mcfgv1.MachineConfig{input, ztpRendered},
		}, true},
		{"in the rendered config only (input configs not visible)", Snapshot{
			Pools:          []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r1"), withStatus("r1", 1, 1, 1, 0))},
			MachineConfigs: []mcfgv1.MachineConfig{ztpRendered},
		}, true},
		{"applied, not rendered yet", Snapshot{
			Pools:          []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r0"), withStatus("r0", 1, 1, 1, 0))},
			MachineConfigs: []mcfgv1.MachineConfig{input, plainRendered},
		}, true},
		{"none", Snapshot{
			Pools:          []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r0"), withStatus("r0", 1, 1, 1, 0))},
			MachineConfigs: []mcfgv1.MachineConfig{mc("00-worker", "worker", nil), plainRendered},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := Derive(tt.snap).Pools[0]
			if ps.ZTP != tt.want {
				t.Fatalf("ZTP = %v, want %v (%+v)", ps.ZTP, tt.want, ps)
			}
			if ps.Kubens != UnitDisabled {
				t.Errorf("kubens = %s, want disabled", ps.Kubens)
			}
		})
	}
}

// wrapRendered is a rendered config that enables kubens.service and wraps
// units with the kubensenter drop-in; an empty drop-in (Ignition deletes it)
// does not count.
func wrapRendered(name, pool string, units ...string) mcfgv1.MachineConfig {
	var us []string
	for _, u := range units {
		us = append(us, `{"name":"`+u+`","dropins":[{"name":"`+manifests.WrapDropInName+`","contents":"[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /usr/bin/x\n"}]}`)
	}
	us = append(us, `{"name":"kubens.service","enabled":true}`, `{"name":"gone.service","dropins":[{"name":"`+manifests.WrapDropInName+`"}]}`)
	return withRaw(rendered(name, pool, nil), `{"ignition":{"version":"3.4.0"},"systemd":{"units":[`+strings.Join(us, ",")+`]}}`)
}

// TestDeriveWrapped: a pool's wrapped units are those of the config it has
// rolled out; a wrap not rolled out yet is a pending change.
func TestDeriveWrapped(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{
		mkPool("master", []string{"master"}, withSpec("rendered-master-1"), withStatus("rendered-master-1", 1, 1, 1, 0)),
		mkPool("worker", []string{"worker"}, withSpec("rendered-worker-2"), withStatus("rendered-worker-1", 2, 2, 0, 0)),
		mkPool("infra", []string{"infra"}, withSpec("rendered-infra-1"), withStatus("rendered-infra-1", 1, 1, 1, 0)),
	}
	rep := Derive(Snapshot{Pools: pools, MachineConfigs: []mcfgv1.MachineConfig{
		rendered("rendered-master-1", "master", map[string]bool{"kubens.service": true}),
		wrapRendered("rendered-worker-1", "worker", "zagent.service", "agent.service"),
		wrapRendered("rendered-worker-2", "worker", "agent.service", "other.service", "zagent.service"),
		// rendered-infra-1 is missing: unknown, nothing listed
	}})
	want := map[string][]string{"infra": {}, "master": {}, "worker": {"agent.service", "zagent.service"}}
	for _, ps := range rep.Pools {
		if !reflect.DeepEqual(ps.Wrapped, want[ps.Name]) {
			t.Errorf("%s: wrapped %#v, want %#v", ps.Name, ps.Wrapped, want[ps.Name])
		}
		if ps.Name == "worker" && (!ps.PendingChange || ps.Kubens != UnitEnabled) {
			t.Errorf("worker: %+v, want enabled with a pending change", ps)
		}
	}
	// Always a list in JSON, never null.
	b, err := json.Marshal(rep.Pools[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"wrapped":[]`) {
		t.Errorf("JSON %s lacks an empty wrapped list", b)
	}
}
