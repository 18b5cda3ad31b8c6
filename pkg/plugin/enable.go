package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// FieldManager is the server-side apply field manager of everything
// oc-kubens writes.
const FieldManager = "oc-kubens"

// Dry-run modes, as kubectl spells them.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// EnableOptions holds the flags and state of `oc kubens enable`.
type EnableOptions struct {
	changeOptions
	clusterOptions

	// Force applies even when the merge forecast says kubens.service stays
	// off on a reached pool.
	Force bool
	// NameSuffix names our configs 99-kubens-<role>-<suffix>, for clusters
	// where somebody else's object already has the plain name.
	NameSuffix string
	// StuckAfter: with --wait, see WaitOptions.StuckAfter.
	StuckAfter time.Duration
}

// NewCmdEnable returns the enable command.
func NewCmdEnable(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &EnableOptions{clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "enable",
		Short: "Turn on mount namespace encapsulation (reboots the nodes of each affected pool)",
		Long: `Create the MachineConfigs that enable kubens.service for the given roles
(master and worker by default), after showing which pools they reach, how many
nodes will reboot, and asking for confirmation.

The Machine Config Operator then drains and REBOOTS every node of each affected
pool, maxUnavailable at a time. Custom pools that select the worker role (infra,
...) are affected too. Running enable again changes nothing.

The plan merges every MachineConfig each pool selects the way the operator
does (Ignition 2.2 and 3.x, worker-role configs first, then the pool's own,
each by name) and shows, per pool, whether kubens.service ends up enabled and
whether the rendered config changes at all (no change: no rollout, no reboot).
When a config sorting later keeps the unit off, enable refuses unless --force.

A MachineConfig named like ours that oc-kubens did not create is never changed,
labelled or deleted; if it does not enable the unit itself, enable refuses and
--name-suffix names ours differently.

Applies with server-side apply (field manager oc-kubens) and strict field
validation. Without a terminal, --yes is required.`,
		Example: `  # Show the plan and ask before applying
  oc kubens enable

  # Apply without asking and wait until every node has rebooted into it
  oc kubens enable --yes --wait

  # Only the worker pool (and custom pools selecting the worker role)
  oc kubens enable --role worker

  # Ask the API server to validate the change without persisting it
  oc kubens enable --dry-run=server

  # Somebody else's 99-kubens-worker is in the way: create 99-kubens-worker-site
  oc kubens enable --name-suffix site`,
		Args: noArgs,
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
		"Pool role to enable it for, as for render; repeat for several. Default: master and worker. A custom pool selecting one of the roles is included.")
	cmd.Flags().BoolVar(&o.Force, "force", false,
		"Apply even when the merge forecast says kubens.service stays off on a pool (a later config disables it).")
	cmd.Flags().StringVar(&o.NameSuffix, "name-suffix", "",
		"Name the MachineConfigs 99-kubens-<role>-<suffix>: for clusters where a 99-kubens-<role> that oc-kubens did not create exists.")
	o.changeOptions.addFlags(cmd)
	addStuckAfterFlag(cmd, &o.StuckAfter, "With --wait: ")
	return cmd
}

// Complete builds the clients and looks at the terminal.
func (o *EnableOptions) Complete(cmd *cobra.Command, _ []string) error {
	return o.completeClients(cmd)
}

// Validate checks the flags.
func (o *EnableOptions) Validate() error {
	if o.NameSuffix != "" {
		if errs := validation.IsDNS1123Label(o.NameSuffix); len(errs) > 0 {
			return fmt.Errorf("invalid --name-suffix %q: %s", o.NameSuffix, strings.Join(errs, "; "))
		}
	}
	if err := validateStuckAfter(o.StuckAfter); err != nil {
		return err
	}
	return o.changeOptions.validate()
}

// Run plans, confirms, applies and optionally waits.
func (o *EnableOptions) Run(ctx context.Context) error {
	c := o.clients
	if err := c.requireMachineConfigAPI(); err != nil {
		return err
	}
	desired, err := manifests.Render(manifests.RenderOptions{Roles: o.Roles, Enabled: true})
	if err != nil {
		return err
	}
	if o.NameSuffix != "" {
		for _, mc := range desired {
			mc.Name += "-" + o.NameSuffix
		}
	}
	snap, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	reach, err := mcp.Reach(snap.Pools, desired)
	if err != nil {
		return err
	}
	plan := planEnable(snap, desired, reach)
	plan.print(o.Out)
	if err := o.refuseUnsafe(plan); err != nil {
		return err
	}

	exps := enableExpectations(snap, plan)
	if !plan.sendsAnything() {
		fmt.Fprintln(o.Out, "Nothing to change: encapsulation is already configured for these pools (no new rendered config, no reboot).")
		return o.maybeWait(ctx, exps)
	}
	if o.DryRun == dryRunClient {
		fmt.Fprintln(o.Out, "Dry run (client): nothing was sent to the cluster.")
		return nil
	}
	if o.DryRun == dryRunNone {
		// Server-side apply patches; creating an object that way also
		// needs the create right.
		verbs := []string{"patch"}
		for _, ch := range plan.Changes {
			if ch.Action == actionCreate {
				verbs = []string{"create", "patch"}
			}
		}
		if err := c.checkAccess(ctx, verbs...); err != nil {
			return err
		}
		if err := o.confirm(plan); err != nil {
			return err
		}
	}
	existing := mcsByName(snap.MachineConfigs)
	for i, mc := range desired {
		switch plan.Changes[i].Action {
		case actionUnchanged:
			fmt.Fprintf(o.Out, "machineconfig.%s/%s unchanged\n", mcfgv1.GroupName, mc.Name)
			continue
		case actionForeign:
			fmt.Fprintf(o.Out, "machineconfig.%s/%s left as it is (not created by oc-kubens)\n", mcfgv1.GroupName, mc.Name)
			continue
		}
		if err := applyMachineConfig(ctx, c, o.DryRun, o.Out, mc, existing[mc.Name]); err != nil {
			return err
		}
	}
	if o.DryRun == dryRunServer {
		fmt.Fprintln(o.Out, "Dry run (server): the API server accepted the change; nothing was persisted.")
		return nil
	}
	return o.maybeWait(ctx, exps)
}

// planEnable works out what applying desired does: per MC, create, update,
// unchanged or not-ours (a same-name object somebody else made, which
// is never touched); per reached pool, the merged config before and after.
func planEnable(snap mcp.Snapshot, desired []*mcfgv1.MachineConfig, reach map[string][]string) *rolloutPlan {
	existing := mcsByName(snap.MachineConfigs)
	plan := &rolloutPlan{Verb: "enable", SingleNode: singleNode(snap.Pools), Unreached: unreachedPools(snap.Pools, reach)}
	plan.Others, plan.ZTP = otherEnablers(snap.Pools, snap.MachineConfigs)
	replaced := map[string]*mcfgv1.MachineConfig{}
	for _, mc := range desired {
		ch := mcChange{Name: mc.Name, Action: compareMC(existing[mc.Name], mc)}
		if ch.Action == actionForeign {
			ch.Foreign = describeForeign(existing[mc.Name])
		} else {
			replaced[mc.Name] = mc
		}
		plan.Changes = append(plan.Changes, ch)
	}
	after := make([]mcfgv1.MachineConfig, 0, len(snap.MachineConfigs)+len(desired))
	for _, mc := range snap.MachineConfigs {
		if _, ok := replaced[mc.Name]; !ok {
			after = append(after, mc)
		}
	}
	for _, mc := range desired {
		if r, ok := replaced[mc.Name]; ok {
			after = append(after, *r)
		}
	}
	plan.Pools = newPoolPlans(snap.Pools, reach, snap.MachineConfigs, after)
	return plan
}

// refuseUnsafe stops before anything is sent when the plan would take over
// someone else's object, or would not end with kubens.service enabled on a
// reached pool (a later config switches it off again: the pools would reboot
// for nothing and --wait would report success). --force accepts the second,
// never the first.
func (o *EnableOptions) refuseUnsafe(plan *rolloutPlan) error {
	for _, ch := range plan.Changes {
		if ch.Action != actionForeign {
			continue
		}
		// A same-name object of someone else's that already gets the unit
		// enabled everywhere our config would go is no obstacle.
		if len(plan.notReaching()) == 0 {
			continue
		}
		return fmt.Errorf("MachineConfig %s exists and was not created by oc-kubens (it holds %s); oc-kubens never changes, takes over or deletes other people's configs. "+
			"Re-run with --name-suffix=oc-kubens to create %s-oc-kubens instead, which sorts after it, or move that object out of the way yourself",
			ch.Name, ch.Foreign, ch.Name)
	}
	if bad := plan.notReaching(); len(bad) > 0 && !o.Force {
		names := make([]string, 0, len(bad))
		for _, pl := range bad {
			names = append(names, pl.Name)
		}
		return fmt.Errorf("refusing to enable: %s would still not be enabled on pool %s after this change (see the WARNING above), so nothing was changed. "+
			"Fix or remove the config that decides it, or re-run with --force to apply anyway", manifests.UnitName, strings.Join(names, ", "))
	}
	return nil
}

// enableExpectations builds what the wait checks per reached pool: our MCs
// in the rendered source, and kubens.service in the state the merge gives
// in the new rendered config (an MC that existed under the same name is
// already in the source: only the unit shows the render has happened).
func enableExpectations(snap mcp.Snapshot, plan *rolloutPlan) []mcp.Expectation {
	ours := map[string]bool{}
	for _, ch := range plan.Changes {
		if ch.Action != actionForeign {
			ours[ch.Name] = true
		}
	}
	exps := make([]mcp.Expectation, 0, len(plan.Pools))
	for _, pl := range plan.Pools {
		e := mcp.Expectation{Pool: pl.Name}
		for _, m := range pl.MCs {
			if ours[m] {
				e.Present = append(e.Present, m)
			}
		}
		if pl.Outcome.After.Err == nil {
			e.Unit, e.UnitState = manifests.UnitName, pl.Outcome.After.Kubens
		}
		exps = append(exps, e)
	}
	return exps
}

func mcsByName(mcs []mcfgv1.MachineConfig) map[string]*mcfgv1.MachineConfig {
	out := make(map[string]*mcfgv1.MachineConfig, len(mcs))
	for i := range mcs {
		out[mcs[i].Name] = &mcs[i]
	}
	return out
}

func (o *EnableOptions) confirm(plan *rolloutPlan) error {
	return confirmPlan(o.IOStreams, o.stdinTTY, o.Yes, plan)
}

// confirmPlan asks on a terminal, and refuses without --yes elsewhere: an
// unattended script must say it accepts the reboots.
func confirmPlan(streams genericiooptions.IOStreams, tty, yes bool, plan *rolloutPlan) error {
	if yes {
		return nil
	}
	if !tty {
		return fmt.Errorf("refusing to %s without confirmation: stdin is not a terminal, so nothing was changed. Re-run with --yes to accept the plan above", plan.Verb)
	}
	ok, err := confirm(streams.In, streams.Out, fmt.Sprintf("Apply this plan and %s encapsulation?", plan.Verb))
	if err != nil {
		return err
	}
	if !ok {
		return &ExitError{Code: 1, Err: fmt.Errorf("aborted: nothing was changed")}
	}
	return nil
}

func (o *EnableOptions) maybeWait(ctx context.Context, exps []mcp.Expectation) error {
	if !o.Wait || o.DryRun != dryRunNone {
		return nil
	}
	return runWait(ctx, o.clients, exps, waitLimits{Timeout: o.Timeout, StuckAfter: o.StuckAfter, Display: o.displayName}, o.Out, o.stdoutTTY)
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// applyMachineConfig sends one MC with server-side apply and says what
// happened to it. The body holds only the fields we own, so other managers'
// fields are left alone.
func applyMachineConfig(ctx context.Context, c *clusterClients, dryRun string, out io.Writer, mc, have *mcfgv1.MachineConfig) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": mcfgv1.GroupVersion.String(),
		"kind":       "MachineConfig",
		"metadata":   map[string]any{"name": mc.Name, "labels": mc.Labels},
		"spec":       map[string]any{"config": json.RawMessage(mc.Spec.Config.Raw)},
	})
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: ptr.To(true)}
	if dryRun == dryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	got, err := c.mcfg.MachineconfigurationV1().MachineConfigs().Patch(ctx, mc.Name, types.ApplyPatchType, body, opts)
	if err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("you are not allowed to apply MachineConfig %s: %s. Log in as a cluster administrator, or ask one to run this", mc.Name, apiMessage(err))
		}
		return fmt.Errorf("applying MachineConfig %s: %w", mc.Name, err)
	}
	verb := "configured"
	switch {
	case have == nil:
		verb = "created"
	case have.ResourceVersion == got.ResourceVersion:
		verb = "unchanged"
	}
	if dryRun == dryRunServer {
		verb += " (server dry run)"
	}
	fmt.Fprintf(out, "machineconfig.%s/%s %s\n", mcfgv1.GroupName, mc.Name, verb)
	return nil
}
