package plugin

import (
	"fmt"
	"io"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// Actions on one MachineConfig in a plan.
const (
	actionCreate    = "create"
	actionUpdate    = "update"
	actionAdopt     = "adopt" // same config, only our label is added: no reboot
	actionUnchanged = "unchanged"
	actionDelete    = "delete"
)

type mcChange struct {
	Name   string
	Action string
}

type poolPlan struct {
	Name           string
	Machines       int32
	MaxUnavailable int
	MCs            []string // our MCs this pool selects
	Paused         bool
}

// rolloutPlan is what enable and disable print before asking.
type rolloutPlan struct {
	Verb    string // "enable" or "disable"
	Changes []mcChange
	Pools   []poolPlan
	// Others maps a pool to the MCs we do not manage that enable
	// kubens.service on it; ZTP lists pools encapsulated by the ZTP unit.
	Others     map[string][]string
	ZTP        []string
	SingleNode bool
}

// changesConfig tells whether the plan changes any rendered config, i.e.
// whether nodes will reboot.
func (p *rolloutPlan) changesConfig() bool {
	for _, c := range p.Changes {
		if c.Action == actionCreate || c.Action == actionUpdate || c.Action == actionDelete {
			return true
		}
	}
	return false
}

// affectedPools returns the pools selected by MCs that change config.
func (p *rolloutPlan) affectedPools() []poolPlan {
	changing := map[string]bool{}
	for _, c := range p.Changes {
		if c.Action == actionCreate || c.Action == actionUpdate || c.Action == actionDelete {
			changing[c.Name] = true
		}
	}
	var out []poolPlan
	for _, pl := range p.Pools {
		for _, m := range pl.MCs {
			if changing[m] {
				out = append(out, pl)
				break
			}
		}
	}
	return out
}

// newPoolPlans builds the per-pool lines for the MCs in reach (pool -> MCs).
func newPoolPlans(pools []mcfgv1.MachineConfigPool, reach map[string][]string) []poolPlan {
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
		})
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
// and that are not managed by oc-kubens; ztpPools lists pools using the ZTP
// container-mount-namespace.service.
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
			if !manifests.IsManaged(byName[n]) {
				others[p.Name] = append(others[p.Name], n)
			}
		}
		if len(mcp.EnablingMCs(p, mcs, manifests.ZTPUnitName)) > 0 {
			ztp = append(ztp, p.Name)
		}
	}
	sort.Strings(ztp)
	return others, ztp
}

func plural(n int32, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// print writes the plan. Warnings are upper-case so they stand out in logs.
func (p *rolloutPlan) print(w io.Writer) {
	fmt.Fprintf(w, "Plan to %s mount namespace encapsulation (%s):\n", p.Verb, manifests.UnitName)
	fmt.Fprintln(w, "  MachineConfigs:")
	for _, c := range p.Changes {
		note := ""
		switch c.Action {
		case actionAdopt:
			note = "  (same config; adds the " + manifests.ManagedByLabel + " label so disable can remove it)"
		case actionUnchanged:
			note = "  (already as wanted)"
		}
		fmt.Fprintf(w, "    %-9s %s%s\n", c.Action, c.Name, note)
	}
	affected := p.affectedPools()
	if len(p.Pools) > 0 {
		fmt.Fprintln(w, "  Pools:")
		for _, pl := range p.Pools {
			extra := ""
			if pl.Paused {
				extra = ", PAUSED: nothing rolls out until it is unpaused"
			}
			fmt.Fprintf(w, "    %-10s %s, maxUnavailable %d, via %s%s\n", pl.Name, plural(pl.Machines, "node", "nodes"),
				pl.MaxUnavailable, strings.Join(pl.MCs, ", "), extra)
		}
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
	if !p.changesConfig() {
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
