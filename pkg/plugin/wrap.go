package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

// WrapOptions holds the flags and state of `oc kubens wrap` and
// `oc kubens unwrap`: the two share everything but the direction.
type WrapOptions struct {
	changeOptions
	clusterOptions

	// Units are the systemd services to (un)wrap.
	Units []string
	// ExecStart holds UNIT=CMD: the command to wrap, instead of reading it
	// from the nodes (for units not installed yet).
	ExecStart []string
	// Pool picks the role from a pool's machineConfigSelector.
	Pool            string
	Image           string
	ImagePullPolicy string
	Parallelism     int
	StuckAfter      time.Duration

	unwrap    bool
	execStart map[string]string
}

// NewCmdWrap returns the wrap command.
func NewCmdWrap(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &WrapOptions{clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "wrap UNIT... [--role ROLE | --pool NAME] [--exec-start UNIT=CMD]",
		Short: "Run host services inside the Kubernetes mount namespace, cluster-wide (reboots nodes)",
		Long: `Make host services that must see the mounts of kubelet, CRI-O and containers
(monitoring agents, backup and storage helpers) run inside the Kubernetes
mount namespace, on every node of the chosen pools.

For each unit, wrap reads its effective ExecStart on the nodes of each pool it
reaches (one short-lived debug pod per node, "systemctl cat" on the host,
drop-in resets and multi-line commands followed as systemd does), and refuses
a unit that is missing, already wrapped, unreadable, or whose ExecStart the
nodes of a pool disagree on. --exec-start gives the command instead, for
units not installed yet.

It then writes one MachineConfig per role, 99-kubens-wrap-<role>, with a
drop-in 99-kubens-wrapper.conf per unit:

  [Unit]
  After=kubens.service
  [Service]
  ExecStart=
  ExecStart=/usr/bin/kubensenter <the original command>

kubensenter joins the namespace kubens.service pinned, or runs the command as
it is where encapsulation is off. Wrapping more units later updates the same
object; running wrap again changes nothing. The plan is shown first; the
Machine Config Operator then drains and REBOOTS every node of each affected
pool, maxUnavailable at a time. Without a terminal, --yes is required.
--dry-run still reads the units on the nodes (short-lived pods), unless
--exec-start gives every command.`,
		Example: `  # Wrap a monitoring agent on the master and worker pools (reads it from the nodes)
  oc kubens wrap node-agent.service

  # Only the worker pool (and custom pools selecting the worker role), and wait
  oc kubens wrap node-agent.service --role worker --yes --wait

  # A unit not installed yet: give its command
  oc kubens wrap backup.service --role worker --exec-start 'backup.service=/usr/local/bin/backup --daemon'

  # See what would change without changing anything
  oc kubens wrap node-agent.service --dry-run`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringArrayVar(&o.Roles, "role", nil,
		"Pool role whose wrap MachineConfig gets the units; repeat for several. Default: master and worker. A custom pool selecting the role is included.")
	cmd.Flags().StringArrayVar(&o.ExecStart, "exec-start", nil,
		"UNIT=CMD: wrap CMD as the unit's ExecStart instead of reading it from the nodes; repeat for several units.")
	o.addCommonFlags(cmd)
	addDebugPodFlags(cmd, &o.Image, &o.ImagePullPolicy)
	cmd.Flags().IntVar(&o.Parallelism, "parallelism", 100, "How many nodes to read at once.")
	return cmd
}

// NewCmdUnwrap returns the unwrap command.
func NewCmdUnwrap(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &WrapOptions{clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}, unwrap: true}
	cmd := &cobra.Command{
		Use:   "unwrap UNIT... [--role ROLE | --pool NAME]",
		Short: "Undo wrap: run the services in the host mount namespace again (reboots nodes)",
		Long: `Remove units from the wrap MachineConfigs (99-kubens-wrap-<role>) that wrap
created, and delete a wrap MachineConfig once it holds no unit. The plan is
shown first; the Machine Config Operator then drains and REBOOTS every node of
each affected pool. Drop-ins that wrap did not create are never touched.
Without a terminal, --yes is required.`,
		Example: `  # Unwrap a unit on every pool it is wrapped on
  oc kubens unwrap node-agent.service

  # Only on the worker role's config, and wait for the rollout
  oc kubens unwrap node-agent.service --role worker --yes --wait`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringArrayVar(&o.Roles, "role", nil,
		"Only change the wrap MachineConfig of this role; repeat for several. Default: every role the units are wrapped for.")
	o.addCommonFlags(cmd)
	return cmd
}

func (o *WrapOptions) addCommonFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Pool, "pool", "", "Use the role of this MachineConfigPool (its machineConfigSelector), instead of --role.")
	o.changeOptions.addFlags(cmd)
	addStuckAfterFlag(cmd, &o.StuckAfter, "With --wait: ")
}

// Complete reads the units and builds the clients.
func (o *WrapOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Units = args
	var err error
	if o.execStart, err = parseWrapFlags(o.ExecStart); err != nil {
		return fmt.Errorf("--exec-start %w", err)
	}
	for _, unit := range slices.Sorted(maps.Keys(o.execStart)) {
		if !slices.Contains(o.Units, unit) {
			o.Units = append(o.Units, unit)
		}
	}
	return o.completeClients(cmd)
}

// Validate checks units, commands and flags before anything is read.
func (o *WrapOptions) Validate() error {
	verb := "wrap"
	if o.unwrap {
		verb = "unwrap"
	}
	if len(o.Units) == 0 {
		return fmt.Errorf("name the units to %s, e.g. %s node-agent.service", verb, verb)
	}
	seen := map[string]bool{}
	for _, u := range o.Units {
		if err := wrap.ValidateUnitName(u); err != nil {
			return err
		}
		if seen[u] {
			return fmt.Errorf("%s is named twice", u)
		}
		seen[u] = true
		if u == manifests.UnitName || u == "kubelet.service" || u == "crio.service" || u == manifests.ZTPUnitName {
			return fmt.Errorf("%s is part of the encapsulation itself and cannot be wrapped: it joins the namespace through kubens.service", u)
		}
	}
	if o.Pool != "" && len(o.Roles) > 0 {
		return errors.New("use either --role or --pool, not both")
	}
	if o.Parallelism < 0 {
		return fmt.Errorf("--parallelism must be at least 1, got %d", o.Parallelism)
	}
	if err := checkPullPolicy(o.ImagePullPolicy); err != nil {
		return err
	}
	if err := validateStuckAfter(o.StuckAfter); err != nil {
		return err
	}
	return o.changeOptions.validate()
}

// wrapTarget is one wrap MachineConfig of the plan: what it holds now and
// what it will hold.
type wrapTarget struct {
	Role string
	Have *mcfgv1.MachineConfig // nil when it does not exist
	// Before and After map unit -> drop-in text.
	Before, After map[string]string
	Added         []string // units newly wrapped
	Changed       []string // units whose command changes (--exec-start)
	Removed       []string // units unwrapped
}

// Run plans, reads the nodes (wrap), confirms, applies and optionally waits.
func (o *WrapOptions) Run(ctx context.Context) error {
	c := o.clients
	if err := c.requireMachineConfigAPI(); err != nil {
		return err
	}
	snap, err := c.snapshot(ctx, true)
	if err != nil {
		return err
	}
	roles, err := o.roles(snap)
	if err != nil {
		return err
	}
	existing := mcsByName(snap.MachineConfigs)
	var targets []*wrapTarget
	for _, role := range roles {
		t := &wrapTarget{Role: role, Have: existing[manifests.WrapName(role)], Before: map[string]string{}}
		if t.Have != nil {
			if !manifests.IsManagedWrap(t.Have) {
				return fmt.Errorf("MachineConfig %s exists and was not created by this plugin's wrap (it holds %s); it is never changed, taken over or deleted. Move it out of the way yourself, or wrap for another --role",
					t.Have.Name, describeForeign(t.Have))
			}
			cfg, err := manifests.ParseConfig(t.Have.Spec.Config.Raw)
			if err != nil {
				return fmt.Errorf("reading MachineConfig %s: %w", t.Have.Name, err)
			}
			t.Before = manifests.WrapDropIns(cfg)
		}
		t.After = maps.Clone(t.Before)
		targets = append(targets, t)
	}

	if o.unwrap {
		if err := o.planUnwrap(targets); err != nil {
			return err
		}
	} else if err := o.planWrap(ctx, snap, targets); err != nil {
		return err
	}

	plan, desired, err := wrapPlan(snap, targets, o.unwrap)
	if err != nil {
		return err
	}
	plan.print(o.Out)
	if !plan.sendsAnything() {
		fmt.Fprintln(o.Out, "Nothing to change: the units are already as asked (no new rendered config, no reboot).")
		return o.maybeWait(ctx, wrapExpectations(snap, plan))
	}
	if o.DryRun == dryRunClient {
		fmt.Fprintln(o.Out, "Dry run (client): nothing was sent to the cluster.")
		return nil
	}
	if o.DryRun == dryRunNone {
		verbs := []string{"patch"}
		for _, ch := range plan.Changes {
			switch ch.Action {
			case actionCreate:
				verbs = []string{"create", "patch"}
			case actionDelete:
				verbs = append(verbs, "delete")
			}
		}
		if err := c.checkAccess(ctx, verbs...); err != nil {
			return err
		}
		if err := confirmPlan(o.IOStreams, o.stdinTTY, o.Yes, plan); err != nil {
			return err
		}
	}
	for i, ch := range plan.Changes {
		switch ch.Action {
		case actionUnchanged:
			fmt.Fprintf(o.Out, "machineconfig.%s/%s unchanged\n", mcfgv1.GroupName, ch.Name)
		case actionDelete:
			if err := deleteMachineConfig(ctx, c, o.DryRun, o.Out, targets[i].Have); err != nil {
				return err
			}
		default:
			if err := applyMachineConfig(ctx, c, o.DryRun, o.Out, desired[i], targets[i].Have); err != nil {
				return err
			}
		}
	}
	if o.DryRun == dryRunServer {
		fmt.Fprintln(o.Out, "Dry run (server): the API server accepted the change; nothing was persisted.")
		return nil
	}
	return o.maybeWait(ctx, wrapExpectations(snap, plan))
}

func (o *WrapOptions) maybeWait(ctx context.Context, exps []mcp.Expectation) error {
	if !o.Wait || o.DryRun != dryRunNone {
		return nil
	}
	return runWait(ctx, o.clients, exps, waitLimits{Timeout: o.Timeout, StuckAfter: o.StuckAfter, Display: o.displayName}, o.Out, o.stdoutTTY)
}

// roles are the roles whose wrap config the command changes: --role,
// the role of --pool, for wrap master and worker by default, for unwrap
// every role that has a wrap config.
func (o *WrapOptions) roles(snap mcp.Snapshot) ([]string, error) {
	var roles []string
	switch {
	case o.Pool != "":
		var pool *mcfgv1.MachineConfigPool
		for i := range snap.Pools {
			if snap.Pools[i].Name == o.Pool {
				pool = &snap.Pools[i]
			}
		}
		if pool == nil {
			return nil, fmt.Errorf("MachineConfigPool %q not found; pools: %s", o.Pool, strings.Join(mcp.PoolNames(snap.Pools), ", "))
		}
		r, err := poolRole(pool)
		if err != nil {
			return nil, err
		}
		roles = []string{r}
	case len(o.Roles) > 0:
		roles = append(roles, o.Roles...)
	case o.unwrap:
		for i := range snap.MachineConfigs {
			if mc := &snap.MachineConfigs[i]; manifests.IsManagedWrap(mc) {
				roles = append(roles, mc.Labels[manifests.RoleLabel])
			}
		}
		if len(roles) == 0 {
			return nil, errors.New("nothing to unwrap: no wrap MachineConfig exists")
		}
	default:
		roles = []string{"master", "worker"}
	}
	sort.Strings(roles)
	return slices.Compact(roles), nil
}

// poolRole is the role a pool selects its MachineConfigs by: the only one,
// or the pool's own name among several (a custom pool selecting
// role in (worker, infra) gets infra).
func poolRole(p *mcfgv1.MachineConfigPool) (string, error) {
	sel := p.Spec.MachineConfigSelector
	var roles []string
	if sel != nil {
		if r, ok := sel.MatchLabels[manifests.RoleLabel]; ok {
			roles = append(roles, r)
		}
		for _, e := range sel.MatchExpressions {
			if e.Key == manifests.RoleLabel && e.Operator == metav1.LabelSelectorOpIn {
				roles = append(roles, e.Values...)
			}
		}
	}
	switch {
	case len(roles) == 1:
		return roles[0], nil
	case slices.Contains(roles, p.Name):
		return p.Name, nil
	case len(roles) == 0:
		return "", fmt.Errorf("pool %s does not select MachineConfigs by %s; name the role with --role", p.Name, manifests.RoleLabel)
	}
	return "", fmt.Errorf("pool %s selects several roles (%s); name one with --role", p.Name, strings.Join(roles, ", "))
}

// planUnwrap removes the units from each target; a unit wrapped nowhere
// among them is an error.
func (o *WrapOptions) planUnwrap(targets []*wrapTarget) error {
	for _, u := range o.Units {
		found := false
		for _, t := range targets {
			if _, ok := t.After[u]; ok {
				delete(t.After, u)
				t.Removed = append(t.Removed, u)
				found = true
			}
		}
		if !found {
			roles := make([]string, 0, len(targets))
			for _, t := range targets {
				roles = append(roles, t.Role)
			}
			return fmt.Errorf("%s is not wrapped by a wrap MachineConfig of role %s; `oc kubens status` lists the wrapped units per pool", u, strings.Join(roles, ", "))
		}
	}
	return nil
}

// planWrap decides each target's units: a unit already in the target stays
// as it is (unless --exec-start changes its command), the others get the
// command --exec-start gives or the one read from the nodes the target
// reaches.
func (o *WrapOptions) planWrap(ctx context.Context, snap mcp.Snapshot, targets []*wrapTarget) error {
	// Which nodes each target's config reaches.
	nodesOf := map[string][]string{} // role -> node names
	poolOf := map[string]string{}    // node -> pool
	for i := range snap.Nodes {
		if p, err := mcp.PoolForNode(snap.Pools, &snap.Nodes[i]); err == nil && p != "" {
			poolOf[snap.Nodes[i].Name] = p
		}
	}
	toRead := map[string]bool{}
	for _, t := range targets {
		probe := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: manifests.WrapName(t.Role), Labels: map[string]string{manifests.RoleLabel: t.Role}}}
		reach, err := mcp.Reach(snap.Pools, []*mcfgv1.MachineConfig{probe})
		if err != nil {
			return err
		}
		for _, n := range slices.Sorted(maps.Keys(poolOf)) {
			if _, ok := reach[poolOf[n]]; ok {
				nodesOf[t.Role] = append(nodesOf[t.Role], n)
			}
		}
		for _, u := range o.Units {
			if _, given := o.execStart[u]; given {
				continue
			}
			if _, ok := t.Before[u]; !ok {
				toRead[u] = true
			}
		}
	}
	reads := map[string]wrap.NodeUnits{}
	if len(toRead) > 0 {
		var err error
		if reads, err = o.readUnits(ctx, snap, nodesOf, slices.Sorted(maps.Keys(toRead))); err != nil {
			return err
		}
	}
	var problems []string
	for _, t := range targets {
		for _, u := range o.Units {
			var cmds []string
			if c, given := o.execStart[u]; given {
				cmds = []string{c}
			} else if _, ok := t.Before[u]; ok {
				continue // already wrapped by this config: unchanged
			} else {
				var probs []string
				cmds, probs = commandsFromNodes(u, t.Role, nodesOf[t.Role], poolOf, reads)
				if len(probs) > 0 {
					problems = append(problems, probs...)
					continue
				}
			}
			text, err := wrap.DropIn(u, cmds)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s (role %s): %v", u, t.Role, err))
				continue
			}
			old, had := t.Before[u]
			switch {
			case !had:
				t.Added = append(t.Added, u)
			case old != text:
				t.Changed = append(t.Changed, u)
			}
			t.After[u] = text
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(o.ErrOut, "Cannot wrap:")
		for _, p := range problems {
			fmt.Fprintln(o.ErrOut, "  "+p)
		}
		return fmt.Errorf("refusing to wrap: %s above; nothing was changed", plural(int32(len(problems)), "problem", "problems"))
	}
	return nil
}

// readUnits reads the units on every node the targets reach, with the
// per-node pod engine.
func (o *WrapOptions) readUnits(ctx context.Context, snap mcp.Snapshot, nodesOf map[string][]string, units []string) (map[string]wrap.NodeUnits, error) {
	want := map[string]bool{}
	for _, ns := range nodesOf {
		for _, n := range ns {
			want[n] = true
		}
	}
	var nodes = snap.Nodes[:0:0]
	for i := range snap.Nodes {
		if want[snap.Nodes[i].Name] {
			nodes = append(nodes, snap.Nodes[i])
		}
	}
	if len(nodes) == 0 {
		return map[string]wrap.NodeUnits{}, nil
	}
	image, err := resolveImage(ctx, o.clients, o.Image)
	if err != nil {
		return nil, err
	}
	flags := podRunFlags{ImagePullPolicy: o.ImagePullPolicy, Parallelism: o.Parallelism}
	e := flags.engine(o.clients, image, o.ErrOut)
	fmt.Fprintf(o.ErrOut, "Reading %s on %s\n", strings.Join(units, ", "), plural(int32(len(nodes)), "node", "nodes"))
	probe := wrap.ReadProbe{Units: units}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	out, err := verify.RunProbe[wrap.NodeUnits](ctx, e, nodes, verify.RunOptions{Purpose: wrap.RunPurpose}, probe)
	if err != nil {
		return nil, err
	}
	if out.CleanupErr == nil && out.Namespace != "" {
		fmt.Fprintf(o.ErrOut, "Deleted namespace %s\n", out.Namespace)
	}
	res := make(map[string]wrap.NodeUnits, len(out.Results))
	for _, r := range out.Results {
		res[r.Node] = r
	}
	return res, nil
}

// commandsFromNodes decides one unit's commands for the wrap config of a
// role from what the nodes it reaches said, or returns why it cannot: every
// node must have been read, have the unit, not have it wrapped already, and
// agree on its ExecStart.
func commandsFromNodes(unit, role string, nodes []string, poolOf map[string]string, reads map[string]wrap.NodeUnits) ([]string, []string) {
	if len(nodes) == 0 {
		return nil, []string{fmt.Sprintf("%s (role %s): no node to read it from (the pools of role %s have no nodes); give its command with --exec-start %s=CMD", unit, role, role, unit)}
	}
	var problems, unread, missing []string
	byCmd := map[string][]string{} // joined commands -> nodes
	cmdsOf := map[string][]string{}
	for _, n := range nodes {
		r, ok := reads[n]
		if !ok || r.Reason != "" {
			why := "not read"
			if ok {
				why = r.Reason + ": " + r.Message
			}
			unread = append(unread, fmt.Sprintf("%s (%s)", n, why))
			continue
		}
		u := r.Units[unit]
		switch {
		case u.Status == wrap.StatusMissing:
			missing = append(missing, n)
		case u.Status != wrap.StatusOK:
			unread = append(unread, fmt.Sprintf("%s (%s)", n, u.Status))
		case u.Err != nil:
			problems = append(problems, fmt.Sprintf("%s on node %s: cannot read its ExecStart: %v; give it with --exec-start %s=CMD", unit, n, u.Err, unit))
		case u.Unit.WrappedBy != "":
			problems = append(problems, fmt.Sprintf("%s on node %s is already wrapped (%s); unwrap it there first", unit, n, u.Unit.WrappedBy))
		case !u.Unit.RunsAsRoot():
			problems = append(problems, fmt.Sprintf("%s on node %s runs as User=%s: kubensenter needs root to join the namespace, so the wrapped service would fail to start", unit, n, u.Unit.User))
		default:
			key := strings.Join(u.Unit.ExecStart, "\n")
			byCmd[key] = append(byCmd[key], n)
			cmdsOf[key] = u.Unit.ExecStart
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%s is not installed on %s: install it first (a MachineConfig), or give its command with --exec-start %s=CMD", unit, nodeList(missing, poolOf), unit))
	}
	if len(unread) > 0 {
		problems = append(problems, fmt.Sprintf("%s could not be read on %s; retry, or give its command with --exec-start %s=CMD", unit, strings.Join(unread, ", "), unit))
	}
	if len(byCmd) > 1 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(byCmd)) {
			parts = append(parts, fmt.Sprintf("%s: %q", nodeList(byCmd[k], poolOf), strings.ReplaceAll(k, "\n", " ; ")))
		}
		problems = append(problems, fmt.Sprintf("the nodes of role %s disagree on %s's ExecStart: %s; make them agree, or give it with --exec-start %s=CMD", role, unit, strings.Join(parts, "; "), unit))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	for k := range byCmd {
		return cmdsOf[k], nil
	}
	return nil, []string{fmt.Sprintf("%s (role %s): no node could be read", unit, role)}
}

// nodeList names nodes with their pool: "worker-0, worker-1 (pool worker)".
func nodeList(nodes []string, poolOf map[string]string) string {
	byPool := map[string][]string{}
	for _, n := range nodes {
		byPool[poolOf[n]] = append(byPool[poolOf[n]], n)
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(byPool)) {
		parts = append(parts, fmt.Sprintf("%s (pool %s)", strings.Join(byPool[p], ", "), p))
	}
	return strings.Join(parts, "; ")
}

// wrapPlan turns the targets into the plan enable and disable print, with
// one change per target (in the targets' order) and the forecast of every
// pool a changed config reaches. desired[i] is the object to apply for
// targets[i] (nil for a delete or nothing).
func wrapPlan(snap mcp.Snapshot, targets []*wrapTarget, unwrap bool) (*rolloutPlan, []*mcfgv1.MachineConfig, error) {
	verb := "wrap"
	if unwrap {
		verb = "unwrap"
	}
	plan := &rolloutPlan{Verb: verb, SingleNode: singleNode(snap.Pools)}
	desired := make([]*mcfgv1.MachineConfig, len(targets))
	reach := map[string][]string{}
	replaced := map[string]*mcfgv1.MachineConfig{}
	gone := map[string]bool{}
	for i, t := range targets {
		name := manifests.WrapName(t.Role)
		ch := mcChange{Name: name}
		switch {
		case len(t.After) == 0 && t.Have == nil:
			ch.Action = actionUnchanged
		case len(t.After) == 0:
			ch.Action = actionDelete
			gone[name] = true
		default:
			mc, err := manifests.RenderWrap(t.Role, t.After)
			if err != nil {
				return nil, nil, err
			}
			desired[i] = mc
			// Run refused a same-name object that is not our wrap config.
			ch.Action = compareMC(t.Have, mc)
			replaced[name] = mc
		}
		plan.Changes = append(plan.Changes, ch)
		if ch.Action == actionUnchanged {
			continue
		}
		obj := desired[i]
		if obj == nil {
			obj = t.Have
		}
		r, err := mcp.Reach(snap.Pools, []*mcfgv1.MachineConfig{obj})
		if err != nil {
			return nil, nil, err
		}
		for p, mcs := range r {
			reach[p] = append(reach[p], mcs...)
		}
		plan.Details = append(plan.Details, wrapDetails(t)...)
	}
	after := make([]mcfgv1.MachineConfig, 0, len(snap.MachineConfigs)+len(replaced))
	for _, mc := range snap.MachineConfigs {
		if _, ok := replaced[mc.Name]; !ok && !gone[mc.Name] {
			after = append(after, mc)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(replaced)) {
		after = append(after, *replaced[n])
	}
	plan.Pools = newPoolPlans(snap.Pools, reach, snap.MachineConfigs, after)
	if !unwrap {
		for _, pl := range plan.Pools {
			switch {
			case pl.Outcome.After.ZTP:
				plan.Notes = append(plan.Notes, fmt.Sprintf("Note: pool %s encapsulates through the ZTP %s; kubensenter looks for the namespace kubens.service pins, so the wrapped units stay in the host mount namespace there.", pl.Name, manifests.ZTPUnitName))
			case pl.Outcome.After.Kubens != mcp.UnitEnabled:
				plan.Notes = append(plan.Notes, fmt.Sprintf("Note: %s is not enabled on pool %s: kubensenter runs the wrapped units in the host mount namespace until encapsulation is enabled there.", manifests.UnitName, pl.Name))
			}
		}
	}
	return plan, desired, nil
}

// wrapDetails are the plan's lines about one target's units: the wrapped
// ExecStart lines as the drop-in has them, or the command a unit goes back
// to.
func wrapDetails(t *wrapTarget) []string {
	var out []string
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

// wrapExpectations are what the wait checks: our configs in (or out of)
// each reached pool's rendered source, and exactly the wrapper drop-ins the
// merge gives in its rendered config.
func wrapExpectations(snap mcp.Snapshot, plan *rolloutPlan) []mcp.Expectation {
	exps := make([]mcp.Expectation, 0, len(plan.Pools))
	deleted := map[string]bool{}
	for _, ch := range plan.Changes {
		if ch.Action == actionDelete {
			deleted[ch.Name] = true
		}
	}
	for _, pl := range plan.Pools {
		e := mcp.Expectation{Pool: pl.Name}
		for _, m := range pl.MCs {
			if deleted[m] {
				e.Absent = append(e.Absent, m)
			} else {
				e.Present = append(e.Present, m)
			}
		}
		if pl.Outcome.After.Err == nil {
			e.Wrapped = manifests.WrapDropIns(pl.Outcome.After.Merged)
		}
		exps = append(exps, e)
	}
	return exps
}

// deleteMachineConfig deletes the object we looked at (UID precondition).
func deleteMachineConfig(ctx context.Context, c *clusterClients, dryRun string, out io.Writer, mc *mcfgv1.MachineConfig) error {
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &mc.UID}}
	suffix := "deleted"
	if dryRun == dryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
		suffix = "deleted (server dry run)"
	}
	err := c.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name, opts)
	switch {
	case apierrors.IsNotFound(err):
		suffix = "already gone"
	case apierrors.IsForbidden(err):
		return fmt.Errorf("you are not allowed to delete MachineConfig %s: %s. Log in as a cluster administrator, or ask one to run this", mc.Name, apiMessage(err))
	case err != nil:
		return fmt.Errorf("deleting MachineConfig %s: %w", mc.Name, err)
	}
	fmt.Fprintf(out, "machineconfig.%s/%s %s\n", mcfgv1.GroupName, mc.Name, suffix)
	return nil
}
