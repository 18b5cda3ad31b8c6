package change

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// EnableRequest is what enable is asked for.
type EnableRequest struct {
	// Roles to enable it for; empty means master and worker.
	Roles []string
	// NameSuffix names our configs 99-kubens-<role>-<suffix>, for clusters
	// where somebody else's object already has the plain name.
	NameSuffix string
}

// PlanEnable works out what applying our enable configs does: per MC,
// create, update, unchanged or not-ours (a same-name object somebody else
// made, which is never touched); per reached pool, the merged config
// before and after.
func PlanEnable(snap mcp.Snapshot, req EnableRequest) (*Plan, error) {
	desired, err := manifests.Render(manifests.RenderOptions{Roles: req.Roles, Enabled: true})
	if err != nil {
		return nil, err
	}
	if req.NameSuffix != "" {
		for _, mc := range desired {
			mc.Name += "-" + req.NameSuffix
		}
	}
	reach, err := mcp.Reach(snap.Pools, desired)
	if err != nil {
		return nil, err
	}
	existing := mcsByName(snap.MachineConfigs)
	plan := &Plan{Verb: VerbEnable, SingleNode: singleNode(snap.Pools), Compact: compact(snap.Pools), Unreached: unreachedPools(snap.Pools, reach)}
	plan.Others, plan.ZTP = otherEnablers(snap.Pools, snap.MachineConfigs)
	plan.Legacy = legacyConfigs(snap.Pools, snap.MachineConfigs, plan.ZTP)
	for _, mc := range desired {
		have := existing[mc.Name]
		ch := Change{Name: mc.Name, Action: compareMC(have, mc), Have: have}
		if ch.Action != Foreign {
			ch.Want = mc
		}
		plan.Changes = append(plan.Changes, ch)
	}
	plan.Pools = newPoolPlans(snap.Pools, reach, snap.MachineConfigs, afterChanges(snap.MachineConfigs, plan.Changes))
	return plan, nil
}

// CheckEnable refuses a plan that would take over someone else's object
// (*ForeignError), or would not end with kubens.service enabled on a
// reached pool (*NotReachingError: a later config switches it off again,
// so the pools would reboot for nothing and the wait would report
// success), or would add kubens.service to a pool that already
// encapsulates through the ZTP container-mount-namespace mechanism
// (*ZTPError: two mechanisms on one node risk a Split), or whose nodes the
// node disruption policy would not reboot (*DisruptionError). force
// accepts all but the first.
func (p *Plan) CheckEnable(force bool) error {
	bad := p.NotReaching()
	for _, ch := range p.Changes {
		// A same-name object of someone else's that already gets the unit
		// enabled everywhere our config would go is no obstacle.
		if ch.Action == Foreign && len(bad) > 0 {
			return &ForeignError{Existing: ch.Have}
		}
	}
	if force {
		return nil
	}
	if len(bad) > 0 {
		names := make([]string, 0, len(bad))
		for _, pl := range bad {
			names = append(names, pl.Name)
		}
		return &NotReachingError{Unit: manifests.UnitName, Pools: names}
	}
	if pools := p.ZTPAffected(); len(pools) > 0 {
		return &ZTPError{Pools: pools, Legacy: p.Legacy}
	}
	return p.checkDisruption()
}

// CheckDisable refuses, without force, a plan whose nodes the node
// disruption policy would not reboot (*DisruptionError).
func (p *Plan) CheckDisable(force bool) error {
	if force {
		return nil
	}
	return p.checkDisruption()
}

func (p *Plan) checkDisruption() error {
	affected := p.AffectedPools()
	if len(affected) == 0 || p.Disruption.Reboots() {
		return nil
	}
	names := make([]string, 0, len(affected))
	for _, pl := range affected {
		names = append(names, pl.Name)
	}
	return &DisruptionError{Verb: p.Verb, Disruption: p.Disruption, Pools: names}
}

// ZTPAffected lists the pools that encapsulate through the ZTP mechanism
// already and whose merged config this change alters.
func (p *Plan) ZTPAffected() []string {
	var out []string
	for _, pl := range p.AffectedPools() {
		if slices.Contains(p.ZTP, pl.Name) {
			out = append(out, pl.Name)
		}
	}
	return out
}

// PlanDisable deletes the configs enable created (by role label, not by
// name: enable --name-suffix names ours differently), for the given roles
// or all of them.
func PlanDisable(snap mcp.Snapshot, roles []string) *Plan {
	wanted := map[string]bool{}
	for _, r := range roles {
		wanted[r] = true
	}
	var doomed []*mcfgv1.MachineConfig
	for i := range snap.MachineConfigs {
		mc := &snap.MachineConfigs[i]
		if !manifests.IsManagedKubens(mc) || (len(wanted) > 0 && !wanted[mc.Labels[manifests.RoleLabel]]) {
			continue
		}
		doomed = append(doomed, mc)
	}
	sort.Slice(doomed, func(i, j int) bool { return doomed[i].Name < doomed[j].Name })

	reach := map[string][]string{}
	for i := range snap.Pools {
		for _, mc := range doomed {
			if ok, _ := mcp.PoolSelectsMC(&snap.Pools[i], mc); ok {
				reach[snap.Pools[i].Name] = append(reach[snap.Pools[i].Name], mc.Name)
			}
		}
	}
	plan := &Plan{Verb: VerbDisable, SingleNode: singleNode(snap.Pools), Compact: compact(snap.Pools)}
	plan.Others, plan.ZTP = otherEnablers(snap.Pools, snap.MachineConfigs)
	for _, mc := range doomed {
		plan.Changes = append(plan.Changes, Change{Name: mc.Name, Action: Delete, Have: mc})
	}
	plan.Pools = newPoolPlans(snap.Pools, reach, snap.MachineConfigs, afterChanges(snap.MachineConfigs, plan.Changes))
	return plan
}

// Expectations are what the wait checks per reached pool, for any verb:
// our configs in (or, deleted, out of) the rendered source, and the state
// the merge gives in the new rendered config: kubens.service for enable
// (an MC that existed under the same name is already in the source: only
// the unit shows the render has happened), the exact wrapper drop-ins for
// wrap and unwrap.
func (p *Plan) Expectations() []mcp.Expectation {
	ours := map[string]Action{}
	for _, ch := range p.Changes {
		if ch.Action != Foreign {
			ours[ch.Name] = ch.Action
		}
	}
	exps := make([]mcp.Expectation, 0, len(p.Pools))
	for _, pl := range p.Pools {
		e := mcp.Expectation{Pool: pl.Name}
		for _, m := range pl.MCs {
			switch a, ok := ours[m]; {
			case !ok:
			case a == Delete:
				e.Absent = append(e.Absent, m)
			default:
				e.Present = append(e.Present, m)
			}
		}
		if pl.Outcome.After.Err == nil {
			switch p.Verb {
			case VerbEnable:
				e.Unit, e.UnitState = manifests.UnitName, pl.Outcome.After.Kubens
			case VerbWrap, VerbUnwrap:
				e.Wrapped = manifests.WrapDropIns(pl.Outcome.After.Merged)
			}
		}
		exps = append(exps, e)
	}
	return exps
}

// ForeignError: a MachineConfig of the name we would write exists and was
// not created by oc-kubens (or not by this command), so it is never
// changed, taken over or deleted.
type ForeignError struct {
	Existing *mcfgv1.MachineConfig
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("MachineConfig %s exists and was not created by oc-kubens for this purpose", e.Existing.Name)
}

// ZTPError: enable would add kubens.service to pools that already run
// kubelet and CRI-O in the ZTP container-mount-namespace. Two mechanisms
// each start their own namespace; whichever kubelet and CRI-O each join
// last decides, so they can end up apart (Split), where pods lose their
// secret and configmap mounts.
type ZTPError struct {
	Pools  []string
	Legacy map[string][]LegacyConfig
}

func (e *ZTPError) Error() string {
	return fmt.Sprintf("pool %s already encapsulates through the ZTP container-mount-namespace.service; adding %s would run two mechanisms", strings.Join(e.Pools, ", "), manifests.UnitName)
}

// NotReachingError: after the change, Unit would still not be in the
// wanted state on these pools (a config later in the merge order decides
// it).
type NotReachingError struct {
	Unit  string
	Pools []string
}

func (e *NotReachingError) Error() string {
	return fmt.Sprintf("%s would still not be enabled on pool %s after this change", e.Unit, strings.Join(e.Pools, ", "))
}
