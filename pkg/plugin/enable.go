package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

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

Applies with server-side apply (field manager oc-kubens) and strict field
validation. Without a terminal, --yes is required.`,
		Example: `  # Show the plan and ask before applying
  oc kubens enable

  # Apply without asking and wait until every node has rebooted into it
  oc kubens enable --yes --wait

  # Only the worker pool (and custom pools selecting the worker role)
  oc kubens enable --role worker

  # Ask the API server to validate the change without persisting it
  oc kubens enable --dry-run=server`,
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
	o.changeOptions.addFlags(cmd)
	return cmd
}

// Complete builds the clients and looks at the terminal.
func (o *EnableOptions) Complete(_ *cobra.Command, _ []string) error {
	return o.completeClients()
}

// Validate checks the flags.
func (o *EnableOptions) Validate() error {
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
	snap, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	reach, err := mcp.Reach(snap.Pools, desired)
	if err != nil {
		return err
	}
	existing := map[string]*mcfgv1.MachineConfig{}
	for i := range snap.MachineConfigs {
		existing[snap.MachineConfigs[i].Name] = &snap.MachineConfigs[i]
	}
	plan := &rolloutPlan{Verb: "enable", Pools: newPoolPlans(snap.Pools, reach), SingleNode: singleNode(snap.Pools)}
	plan.Others, plan.ZTP = otherEnablers(snap.Pools, snap.MachineConfigs)
	for _, mc := range desired {
		plan.Changes = append(plan.Changes, mcChange{Name: mc.Name, Action: compareMC(existing[mc.Name], mc)})
	}
	plan.print(o.Out)

	exps := enableExpectations(snap, reach, desired, plan)
	needsApply := false
	for _, ch := range plan.Changes {
		if ch.Action != actionUnchanged {
			needsApply = true
		}
	}
	if !needsApply {
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
	for i, mc := range desired {
		if plan.Changes[i].Action == actionUnchanged {
			fmt.Fprintf(o.Out, "machineconfig.%s/%s unchanged\n", mcfgv1.GroupName, mc.Name)
			continue
		}
		if err := o.apply(ctx, mc, existing[mc.Name]); err != nil {
			return err
		}
	}
	if o.DryRun == dryRunServer {
		fmt.Fprintln(o.Out, "Dry run (server): the API server accepted the change; nothing was persisted.")
		return nil
	}
	return o.maybeWait(ctx, exps)
}

// enableExpectations builds what the wait checks per pool after enable: our
// MCs in the rendered source and, for MCs that existed with other content
// (already in the source under the same name), the unit state the merge
// will give in the new rendered config.
func enableExpectations(snap mcp.Snapshot, reach map[string][]string, desired []*mcfgv1.MachineConfig, plan *rolloutPlan) []mcp.Expectation {
	updated := map[string]bool{}
	for _, ch := range plan.Changes {
		if ch.Action == actionUpdate {
			updated[ch.Name] = true
		}
	}
	// The MCs as they will be after the apply, for the merge forecast.
	after := make([]mcfgv1.MachineConfig, 0, len(snap.MachineConfigs)+len(desired))
	for _, mc := range snap.MachineConfigs {
		if _, ours := findMC(desired, mc.Name); !ours {
			after = append(after, mc)
		}
	}
	for _, mc := range desired {
		after = append(after, *mc)
	}
	exps := make([]mcp.Expectation, 0, len(reach))
	for i := range snap.Pools {
		mcs, ok := reach[snap.Pools[i].Name]
		if !ok {
			continue
		}
		e := mcp.Expectation{Pool: snap.Pools[i].Name, Present: mcs}
		for _, m := range mcs {
			// An MC that was already there is already in the source:
			// only the unit in the new rendered config shows the render
			// has happened.
			if updated[m] {
				e.Unit, e.UnitState = manifests.UnitName, mcp.ExpectedUnitState(&snap.Pools[i], after, manifests.UnitName)
			}
		}
		exps = append(exps, e)
	}
	return exps
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
	return runWait(ctx, o.clients, exps, o.Timeout, o.Out, o.stdoutTTY)
}

// compareMC decides what applying want over have does.
func compareMC(have, want *mcfgv1.MachineConfig) string {
	if have == nil {
		return actionCreate
	}
	if !sameJSON(have.Spec.Config.Raw, want.Spec.Config.Raw) || !emptyOtherSpec(have) {
		return actionUpdate
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			if k == manifests.RoleLabel {
				return actionUpdate // a role change moves the MC to other pools
			}
			return actionAdopt
		}
	}
	return actionUnchanged
}

// emptyOtherSpec: our MCs only carry spec.config; anything else in an
// existing MC of the same name (kernel arguments, extensions) is owned by
// someone else and would stay, so the object differs from ours.
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

// apply sends one MC with server-side apply. The body holds only the fields
// we own, so other managers' fields are left alone.
func (o *EnableOptions) apply(ctx context.Context, mc, have *mcfgv1.MachineConfig) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": mcfgv1.GroupVersion.String(),
		"kind":       "MachineConfig",
		"metadata":   map[string]any{"name": mc.Name, "labels": mc.Labels},
		"spec":       map[string]any{"config": json.RawMessage(mc.Spec.Config.Raw)},
	})
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: ptrTo(true)}
	if o.DryRun == dryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	got, err := o.clients.mcfg.MachineconfigurationV1().MachineConfigs().Patch(ctx, mc.Name, types.ApplyPatchType, body, opts)
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
	if o.DryRun == dryRunServer {
		verb += " (server dry run)"
	}
	fmt.Fprintf(o.Out, "machineconfig.%s/%s %s\n", mcfgv1.GroupName, mc.Name, verb)
	return nil
}

func findMC(mcs []*mcfgv1.MachineConfig, name string) (*mcfgv1.MachineConfig, bool) {
	for _, mc := range mcs {
		if mc.Name == name {
			return mc, true
		}
	}
	return nil, false
}

func ptrTo[T any](v T) *T { return &v }
