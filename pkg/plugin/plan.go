package plugin

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

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

// planTitle is the plan's first line.
func planTitle(p *change.Plan) string {
	switch p.Verb {
	case change.VerbWrap:
		return "Plan to run host services inside the Kubernetes mount namespace (kubensenter drop-ins):"
	case change.VerbUnwrap:
		return "Plan to run host services in the host mount namespace again (remove kubensenter drop-ins):"
	}
	return fmt.Sprintf("Plan to %s mount namespace encapsulation (%s):", p.Verb, manifests.UnitName)
}

// printPlan writes the plan. Warnings are upper-case so they stand out in
// logs.
func printPlan(w io.Writer, p *change.Plan) {
	fmt.Fprintln(w, planTitle(p))
	fmt.Fprintln(w, "  MachineConfigs:")
	for _, c := range p.Changes {
		note := ""
		switch c.Action {
		case change.Unchanged:
			note = "  (already as wanted)"
		case change.Foreign:
			note = "  (exists and was not created by oc-kubens; holds " + describeForeign(c.Have) + "; left exactly as it is)"
		}
		fmt.Fprintf(w, "    %-9s %s%s\n", c.Action, c.Name, note)
	}
	if details := wrapDetails(p.Wrap); len(details) > 0 {
		fmt.Fprintln(w, "  Units:")
		for _, d := range details {
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
			note := outcomeNote(pl.Outcome)
			if !p.Disruption.Reboots() {
				// The node disruption policy decides, not the new config.
				note = strings.Replace(note, "nodes REBOOT", "nodes NOT rebooted (node disruption policy)", 1)
			}
			fmt.Fprintf(w, "               after: %s\n", note)
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
		if p.Verb == change.VerbDisable {
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
	if p.Verb == change.VerbEnable {
		printLegacyNotes(w, p)
	}
	if p.Verb == change.VerbWrap {
		printWrapNotes(w, p.Pools)
	}
	if p.Verb == change.VerbEnable {
		for _, pl := range p.NotReaching() {
			fmt.Fprintf(w, "WARNING: %s would NOT be enabled on pool %s after this change: %s.\n", manifests.UnitName, pl.Name, whyNot(pl.Outcome.After))
		}
	}
	affected := p.AffectedPools()
	if len(affected) == 0 {
		if p.SendsAnything() {
			fmt.Fprintln(w, "No pool's merged configuration changes: no new rendered config, no rollout, no reboot.")
		}
		return
	}
	var nodes int32
	names := make([]string, 0, len(affected))
	masterAffected := false
	for _, pl := range affected {
		nodes += pl.Machines
		names = append(names, pl.Name)
		masterAffected = masterAffected || pl.Name == "master"
	}
	if p.DisruptionAssessed() {
		printDisruption(w, p.Disruption)
	}
	if !p.Disruption.Reboots() {
		fmt.Fprintf(w, "WARNING: the Machine Config Operator will mark every node of pools %s (%s) updated WITHOUT rebooting it (action %s): "+
			"kubelet and CRI-O stay in the mount namespace they run in now until each node reboots.\n",
			strings.Join(names, ", "), plural(nodes, "node", "nodes"), p.Disruption.Describe())
		return
	}
	fmt.Fprintf(w, "WARNING: the Machine Config Operator will drain and REBOOT every node of pools %s (%s), maxUnavailable at a time.\n",
		strings.Join(names, ", "), plural(nodes, "node", "nodes"))
	switch {
	case p.SingleNode:
		fmt.Fprintln(w, "WARNING: this is a SINGLE-NODE cluster: its only node reboots, so every workload and the API server itself are down until it is back (often 10 minutes or more).")
	case p.Compact && masterAffected:
		fmt.Fprintln(w, "WARNING: this is a COMPACT cluster (every node is a control-plane node): the API server on each node goes away while that node reboots, "+
			"and with maxUnavailable above 1 the whole API can be down at once; commands may lose their connection meanwhile.")
	}
}

// printDisruption says what the node disruption policy
// (MachineConfiguration/cluster, OpenShift 4.17+) does with the change.
func printDisruption(w io.Writer, d change.Disruption) {
	switch {
	case !d.Known:
		fmt.Fprintf(w, "Node disruption: UNKNOWN (%s): the nodes reboot unless a node disruption policy for %s says otherwise; check with: oc get machineconfiguration cluster -o yaml\n",
			d.Unknown, manifests.UnitName)
	case !d.Reboots():
		fmt.Fprintf(w, "WARNING: node disruption policy (MachineConfiguration/cluster): %s -> %s: nodes will NOT reboot, so the change does not take effect until they do.\n",
			strings.Join(d.Matched, ", "), d.Describe())
	case len(d.Matched) > 0:
		fmt.Fprintf(w, "Node disruption: Reboot (node disruption policy: %s -> Reboot)\n", strings.Join(d.Matched, ", "))
	default:
		fmt.Fprintf(w, "Node disruption: Reboot (no node disruption policy covers %s)\n", manifests.UnitName)
	}
}

// printLegacyNotes says, for each pool already in the ZTP mechanism, which
// configs carry it and what else goes when they are removed; for pools the
// change reaches, that two mechanisms risk a Split.
func printLegacyNotes(w io.Writer, p *change.Plan) {
	affected := p.ZTPAffected()
	reached := map[string]bool{}
	for _, pl := range p.Pools {
		reached[pl.Name] = true
	}
	for _, pool := range p.ZTP {
		if !reached[pool] {
			continue // not this change's business
		}
		legacy := p.Legacy[pool]
		names := make([]string, 0, len(legacy))
		var tuning []string
		for _, l := range legacy {
			names = append(names, l.Name)
			if l.Housekeeping {
				tuning = append(tuning, l.Name)
			}
		}
		if slices.Contains(affected, pool) {
			fmt.Fprintf(w, "WARNING: pool %s would run two encapsulation mechanisms (the ZTP %s and %s): each makes its own mount namespace, and if kubelet and CRI-O end up in different ones the node is Split and pods lose their secret and configmap mounts.\n",
				pool, manifests.ZTPUnitName, manifests.UnitName)
		}
		if len(names) > 0 {
			fmt.Fprintf(w, "Note: to move pool %s from ZTP to %s, remove %s first (oc delete machineconfig %s); that alone reboots the pool.\n",
				pool, manifests.UnitName, strings.Join(names, ", "), strings.Join(names, " "))
		}
		if len(tuning) > 0 {
			fmt.Fprintf(w, "WARNING: %s also carries kubelet housekeeping tuning (--housekeeping-interval, OPENSHIFT_MAX_HOUSEKEEPING_INTERVAL_DURATION): removing it drops that tuning too; keep it in a MachineConfig of its own first.\n",
				strings.Join(tuning, ", "))
		}
	}
}

// roleHint tells how to reach a pool that enable left out.
func roleHint(verb, pool string) string {
	if verb != change.VerbEnable && verb != change.VerbWrap {
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

// wrapDetails are the plan's lines about the wrap targets' units: the
// wrapped ExecStart lines as the drop-in has them, or the command a unit
// goes back to.
func wrapDetails(targets []*change.WrapTarget) []string {
	var out []string
	for _, t := range targets {
		if len(t.Added)+len(t.Changed)+len(t.Removed) == 0 {
			continue
		}
		for _, u := range t.Added {
			out = append(out, fmt.Sprintf("%-9s %s on role %s: %s", "wrap", u, t.Role, execLines(t.After[u])))
		}
		for _, u := range t.Changed {
			out = append(out, fmt.Sprintf("%-9s %s on role %s: %s", "rewrap", u, t.Role, execLines(t.After[u])))
		}
		for _, u := range t.Removed {
			shown := "its own ExecStart"
			if cmds, err := wrap.ParseDropIn(t.Before[u]); err == nil {
				shown = "ExecStart=" + strings.Join(cmds, " ; ExecStart=")
			}
			out = append(out, fmt.Sprintf("%-9s %s on role %s: back to %s", "unwrap", u, t.Role, shown))
		}
	}
	return out
}

// execLines are a drop-in's non-empty ExecStart lines, on one line.
func execLines(dropIn string) string {
	var lines []string
	for _, l := range strings.Split(dropIn, "\n") {
		if strings.HasPrefix(l, "ExecStart=") && l != "ExecStart=" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " ; ")
}

// printWrapNotes says where wrapped units will not join the namespace yet.
func printWrapNotes(w io.Writer, pools []change.PoolPlan) {
	for _, pl := range pools {
		switch {
		case pl.Outcome.After.ZTP:
			fmt.Fprintf(w, "Note: pool %s encapsulates through the ZTP %s; kubensenter looks for the namespace kubens.service pins, so the wrapped units stay in the host mount namespace there.\n", pl.Name, manifests.ZTPUnitName)
		case pl.Outcome.After.Kubens != mcp.UnitEnabled:
			fmt.Fprintf(w, "Note: %s is not enabled on pool %s: kubensenter runs the wrapped units in the host mount namespace until encapsulation is enabled there.\n", manifests.UnitName, pl.Name)
		}
	}
}
