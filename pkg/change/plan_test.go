package change

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func planFor(t *testing.T, pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, roles ...string) *Plan {
	t.Helper()
	p, err := PlanEnable(mcp.Snapshot{Pools: pools, MachineConfigs: mcs}, EnableRequest{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func poolOf(p *Plan, name string) PoolPlan {
	for _, pl := range p.Pools {
		if pl.Name == name {
			return pl
		}
	}
	return PoolPlan{}
}

func actionOf(p *Plan, name string) Action {
	for _, c := range p.Changes {
		if c.Name == name {
			return c.Action
		}
	}
	return ""
}

// Issue 9 items 2, 3, 5, 6 and 11: the plan forecasts the merged outcome
// per pool, on real-world-shaped configs.
func TestPlanEnableForecastsTheMergedOutcome(t *testing.T) {
	master, worker := mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")
	infra := mcfixture.Pool("infra", "worker", "infra")
	arbiter := mcfixture.Pool("arbiter", "arbiter")
	custom := mcfixture.Pool("edge", "edge")
	tests := []struct {
		name  string
		pools []mcfgv1.MachineConfigPool
		mcs   []mcfgv1.MachineConfig
		check func(t *testing.T, p *Plan)
	}{
		{
			name:  "item 2: a later unmanaged config keeps it off: refused without --force",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "99-zz-worker-keep-kubens-off.yaml")},
			check: func(t *testing.T, p *Plan) {
				if got := poolOf(p, "worker").Outcome.After; got.Kubens != mcp.UnitDisabled || got.KubensSetBy != "99-zz-worker-keep-kubens-off" {
					t.Errorf("worker after = %s by %q", got.Kubens, got.KubensSetBy)
				}
				var nr *NotReachingError
				if err := p.CheckEnable(false); !errors.As(err, &nr) || strings.Join(nr.Pools, ",") != "worker" {
					t.Errorf("CheckEnable = %v, want a NotReachingError for worker", err)
				}
				if err := p.CheckEnable(true); err != nil {
					t.Errorf("forced: %v", err)
				}
				if exps := p.Expectations(); exps[1].UnitState != mcp.UnitDisabled {
					t.Errorf("wait expects %s on worker, want the merged state (disabled)", exps[1].UnitState)
				}
			},
		},
		{
			name:  "item 3: an infra config overrides the worker config whatever the names",
			pools: []mcfgv1.MachineConfigPool{master, worker, infra},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "00-infra-keep-kubens-off.yaml")},
			check: func(t *testing.T, p *Plan) {
				if got := poolOf(p, "infra").Outcome.After.Kubens; got != mcp.UnitDisabled {
					t.Errorf("infra after = %s, want disabled", got)
				}
				if got := poolOf(p, "worker").Outcome.After.Kubens; got != mcp.UnitEnabled {
					t.Errorf("worker after = %s, want enabled", got)
				}
				var nr *NotReachingError
				if err := p.CheckEnable(false); !errors.As(err, &nr) || strings.Join(nr.Pools, ",") != "infra" {
					t.Errorf("CheckEnable = %v, want a NotReachingError for infra", err)
				}
			},
		},
		{
			name:  "item 5: a same-name object with more content is never taken over",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "foreign-99-kubens-worker.yaml")},
			check: func(t *testing.T, p *Plan) {
				if a := actionOf(p, "99-kubens-worker"); a != Foreign {
					t.Fatalf("action = %s, want %s", a, Foreign)
				}
				if c := p.Changes[1]; c.Have == nil || c.Want != nil {
					t.Errorf("foreign change = %+v: want the object as it is and nothing to apply", c)
				}
				// It enables kubens.service itself, so nothing is refused
				// and nothing of it is touched.
				if err := p.CheckEnable(false); err != nil {
					t.Errorf("CheckEnable = %v", err)
				}
				if e := p.Expectations()[1]; len(e.Present) != 0 {
					t.Errorf("wait expects %v in the worker source; the object is not ours", e.Present)
				}
			},
		},
		{
			name:  "item 5: a same-name object that keeps it off is refused with a way out",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs: func() []mcfgv1.MachineConfig {
				m := mcfixture.MC("99-kubens-worker", "worker", map[string]bool{manifests.UnitName: false})
				m.Spec.KernelArguments = []string{"nosmt"}
				return []mcfgv1.MachineConfig{m}
			}(),
			check: func(t *testing.T, p *Plan) {
				var fe *ForeignError
				// forcing never takes over an object
				if err := p.CheckEnable(true); !errors.As(err, &fe) || fe.Existing.Name != "99-kubens-worker" {
					t.Errorf("CheckEnable = %v, want a ForeignError", err)
				}
			},
		},
		{
			name:  "item 6: arbiter and custom pools the roles do not reach are listed",
			pools: []mcfgv1.MachineConfigPool{master, worker, arbiter, custom},
			check: func(t *testing.T, p *Plan) {
				var names []string
				for _, u := range p.Unreached {
					names = append(names, u.Name)
				}
				if strings.Join(names, ",") != "arbiter,edge" {
					t.Errorf("unreached = %v, want arbiter,edge", names)
				}
			},
		},
		{
			name:  "item 11: another config already enables it: no rollout",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "ci-99-custom-enable-kubens-worker.yaml")},
			check: func(t *testing.T, p *Plan) {
				if poolOf(p, "worker").Outcome.Rollout() {
					t.Error("worker: rollout forecast although the merged config does not change")
				}
				if !poolOf(p, "master").Outcome.Rollout() {
					t.Error("master: no rollout forecast")
				}
				if got := affected(p); got != "master" {
					t.Errorf("affected pools = %s, want master", got)
				}
			},
		},
		{
			name:  "item 1: an Ignition 2.2 config in the pool does not make it unknown",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "ign22-load-sctp-module-worker.yaml")},
			check: func(t *testing.T, p *Plan) {
				if got := poolOf(p, "worker").Outcome.After; got.Kubens != mcp.UnitEnabled || got.Err != nil {
					t.Errorf("worker after = %s (%v)", got.Kubens, got.Err)
				}
				if err := p.CheckEnable(false); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "item 4: ZTP without enabled is noted",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{mcfixture.RealWorld(t, "ztp-container-mount-namespace-worker-noenabled.yaml")},
			check: func(t *testing.T, p *Plan) {
				if strings.Join(p.ZTP, ",") != "worker" {
					t.Errorf("ZTP pools = %v, want worker", p.ZTP)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, planFor(t, tt.pools, tt.mcs))
		})
	}
}

func affected(p *Plan) string {
	var names []string
	for _, pl := range p.AffectedPools() {
		names = append(names, pl.Name)
	}
	return strings.Join(names, ",")
}

func TestEnableExpectations(t *testing.T) {
	off, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name string) mcfgv1.MachineConfigPool {
		return mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{manifests.RoleLabel: name}}}}
	}
	snap := mcp.Snapshot{Pools: []mcfgv1.MachineConfigPool{pool("master"), pool("worker")}, MachineConfigs: []mcfgv1.MachineConfig{*off[0]}}
	plan, err := PlanEnable(snap, EnableRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if a := actionOf(plan, "99-kubens-worker"); a != Update {
		t.Fatalf("action on our disabled config = %s, want update", a)
	}
	got := plan.Expectations()
	// Every reached pool waits for the merged state in its new rendered
	// config, not only where an MC of the same name existed.
	want := []mcp.Expectation{
		{Pool: "master", Present: []string{"99-kubens-master"}, Unit: "kubens.service", UnitState: mcp.UnitEnabled},
		{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: mcp.UnitEnabled},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
