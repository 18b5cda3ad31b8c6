package change

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// Action is what a plan does to one MachineConfig.
type Action string

// Actions on one MachineConfig in a plan.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
	Delete    Action = "delete"
	// Foreign: an object of the same name that oc-kubens did not create
	// (no managed-by label), even one with the very config we would write
	// (the seed procedure's). It is someone's production data: never
	// changed, labelled, taken over or deleted.
	Foreign Action = "not-ours"
)

// Verbs of a plan.
const (
	VerbEnable  = "enable"
	VerbDisable = "disable"
	VerbWrap    = "wrap"
	VerbUnwrap  = "unwrap"
)

// Change is what the plan does to one MachineConfig.
type Change struct {
	Name   string
	Action Action
	// Have is the object as it is now (nil when it does not exist).
	Have *mcfgv1.MachineConfig
	// Want is what Create and Update apply.
	Want *mcfgv1.MachineConfig
}

// Sends tells whether the change goes to the API server.
func (c Change) Sends() bool {
	return c.Action == Create || c.Action == Update || c.Action == Delete
}

// PoolPlan is one reached pool: our configs it selects and its merged
// config before and after the change.
type PoolPlan struct {
	Name           string
	Machines       int32
	MaxUnavailable int
	MCs            []string // our MCs this pool selects
	Paused         bool
	Outcome        mcp.Outcome
}

// UnreachedPool is a pool with machines that the change does not reach.
type UnreachedPool struct {
	Name     string
	Machines int32
	Selector string // its machineConfigSelector, to say why
}

// Plan is everything enable, disable, wrap and unwrap decide before they
// ask: per MachineConfig what happens to it, per reached pool what its
// merged config becomes.
type Plan struct {
	Verb      string
	Changes   []Change
	Pools     []PoolPlan
	Unreached []UnreachedPool
	// Others maps a pool to the MCs we do not manage that enable
	// kubens.service on it; ZTP lists pools encapsulated by the ZTP unit.
	Others map[string][]string
	ZTP    []string
	// Legacy maps a pool in ZTP to the MachineConfigs that carry the ZTP
	// mechanism there (enable only), so that the plan can say what to
	// remove and what else goes with it.
	Legacy     map[string][]LegacyConfig
	SingleNode bool
	// Compact: every machine is a control-plane machine (three-node compact
	// clusters, and single-node): the API server's own machines reboot.
	Compact bool
	// Disruption is what the node disruption policy makes the Machine
	// Config Daemon do after the change (see SetDisruption); the zero
	// value means it was not assessed (wrap, unwrap).
	Disruption Disruption
	// Wrap holds, for wrap and unwrap, each role's drop-ins before and
	// after (in the order of Changes).
	Wrap []*WrapTarget
}

// AffectedPools returns the pools whose merged config the change alters:
// those get a new rendered config and reboot.
func (p *Plan) AffectedPools() []PoolPlan {
	var out []PoolPlan
	for _, pl := range p.Pools {
		if pl.Outcome.Rollout() {
			out = append(out, pl)
		}
	}
	return out
}

// SendsAnything tells whether any change goes to the API server.
func (p *Plan) SendsAnything() bool {
	for _, c := range p.Changes {
		if c.Sends() {
			return true
		}
	}
	return false
}

// NotReaching returns the pools the wanted state does not come out of the
// merge for: after enable, pools where kubens.service would still be off
// (or cannot be forecast); after disable, pools where it stays on.
func (p *Plan) NotReaching() []PoolPlan {
	var out []PoolPlan
	for _, pl := range p.Pools {
		got := pl.Outcome.After.Kubens
		if (p.Verb == VerbEnable && got != mcp.UnitEnabled) || (p.Verb == VerbDisable && got == mcp.UnitEnabled) {
			out = append(out, pl)
		}
	}
	return out
}

// RequiredVerbs are the MachineConfig verbs the plan needs: server-side
// apply patches, and creating an object that way also needs create.
func (p *Plan) RequiredVerbs() []string {
	var verbs []string
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			verbs = append(verbs, "create", "patch")
		case Update:
			verbs = append(verbs, "patch")
		case Delete:
			verbs = append(verbs, "delete")
		}
	}
	slices.Sort(verbs)
	return slices.Compact(verbs)
}

// newPoolPlans builds the per-pool lines for the MCs in reach (pool -> MCs)
// with each pool's forecast before and after the change.
func newPoolPlans(pools []mcfgv1.MachineConfigPool, reach map[string][]string, before, after []mcfgv1.MachineConfig) []PoolPlan {
	var out []PoolPlan
	for i := range pools {
		p := &pools[i]
		mcs, ok := reach[p.Name]
		if !ok {
			continue
		}
		out = append(out, PoolPlan{
			Name: p.Name, Machines: p.Status.MachineCount,
			MaxUnavailable: mcp.MaxUnavailable(p, int(p.Status.MachineCount)),
			MCs:            mcs, Paused: p.Spec.Paused,
			Outcome: mcp.Outcome{Pool: p.Name, Before: mcp.ForecastPool(p, before), After: mcp.ForecastPool(p, after)},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// unreachedPools lists the pools with machines that are not in reach, so
// the plan can say why an arbiter or a custom pool is left out.
func unreachedPools(pools []mcfgv1.MachineConfigPool, reach map[string][]string) []UnreachedPool {
	var out []UnreachedPool
	for i := range pools {
		p := &pools[i]
		if _, ok := reach[p.Name]; ok || p.Status.MachineCount == 0 {
			continue
		}
		out = append(out, UnreachedPool{Name: p.Name, Machines: p.Status.MachineCount, Selector: metav1.FormatLabelSelector(p.Spec.MachineConfigSelector)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LegacyConfig is a MachineConfig carrying the telco ZTP
// container-mount-namespace mechanism.
type LegacyConfig struct {
	Name string
	// Housekeeping: the same config also tunes kubelet housekeeping
	// (--housekeeping-interval in its kubelet drop-in, or the
	// OPENSHIFT_*_HOUSEKEEPING/EVICTION_MONITORING environment), which
	// goes too when the config is removed.
	Housekeeping bool
}

// SetDisruption records what the node disruption policy does with the
// plan's change. enable and disable change exactly one unit,
// kubens.service, and no file (see manifests.Render), so only a policy
// entry for that unit can match.
func (p *Plan) SetDisruption(pol DisruptionPolicy) {
	p.Disruption = pol.For([]string{manifests.UnitName}, nil)
}

// DisruptionAssessed tells whether SetDisruption was called.
func (p *Plan) DisruptionAssessed() bool {
	return p.Disruption.Known || p.Disruption.Unknown != ""
}

// compact reports a cluster whose machines are all in the master pool
// (schedulable masters, no workers): rebooting them takes the API server
// down in turns, and with one machine altogether.
func compact(pools []mcfgv1.MachineConfigPool) bool {
	var masters, total int32
	for _, p := range pools {
		total += p.Status.MachineCount
		if p.Name == "master" {
			masters = p.Status.MachineCount
		}
	}
	return total > 0 && masters == total
}

// legacyConfigs lists, for each pool in ztpPools, the input MachineConfigs
// it selects that carry the ZTP mechanism themselves.
func legacyConfigs(pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, ztpPools []string) map[string][]LegacyConfig {
	out := map[string][]LegacyConfig{}
	for i := range pools {
		p := &pools[i]
		if !slices.Contains(ztpPools, p.Name) {
			continue
		}
		for j := range mcs {
			mc := &mcs[j]
			if mcp.IsRendered(mc) || len(mc.Spec.Config.Raw) == 0 {
				continue
			}
			if ok, err := mcp.PoolSelectsMC(p, mc); err != nil || !ok {
				continue
			}
			cfg, err := manifests.ReadConfig(mc.Spec.Config.Raw)
			if err != nil || !manifests.ZTPPresent(cfg) {
				continue
			}
			out[p.Name] = append(out[p.Name], LegacyConfig{Name: mc.Name, Housekeeping: tunesHousekeeping(cfg)})
		}
		sort.Slice(out[p.Name], func(a, b int) bool { return out[p.Name][a].Name < out[p.Name][b].Name })
	}
	return out
}

// tunesHousekeeping: a kubelet.service drop-in of the config sets the
// housekeeping interval, as the ZTP configs of 2021-2023 do in the same
// drop-in that enters the namespace, or in a 30-kubelet-interval-tuning.conf
// beside it.
func tunesHousekeeping(cfg manifests.Config) bool {
	for _, u := range cfg.Systemd.Units {
		if u.Name != "kubelet.service" {
			continue
		}
		for _, d := range u.Dropins {
			if d.Contents == nil {
				continue
			}
			c := *d.Contents
			if strings.Contains(c, "--housekeeping-interval") || strings.Contains(c, "HOUSEKEEPING_INTERVAL") ||
				strings.Contains(c, "EVICTION_MONITORING_PERIOD") {
				return true
			}
		}
	}
	return false
}

// singleNode reports a cluster whose pools hold one machine in total: there
// the reboot takes the API server away too.
func singleNode(pools []mcfgv1.MachineConfigPool) bool {
	var n int32
	for _, p := range pools {
		n += p.Status.MachineCount
	}
	return n == 1
}

// otherEnablers maps each pool to the MCs that enable kubens.service on it
// and that are not managed by oc-kubens; the second result lists pools whose
// merged config carries the ZTP container-mount-namespace mechanism (by the
// unit or its drop-ins being there: the unit has no [Install] section, and
// configs since 2023 do not set enabled).
func otherEnablers(pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig) (map[string][]string, []string) {
	others := map[string][]string{}
	var ztp []string
	byName := mcsByName(mcs)
	for i := range pools {
		p := &pools[i]
		for _, n := range mcp.EnablingMCs(p, mcs, manifests.UnitName) {
			if !manifests.IsManagedKubens(byName[n]) {
				others[p.Name] = append(others[p.Name], n)
			}
		}
		if p.Status.MachineCount > 0 || len(p.Spec.Configuration.Source) > 0 {
			if mcp.ForecastPool(p, mcs).ZTP {
				ztp = append(ztp, p.Name)
			}
		}
	}
	sort.Strings(ztp)
	return others, ztp
}

// afterChanges is the set of MachineConfigs once the plan's changes are
// made: deleted ones gone, created and updated ones as wanted.
func afterChanges(mcs []mcfgv1.MachineConfig, changes []Change) []mcfgv1.MachineConfig {
	touched := map[string]bool{}
	var wanted []mcfgv1.MachineConfig
	for _, c := range changes {
		switch {
		case c.Action == Delete:
			touched[c.Name] = true
		case c.Action != Foreign && c.Want != nil:
			touched[c.Name] = true
			wanted = append(wanted, *c.Want)
		}
	}
	after := make([]mcfgv1.MachineConfig, 0, len(mcs)+len(wanted))
	for _, mc := range mcs {
		if !touched[mc.Name] {
			after = append(after, mc)
		}
	}
	return append(after, wanted...)
}

// compareMC decides what applying want over have does.
func compareMC(have, want *mcfgv1.MachineConfig) Action {
	if have == nil {
		return Create
	}
	// Ours to change only when we made it for the same purpose: a wrap
	// config is not enable's to take over, nor the other way round.
	if !manifests.IsManaged(have) || have.Labels[manifests.ComponentLabel] != want.Labels[manifests.ComponentLabel] {
		return Foreign
	}
	if !sameJSON(have.Spec.Config.Raw, want.Spec.Config.Raw) || !emptyOtherSpec(have) {
		return Update
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return Update // a role change moves the MC to other pools
		}
	}
	return Unchanged
}

// emptyOtherSpec: our MCs only carry spec.config; anything else in an
// existing MC of the same name (kernel arguments, extensions) is owned by
// someone else.
func emptyOtherSpec(mc *mcfgv1.MachineConfig) bool {
	s := mc.Spec.DeepCopy()
	s.Config.Raw = nil
	s.Config.Object = nil
	return reflect.DeepEqual(*s, mcfgv1.MachineConfigSpec{})
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func mcsByName(mcs []mcfgv1.MachineConfig) map[string]*mcfgv1.MachineConfig {
	out := make(map[string]*mcfgv1.MachineConfig, len(mcs))
	for i := range mcs {
		out[mcs[i].Name] = &mcs[i]
	}
	return out
}
