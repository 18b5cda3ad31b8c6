package change

import (
	"context"
	"errors"
	"reflect"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	operatorfake "github.com/openshift/client-go/operator/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func unitPolicy(name string, actions ...opv1.NodeDisruptionPolicyStatusAction) opv1.NodeDisruptionPolicyStatusUnit {
	return opv1.NodeDisruptionPolicyStatusUnit{Name: opv1.NodeDisruptionPolicyServiceName(name), Actions: actions}
}

func act(t opv1.NodeDisruptionPolicyStatusActionType) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: t}
}

// The effective action follows the daemon's reduction
// (calculatePostConfigChangeNodeDisruptionActionFromMCDiffs).
func TestDisruptionFor(t *testing.T) {
	restart := opv1.NodeDisruptionPolicyStatusAction{Type: opv1.RestartStatusAction, Restart: &opv1.RestartService{ServiceName: "kubens.service"}}
	files := []opv1.NodeDisruptionPolicyStatusFile{
		{Path: "/etc/containers", Actions: []opv1.NodeDisruptionPolicyStatusAction{act(opv1.DrainStatusAction)}},
		{Path: "/etc/containers/policy.json", Actions: []opv1.NodeDisruptionPolicyStatusAction{act(opv1.NoneStatusAction)}},
	}
	tests := []struct {
		name         string
		pol          DisruptionPolicy
		units, files []string
		reboots      bool
		describe     string
		matched      []string
	}{
		{name: "no object: the default", pol: DisruptionPolicy{Known: true}, units: []string{"kubens.service"}, reboots: true, describe: "Reboot"},
		{name: "policy for other units only", pol: DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("chronyd.service", act(opv1.NoneStatusAction))}},
			units: []string{"kubens.service"}, reboots: true, describe: "Reboot"},
		{name: "None for kubens.service", pol: DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.NoneStatusAction))}},
			units: []string{"kubens.service"}, describe: "None", matched: []string{"unit kubens.service"}},
		{name: "Restart and Drain: None dropped", pol: DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{
			unitPolicy("kubens.service", restart, act(opv1.DrainStatusAction)), unitPolicy("a.service", act(opv1.NoneStatusAction))}},
			units: []string{"kubens.service", "a.service"}, describe: "Restart kubens.service, Drain", matched: []string{"unit kubens.service", "unit a.service"}},
		{name: "explicit Reboot", pol: DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.RebootStatusAction))}},
			units: []string{"kubens.service"}, reboots: true, describe: "Reboot", matched: []string{"unit kubens.service"}},
		{name: "one uncovered unit reboots", pol: DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.NoneStatusAction))}},
			units: []string{"kubens.service", "kubelet.service"}, reboots: true, describe: "Reboot"},
		{name: "closest file path wins", pol: DisruptionPolicy{Known: true, Files: files}, files: []string{"/etc/containers/policy.json"}, describe: "None",
			matched: []string{"file /etc/containers/policy.json"}},
		{name: "directory entry", pol: DisruptionPolicy{Known: true, Files: files}, files: []string{"/etc/containers/registries.d/x.yaml"}, describe: "Drain",
			matched: []string{"file /etc/containers"}},
		{name: "not a prefix by name", pol: DisruptionPolicy{Known: true, Files: files}, files: []string{"/etc/containers2/x"}, reboots: true, describe: "Reboot"},
		{name: "unknown policy: the default", pol: DisruptionPolicy{Unknown: "forbidden"}, units: []string{"kubens.service"}, reboots: true, describe: "Reboot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.pol.For(tt.units, tt.files)
			if d.Reboots() != tt.reboots || d.Describe() != tt.describe || !reflect.DeepEqual(d.Matched, tt.matched) {
				t.Errorf("got reboots=%v %q matched %v, want %v %q %v", d.Reboots(), d.Describe(), d.Matched, tt.reboots, tt.describe, tt.matched)
			}
			if d.Known != tt.pol.Known {
				t.Errorf("Known = %v", d.Known)
			}
		})
	}
}

func machineConfiguration(gen, observed int64, spec []opv1.NodeDisruptionPolicySpecUnit, status []opv1.NodeDisruptionPolicyStatusUnit) *opv1.MachineConfiguration {
	mc := &opv1.MachineConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Generation: gen}}
	mc.Spec.NodeDisruptionPolicy.Units = spec
	mc.Status.ObservedGeneration = observed
	mc.Status.NodeDisruptionPolicyStatus.ClusterPolicies.Units = status
	mc.Status.NodeDisruptionPolicyStatus.ClusterPolicies.Files = []opv1.NodeDisruptionPolicyStatusFile{
		{Path: "/var/lib/kubelet/config.json", Actions: []opv1.NodeDisruptionPolicyStatusAction{act(opv1.NoneStatusAction)}}}
	return mc
}

// The status is the answer once current; a lagging status gets the spec
// laid over it, since the daemon waits for the status to catch up.
func TestPolicyOf(t *testing.T) {
	none := []opv1.NodeDisruptionPolicySpecUnit{{Name: "kubens.service", Actions: []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}}}
	for _, tt := range []struct {
		name    string
		mc      *opv1.MachineConfiguration
		reboots bool
	}{
		{"status current, entry there", machineConfiguration(2, 2, none, []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.NoneStatusAction))}), false},
		{"status lagging behind a new spec entry", machineConfiguration(3, 2, none, nil), false},
		{"status current after the entry was removed", machineConfiguration(4, 4, nil, nil), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := PolicyOf(tt.mc).For([]string{"kubens.service"}, nil).Reboots(); got != tt.reboots {
				t.Errorf("Reboots() = %v, want %v", got, tt.reboots)
			}
		})
	}
}

func TestReadDisruptionPolicy(t *testing.T) {
	ctx := context.Background()
	gr := schema.GroupResource{Group: "operator.openshift.io", Resource: "machineconfigurations"}
	t.Run("absent: no policy, known", func(t *testing.T) {
		p, err := ReadDisruptionPolicy(ctx, operatorfake.NewSimpleClientset())
		if err != nil || !p.Known {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("present", func(t *testing.T) {
		mc := machineConfiguration(1, 1, nil, []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.NoneStatusAction))})
		p, err := ReadDisruptionPolicy(ctx, operatorfake.NewSimpleClientset(mc))
		if err != nil || p.For([]string{"kubens.service"}, nil).Reboots() {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("forbidden: unknown, no error", func(t *testing.T) {
		c := operatorfake.NewSimpleClientset()
		c.PrependReactor("get", "machineconfigurations", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(gr, "cluster", errors.New("no"))
		})
		p, err := ReadDisruptionPolicy(ctx, c)
		if err != nil || p.Known || p.Unknown == "" {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("server error: returned", func(t *testing.T) {
		c := operatorfake.NewSimpleClientset()
		c.PrependReactor("get", "machineconfigurations", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("down")
		})
		if _, err := ReadDisruptionPolicy(ctx, c); err == nil {
			t.Fatal("no error")
		}
	})
}

var noneForKubens = DisruptionPolicy{Known: true, Units: []opv1.NodeDisruptionPolicyStatusUnit{unitPolicy("kubens.service", act(opv1.NoneStatusAction))}}

// Hazard 1: a policy that does not reboot for kubens.service makes enable
// and disable refuse without --force, and only when something rolls out.
func TestCheckRefusesNonRebootDisruption(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")}
	p := planFor(t, pools, nil)
	p.SetDisruption(noneForKubens)
	var de *DisruptionError
	if err := p.CheckEnable(false); !errors.As(err, &de) || !reflect.DeepEqual(de.Pools, []string{"master", "worker"}) {
		t.Fatalf("CheckEnable(false) = %v", err)
	}
	if err := p.CheckEnable(true); err != nil {
		t.Fatalf("CheckEnable(true) = %v", err)
	}
	p.SetDisruption(DisruptionPolicy{Known: true})
	if err := p.CheckEnable(false); err != nil {
		t.Fatalf("default policy: %v", err)
	}

	// disable with our configs in place.
	var mcs []mcfgv1.MachineConfig
	for _, ch := range p.Changes {
		mcs = append(mcs, *ch.Want)
	}
	d := PlanDisable(snapshotOf(pools, mcs), nil)
	d.SetDisruption(noneForKubens)
	if err := d.CheckDisable(false); !errors.As(err, &de) {
		t.Fatalf("CheckDisable(false) = %v", err)
	}
	if err := d.CheckDisable(true); err != nil {
		t.Fatalf("CheckDisable(true) = %v", err)
	}
	// Nothing to delete: nothing rolls out, nothing to refuse.
	empty := PlanDisable(snapshotOf(pools, nil), nil)
	empty.SetDisruption(noneForKubens)
	if err := empty.CheckDisable(false); err != nil {
		t.Fatalf("empty disable: %v", err)
	}
}

// Hazard 2: enable on a pool in ZTP refuses without --force and names the
// legacy configs, with their kubelet housekeeping tuning.
func TestCheckEnableRefusesOnZTPPools(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")}
	mcs := []mcfgv1.MachineConfig{
		mcfixture.ZTP("container-mount-namespace-and-kubelet-conf-worker", "worker", true),
		mcfixture.ZTP("99-container-mount-namespace-master", "master", false),
	}
	p := planFor(t, pools, mcs, "worker")
	var ze *ZTPError
	if err := p.CheckEnable(false); !errors.As(err, &ze) || !reflect.DeepEqual(ze.Pools, []string{"worker"}) {
		t.Fatalf("CheckEnable(false) = %v", err)
	}
	want := map[string][]LegacyConfig{
		"master": {{Name: "99-container-mount-namespace-master"}},
		"worker": {{Name: "container-mount-namespace-and-kubelet-conf-worker", Housekeeping: true}},
	}
	if !reflect.DeepEqual(p.Legacy, want) {
		t.Errorf("Legacy = %+v, want %+v", p.Legacy, want)
	}
	if err := p.CheckEnable(true); err != nil {
		t.Fatalf("CheckEnable(true) = %v", err)
	}
	// The real-world ZTP shapes are recognised the same way.
	rw := planFor(t, pools, []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "ztp-container-mount-namespace-worker-noenabled.yaml")})
	if got := rw.ZTPAffected(); !reflect.DeepEqual(got, []string{"worker"}) {
		t.Errorf("ZTPAffected = %v", got)
	}
	if l := rw.Legacy["worker"]; len(l) != 1 || !l[0].Housekeeping {
		t.Errorf("Legacy[worker] = %+v", l)
	}
}

func TestCompact(t *testing.T) {
	master, worker := mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")
	master.Status.MachineCount = 3
	worker.Status.MachineCount = 0
	if p := planFor(t, []mcfgv1.MachineConfigPool{master, worker}, nil); !p.Compact || p.SingleNode {
		t.Errorf("3 masters, no workers: Compact=%v SingleNode=%v", p.Compact, p.SingleNode)
	}
	worker.Status.MachineCount = 2
	if p := planFor(t, []mcfgv1.MachineConfigPool{master, worker}, nil); p.Compact {
		t.Error("with workers: Compact")
	}
}

func snapshotOf(pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig) mcp.Snapshot {
	return mcp.Snapshot{Pools: pools, MachineConfigs: mcs}
}
