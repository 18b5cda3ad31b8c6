package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// testPool is a pool selecting MCs whose role is in roles, with 2 machines.
func testPool(name string, roles ...string) mcfgv1.MachineConfigPool {
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

// testMC is an unmanaged Ignition 3.2 MC setting the given units' enabled.
func testMC(name, role string, units map[string]bool) mcfgv1.MachineConfig {
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
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(raw)}},
	}
}

// fixture reads one of the real-world-shaped MachineConfigs in
// test/testdata/realworld.
func fixture(t *testing.T, file string) mcfgv1.MachineConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "realworld", file))
	if err != nil {
		t.Fatal(err)
	}
	var mc mcfgv1.MachineConfig
	if err := yaml.UnmarshalStrict(data, &mc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return mc
}

func planFor(t *testing.T, pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, roles ...string) *rolloutPlan {
	t.Helper()
	desired, err := manifests.Render(manifests.RenderOptions{Roles: roles, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	reach, err := mcp.Reach(pools, desired)
	if err != nil {
		t.Fatal(err)
	}
	return planEnable(mcp.Snapshot{Pools: pools, MachineConfigs: mcs}, desired, reach)
}

func poolOf(p *rolloutPlan, name string) poolPlan {
	for _, pl := range p.Pools {
		if pl.Name == name {
			return pl
		}
	}
	return poolPlan{}
}

func actionOf(p *rolloutPlan, name string) string {
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
	master, worker := testPool("master", "master"), testPool("worker", "worker")
	infra := testPool("infra", "worker", "infra")
	arbiter := testPool("arbiter", "arbiter")
	custom := testPool("edge", "edge")
	tests := []struct {
		name  string
		pools []mcfgv1.MachineConfigPool
		mcs   []mcfgv1.MachineConfig
		check func(t *testing.T, p *rolloutPlan, o *EnableOptions)
	}{
		{
			name:  "item 2: a later unmanaged config keeps it off: refused without --force",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{fixture(t, "99-zz-worker-keep-kubens-off.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				if got := poolOf(p, "worker").Outcome.After; got.Kubens != mcp.UnitDisabled || got.KubensSetBy != "99-zz-worker-keep-kubens-off" {
					t.Errorf("worker after = %s by %q", got.Kubens, got.KubensSetBy)
				}
				err := o.refuseUnsafe(p)
				if err == nil || !strings.Contains(err.Error(), "--force") {
					t.Errorf("refuseUnsafe = %v, want a refusal naming --force", err)
				}
				o.Force = true
				if err := o.refuseUnsafe(p); err != nil {
					t.Errorf("with --force: %v", err)
				}
				if exps := enableExpectations(mcp.Snapshot{}, p); exps[1].UnitState != mcp.UnitDisabled {
					t.Errorf("wait expects %s on worker, want the merged state (disabled)", exps[1].UnitState)
				}
			},
		},
		{
			name:  "item 3: an infra config overrides the worker config whatever the names",
			pools: []mcfgv1.MachineConfigPool{master, worker, infra},
			mcs:   []mcfgv1.MachineConfig{fixture(t, "00-infra-keep-kubens-off.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				if got := poolOf(p, "infra").Outcome.After.Kubens; got != mcp.UnitDisabled {
					t.Errorf("infra after = %s, want disabled", got)
				}
				if got := poolOf(p, "worker").Outcome.After.Kubens; got != mcp.UnitEnabled {
					t.Errorf("worker after = %s, want enabled", got)
				}
				if err := o.refuseUnsafe(p); err == nil || !strings.Contains(err.Error(), "pool infra") {
					t.Errorf("refuseUnsafe = %v", err)
				}
			},
		},
		{
			name:  "item 5: a same-name object with more content is never taken over",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{fixture(t, "foreign-99-kubens-worker.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				if a := actionOf(p, "99-kubens-worker"); a != actionForeign {
					t.Fatalf("action = %s, want %s", a, actionForeign)
				}
				if c := p.Changes[1].Foreign; !strings.Contains(c, "kernelArguments nosmt") || !strings.Contains(c, "site-agent.service") {
					t.Errorf("foreign description = %q", c)
				}
				// It enables kubens.service itself, so nothing is refused
				// and nothing of it is touched.
				if err := o.refuseUnsafe(p); err != nil {
					t.Errorf("refuseUnsafe = %v", err)
				}
				if e := enableExpectations(mcp.Snapshot{}, p)[1]; len(e.Present) != 0 {
					t.Errorf("wait expects %v in the worker source; the object is not ours", e.Present)
				}
			},
		},
		{
			name:  "item 5: a same-name object that keeps it off is refused with a way out",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs: func() []mcfgv1.MachineConfig {
				m := testMC("99-kubens-worker", "worker", map[string]bool{manifests.UnitName: false})
				m.Spec.KernelArguments = []string{"nosmt"}
				return []mcfgv1.MachineConfig{m}
			}(),
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				o.Force = true // --force never takes over an object
				err := o.refuseUnsafe(p)
				if err == nil || !strings.Contains(err.Error(), "--name-suffix") || !strings.Contains(err.Error(), "not created by oc-kubens") {
					t.Errorf("refuseUnsafe = %v", err)
				}
			},
		},
		{
			name:  "item 6: arbiter and custom pools the roles do not reach are listed",
			pools: []mcfgv1.MachineConfigPool{master, worker, arbiter, custom},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
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
			mcs:   []mcfgv1.MachineConfig{fixture(t, "ci-99-custom-enable-kubens-worker.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
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
			mcs:   []mcfgv1.MachineConfig{fixture(t, "ign22-load-sctp-module-worker.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				if got := poolOf(p, "worker").Outcome.After; got.Kubens != mcp.UnitEnabled || got.Err != nil {
					t.Errorf("worker after = %s (%v)", got.Kubens, got.Err)
				}
				if err := o.refuseUnsafe(p); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "item 4: ZTP without enabled is noted",
			pools: []mcfgv1.MachineConfigPool{master, worker},
			mcs:   []mcfgv1.MachineConfig{fixture(t, "ztp-container-mount-namespace-worker-noenabled.yaml")},
			check: func(t *testing.T, p *rolloutPlan, o *EnableOptions) {
				if strings.Join(p.ZTP, ",") != "worker" {
					t.Errorf("ZTP pools = %v, want worker", p.ZTP)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, planFor(t, tt.pools, tt.mcs), &EnableOptions{})
		})
	}
}

func affected(p *rolloutPlan) string {
	var names []string
	for _, pl := range p.affectedPools() {
		names = append(names, pl.Name)
	}
	return strings.Join(names, ",")
}
