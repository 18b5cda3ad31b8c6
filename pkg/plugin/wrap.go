package plugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/change"
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
	o := &WrapOptions{changeOptions: newChangeOptions(), clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
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
  oc kubens wrap node-agent.service --dry-run=client`,
		Args: cobra.ArbitraryArgs,
		RunE: runCommand(o),
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
	o := &WrapOptions{changeOptions: newChangeOptions(), clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}, unwrap: true}
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
		RunE: runCommand(o),
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
	if err := o.changeOptions.complete(cmd); err != nil {
		return err
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
	targets, err := change.WrapTargets(snap, roles)
	if err != nil {
		var foreign *change.ForeignError
		if errors.As(err, &foreign) {
			return fmt.Errorf("MachineConfig %s exists and was not created by this plugin's wrap (it holds %s); it is never changed, taken over or deleted. Move it out of the way yourself, or wrap for another --role",
				foreign.Existing.Name, describeForeign(foreign.Existing))
		}
		return err
	}
	if o.unwrap {
		if err := change.Unwrap(targets, o.Units); err != nil {
			var nw *change.NotWrappedError
			if errors.As(err, &nw) {
				return fmt.Errorf("%s; `%s status` lists the wrapped units per pool", err, o.displayName)
			}
			return err
		}
	} else {
		problems, err := change.Wrap(ctx, snap, targets, change.WrapRequest{Units: o.Units, ExecStart: o.execStart, Read: o.readUnits})
		if err != nil {
			return phraseUnselected(err)
		}
		if len(problems) > 0 {
			fmt.Fprintln(o.ErrOut, "Cannot wrap:")
			for _, p := range problems {
				fmt.Fprintln(o.ErrOut, "  "+phraseUnitProblem(p))
			}
			return fmt.Errorf("refusing to wrap: %s above; nothing was changed", plural(int32(len(problems)), "problem", "problems"))
		}
	}
	plan, err := change.PlanWrap(snap, targets, o.unwrap)
	if err != nil {
		return phraseUnselected(err)
	}
	printPlan(o.humanOut(o.IOStreams), plan)
	return o.carryOut(ctx, plan, o.changeOptions, o.StuckAfter)
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

// readUnits reads the units on the nodes with the per-node pod engine.
func (o *WrapOptions) readUnits(ctx context.Context, nodes []corev1.Node, units []string) (map[string]wrap.NodeUnits, error) {
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

// phraseUnitProblem says why a unit cannot be wrapped, and what to do.
func phraseUnitProblem(p change.UnitProblem) string {
	u := p.Unit
	give := fmt.Sprintf("give its command with --exec-start %s=CMD", u)
	switch p.Kind {
	case change.NoNodes:
		return fmt.Sprintf("%s (role %s): no node to read it from (the pools of role %s have no nodes); %s", u, p.Role, p.Role, give)
	case change.Unreadable:
		return fmt.Sprintf("%s on node %s: cannot read its ExecStart: %s; give it with --exec-start %s=CMD", u, p.Nodes[0], p.Detail, u)
	case change.AlreadyWrapped:
		return fmt.Sprintf("%s on node %s is already wrapped (%s); unwrap it there first", u, p.Nodes[0], p.Detail)
	case change.NotRoot:
		return fmt.Sprintf("%s on node %s runs as User=%s: kubensenter needs root to join the namespace, so the wrapped service would fail to start", u, p.Nodes[0], p.Detail)
	case change.Missing:
		return fmt.Sprintf("%s is not installed on %s: install it first (a MachineConfig), or %s", u, nodeList(p.Nodes, p.PoolOf), give)
	case change.NotRead:
		return fmt.Sprintf("%s could not be read on %s; retry, or %s", u, strings.Join(p.Nodes, ", "), give)
	case change.Disagree:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(p.Commands)) {
			parts = append(parts, fmt.Sprintf("%s: %q", nodeList(p.Commands[k], p.PoolOf), strings.ReplaceAll(k, "\n", " ; ")))
		}
		return fmt.Sprintf("the nodes of role %s disagree on %s's ExecStart: %s; make them agree, or give it with --exec-start %s=CMD", p.Role, u, strings.Join(parts, "; "), u)
	case change.BadCommand:
		return fmt.Sprintf("%s (role %s): %s", u, p.Role, p.Detail)
	}
	return fmt.Sprintf("%s (role %s): no node could be read", u, p.Role)
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
