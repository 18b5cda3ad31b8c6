package plugin

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// Actions on one MachineConfig in a plan.
const (
	actionCreate    = "create"
	actionUpdate    = "update"
	actionUnchanged = "unchanged"
	actionDelete    = "delete"
	// actionForeign: an object of the same name that oc-kubens did not
	// create (no managed-by label), even one with the very config we would
	// write (the seed procedure's). It is someone's production data: never
	// changed, labelled, taken over or deleted.
	actionForeign = "not-ours"
)

type mcChange struct {
	Name   string
	Action string
	// Foreign describes what an object of the same name that we did not
	// create holds beyond ours, for actionForeign.
	Foreign string
}

// applies tells whether the change is sent to the API server.
func (c mcChange) applies() bool {
	return c.Action == actionCreate || c.Action == actionUpdate || c.Action == actionDelete
}

type poolPlan struct {
	Name           string
	Machines       int32
	MaxUnavailable int
	MCs            []string // our MCs this pool selects
	Paused         bool
	// Outcome is the pool's merged config before and after the change.
	Outcome mcp.Outcome
}

// unreachedPool is a pool with machines that the change does not reach.
type unreachedPool struct {
	Name     string
	Machines int32
	Selector string // its machineConfigSelector, to say why
}

// rolloutPlan is what enable and disable print before asking.
type rolloutPlan struct {
	Verb      string // "enable" or "disable"
	Changes   []mcChange
	Pools     []poolPlan
	Unreached []unreachedPool
	// Others maps a pool to the MCs we do not manage that enable
	// kubens.service on it; ZTP lists pools encapsulated by the ZTP unit.
	Others     map[string][]string
	ZTP        []string
	SingleNode bool
	// Details are lines about what the changes do (wrap: the units and
	// their commands), printed under the MachineConfigs; Notes are printed
	// after the pools.
	Details []string
	Notes   []string
}

// title is the plan's first line.
func (p *rolloutPlan) title() string {
	switch p.Verb {
	case "wrap":
		return "Plan to run host services inside the Kubernetes mount namespace (kubensenter drop-ins):"
	case "unwrap":
		return "Plan to run host services in the host mount namespace again (remove kubensenter drop-ins):"
	}
	return fmt.Sprintf("Plan to %s mount namespace encapsulation (%s):", p.Verb, manifests.UnitName)
}

// affectedPools returns the pools whose merged config the change alters:
// those get a new rendered config and reboot.
func (p *rolloutPlan) affectedPools() []poolPlan {
	var out []poolPlan
	for _, pl := range p.Pools {
		if pl.Outcome.Rollout() {
			out = append(out, pl)
		}
	}
	return out
}

// sendsAnything tells whether any change goes to the API server.
func (p *rolloutPlan) sendsAnything() bool {
	for _, c := range p.Changes {
		if c.applies() {
			return true
		}
	}
	return false
}

// notReaching returns the pools the wanted state does not come out of the
// merge for: after enable, pools where kubens.service would still be off
// (or cannot be forecast); after disable, pools where it stays on.
func (p *rolloutPlan) notReaching() []poolPlan {
	var out []poolPlan
	for _, pl := range p.Pools {
		got := pl.Outcome.After.Kubens
		if (p.Verb == "enable" && got != mcp.UnitEnabled) || (p.Verb == "disable" && got == mcp.UnitEnabled) {
			out = append(out, pl)
		}
	}
	return out
}

// newPoolPlans builds the per-pool lines for the MCs in reach (pool -> MCs)
// with each pool's forecast before and after the change.
func newPoolPlans(pools []mcfgv1.MachineConfigPool, reach map[string][]string, before, after []mcfgv1.MachineConfig) []poolPlan {
	var out []poolPlan
	for i := range pools {
		p := &pools[i]
		mcs, ok := reach[p.Name]
		if !ok {
			continue
		}
		out = append(out, poolPlan{
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
func unreachedPools(pools []mcfgv1.MachineConfigPool, reach map[string][]string) []unreachedPool {
	var out []unreachedPool
	for i := range pools {
		p := &pools[i]
		if _, ok := reach[p.Name]; ok || p.Status.MachineCount == 0 {
			continue
		}
		out = append(out, unreachedPool{Name: p.Name, Machines: p.Status.MachineCount, Selector: metav1.FormatLabelSelector(p.Spec.MachineConfigSelector)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
// and that are not managed by oc-kubens; ztpPools lists pools whose merged
// config carries the ZTP container-mount-namespace mechanism (by the unit or
// its drop-ins being there: the unit has no [Install] section, and configs
// since 2023 do not set enabled).
func otherEnablers(pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig) (map[string][]string, []string) {
	others := map[string][]string{}
	var ztp []string
	byName := map[string]*mcfgv1.MachineConfig{}
	for i := range mcs {
		byName[mcs[i].Name] = &mcs[i]
	}
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

// describeForeign says what a same-name MachineConfig that we did not
// create holds beyond kubens.service, so the user sees what is at stake.
func describeForeign(mc *mcfgv1.MachineConfig) string {
	var parts []string
	s := mc.Spec
	if len(s.KernelArguments) > 0 {
		parts = append(parts, "kernelArguments "+strings.Join(s.KernelArguments, " "))
	}
	if len(s.Extensions) > 0 {
		parts = append(parts, "extensions "+strings.Join(s.Extensions, ", "))
	}
	if s.KernelType != "" {
		parts = append(parts, "kernelType "+s.KernelType)
	}
	if s.FIPS {
		parts = append(parts, "fips")
	}
	if s.OSImageURL != "" {
		parts = append(parts, "osImageURL")
	}
	if cfg, err := manifests.ParseConfig(s.Config.Raw); err != nil {
		parts = append(parts, "an Ignition config oc-kubens cannot read")
	} else {
		var units []string
		for _, u := range cfg.Systemd.Units {
			if u.Name != manifests.UnitName {
				units = append(units, u.Name)
			}
		}
		if len(units) > 0 {
			parts = append(parts, "units "+strings.Join(units, ", "))
		}
		if n := len(cfg.Storage.Files); n > 0 {
			parts = append(parts, plural(int32(n), "file", "files"))
		}
		if u := manifests.Unit(cfg, manifests.UnitName); u.Listed {
			switch {
			case u.EnabledOn():
				parts = append(parts, manifests.UnitName+" enabled")
			case u.Enabled == nil && !u.Masked:
				parts = append(parts, manifests.UnitName+" without enabled")
			default:
				parts = append(parts, manifests.UnitName+" disabled")
			}
		}
	}
	if len(parts) == 0 {
		return "other content"
	}
	return strings.Join(parts, "; ")
}

func plural(n int32, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// outcomeNote is the plan's word on one pool: what the merge gives before
// and after, and whether the nodes reboot.
func outcomeNote(o mcp.Outcome) string {
	before, after := o.Before.Kubens, o.After.Kubens
	switch {
	case o.After.Err != nil:
		return "CANNOT FORECAST: " + o.After.Err.Error()
	case !o.Rollout():
		return fmt.Sprintf("%s %s, merged config unchanged: no rollout, no reboot", manifests.UnitName, after)
	case before != after:
		return fmt.Sprintf("%s %s -> %s, new rendered config: nodes REBOOT", manifests.UnitName, before, after)
	}
	return fmt.Sprintf("%s stays %s, but the merged config changes: nodes REBOOT", manifests.UnitName, after)
}

// print writes the plan. Warnings are upper-case so they stand out in logs.
func (p *rolloutPlan) print(w io.Writer) {
	fmt.Fprintln(w, p.title())
	fmt.Fprintln(w, "  MachineConfigs:")
	for _, c := range p.Changes {
		note := ""
		switch c.Action {
		case actionUnchanged:
			note = "  (already as wanted)"
		case actionForeign:
			note = "  (exists and was not created by oc-kubens; holds " + c.Foreign + "; left exactly as it is)"
		}
		fmt.Fprintf(w, "    %-9s %s%s\n", c.Action, c.Name, note)
	}
	if len(p.Details) > 0 {
		fmt.Fprintln(w, "  Units:")
		for _, d := range p.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	if len(p.Pools) > 0 {
		fmt.Fprintln(w, "  Pools:")
		for _, pl := range p.Pools {
			extra := ""
			if pl.Paused {
				extra = ", PAUSED: nothing rolls out until it is unpaused"
			}
			fmt.Fprintf(w, "    %-10s %s, maxUnavailable %d, via %s%s\n", pl.Name, plural(pl.Machines, "node", "nodes"),
				pl.MaxUnavailable, strings.Join(pl.MCs, ", "), extra)
			fmt.Fprintf(w, "               after: %s\n", outcomeNote(pl.Outcome))
		}
	}
	for _, u := range p.Unreached {
		fmt.Fprintf(w, "Note: pool %s (%s) is not changed: it selects MachineConfigs by %q, which no MachineConfig of this plan matches%s.\n",
			u.Name, plural(u.Machines, "node", "nodes"), u.Selector, roleHint(p.Verb, u.Name))
	}
	pools := make([]string, 0, len(p.Others))
	for k := range p.Others {
		pools = append(pools, k)
	}
	sort.Strings(pools)
	for _, pool := range pools {
		if p.Verb == "disable" {
			fmt.Fprintf(w, "WARNING: %s stays enabled on pool %s through %s, which oc-kubens does not manage; delete that yourself to turn it off there.\n",
				manifests.UnitName, pool, strings.Join(p.Others[pool], ", "))
		} else {
			fmt.Fprintf(w, "Note: %s is already enabled on pool %s by %s.\n", manifests.UnitName, pool, strings.Join(p.Others[pool], ", "))
		}
	}
	for _, pool := range p.ZTP {
		fmt.Fprintf(w, "Note: pool %s uses the ZTP %s, which already encapsulates kubelet and CRI-O; kubens.service is not needed there.\n",
			pool, manifests.ZTPUnitName)
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, n)
	}
	if p.Verb == "enable" {
		for _, pl := range p.notReaching() {
			fmt.Fprintf(w, "WARNING: %s would NOT be enabled on pool %s after this change: %s.\n", manifests.UnitName, pl.Name, whyNot(pl.Outcome.After))
		}
	}
	affected := p.affectedPools()
	if len(affected) == 0 {
		if p.sendsAnything() {
			fmt.Fprintln(w, "No pool's merged configuration changes: no new rendered config, no rollout, no reboot.")
		}
		return
	}
	var nodes int32
	names := make([]string, 0, len(affected))
	for _, pl := range affected {
		nodes += pl.Machines
		names = append(names, pl.Name)
	}
	fmt.Fprintf(w, "WARNING: the Machine Config Operator will drain and REBOOT every node of pools %s (%s), maxUnavailable at a time.\n",
		strings.Join(names, ", "), plural(nodes, "node", "nodes"))
	if p.SingleNode {
		fmt.Fprintln(w, "WARNING: this is a SINGLE-NODE cluster: its only node reboots, so every workload and the API server itself are down until it is back (often 10 minutes or more).")
	}
}

// roleHint tells how to reach a pool that enable left out.
func roleHint(verb, pool string) string {
	if verb != "enable" && verb != "wrap" {
		return ""
	}
	return fmt.Sprintf(" (add --role %s to %s it there too)", pool, verb)
}

// whyNot explains a forecast in which kubens.service is not enabled.
func whyNot(f mcp.Forecast) string {
	switch {
	case f.Err != nil:
		return "the Machine Config Operator cannot merge this pool's configs (" + f.Err.Error() + ")"
	case f.KubensSetBy != "":
		return fmt.Sprintf("%s sets it later in the Machine Config Operator's merge order (worker-role configs first, then the pool's own, each by name)", f.KubensSetBy)
	}
	return "no config of this pool enables it"
}

// compareMC decides what applying want over have does.
func compareMC(have, want *mcfgv1.MachineConfig) string {
	if have == nil {
		return actionCreate
	}
	// Ours to change only when we made it for the same purpose: a wrap
	// config is not enable's to take over, nor the other way round.
	if !manifests.IsManaged(have) || have.Labels[manifests.ComponentLabel] != want.Labels[manifests.ComponentLabel] {
		return actionForeign
	}
	if !sameJSON(have.Spec.Config.Raw, want.Spec.Config.Raw) || !emptyOtherSpec(have) {
		return actionUpdate
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return actionUpdate // a role change moves the MC to other pools
		}
	}
	return actionUnchanged
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
