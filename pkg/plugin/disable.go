package plugin

import (
	"context"
	"fmt"
	"sort"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// DisableOptions holds the flags and state of `oc kubens disable`.
type DisableOptions struct {
	changeOptions
	clusterOptions

	// StuckAfter: with --wait, see WaitOptions.StuckAfter.
	StuckAfter time.Duration
}

// NewCmdDisable returns the disable command.
func NewCmdDisable(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DisableOptions{clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "disable",
		Short: "Turn off mount namespace encapsulation by removing what enable created (reboots nodes)",
		Long: `Delete the MachineConfigs that enable created (those with the
oc-kubens.io/managed-by label; the wrap configs stay, unwrap removes them),
after showing the plan and asking for confirmation. MachineConfigs made by
anyone else are never touched: when one of them keeps kubens.service enabled
on a pool, disable says so.

The Machine Config Operator then drains and REBOOTS every node of each affected
pool, maxUnavailable at a time. Without a terminal, --yes is required.`,
		Example: `  # Show the plan and ask
  oc kubens disable

  # Remove without asking and wait until every node is back to plain
  oc kubens disable --yes --wait

  # Only the worker MachineConfig
  oc kubens disable --role worker`,
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
		"Only remove the MachineConfig of this role; repeat for several. Default: every MachineConfig oc-kubens manages.")
	o.changeOptions.addFlags(cmd)
	addStuckAfterFlag(cmd, &o.StuckAfter, "With --wait: ")
	return cmd
}

// Complete builds the clients and looks at the terminal.
func (o *DisableOptions) Complete(cmd *cobra.Command, _ []string) error {
	return o.completeClients(cmd)
}

// Validate checks the flags.
func (o *DisableOptions) Validate() error {
	if err := validateStuckAfter(o.StuckAfter); err != nil {
		return err
	}
	return o.changeOptions.validate()
}

// Run plans, confirms, deletes and optionally waits.
func (o *DisableOptions) Run(ctx context.Context) error {
	c := o.clients
	if err := c.requireMachineConfigAPI(); err != nil {
		return err
	}
	snap, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	// By role label, not by name: enable --name-suffix names ours
	// differently.
	wanted := map[string]bool{}
	for _, r := range o.Roles {
		wanted[r] = true
	}
	var doomed []*mcfgv1.MachineConfig
	gone := map[string]bool{}
	for i := range snap.MachineConfigs {
		mc := &snap.MachineConfigs[i]
		if !manifests.IsManagedKubens(mc) || (len(wanted) > 0 && !wanted[mc.Labels[manifests.RoleLabel]]) {
			continue
		}
		doomed = append(doomed, mc)
		gone[mc.Name] = true
	}
	after := make([]mcfgv1.MachineConfig, 0, len(snap.MachineConfigs))
	for _, mc := range snap.MachineConfigs {
		if !gone[mc.Name] {
			after = append(after, mc)
		}
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
	plan := &rolloutPlan{Verb: "disable", Pools: newPoolPlans(snap.Pools, reach, snap.MachineConfigs, after), SingleNode: singleNode(snap.Pools)}
	plan.Others, plan.ZTP = otherEnablers(snap.Pools, snap.MachineConfigs)
	for _, mc := range doomed {
		plan.Changes = append(plan.Changes, mcChange{Name: mc.Name, Action: actionDelete})
	}
	if len(doomed) == 0 {
		plan.print(o.Out)
		fmt.Fprintln(o.Out, "Nothing to change: no MachineConfig managed by oc-kubens exists.")
		return nil
	}
	plan.print(o.Out)
	if o.DryRun == dryRunClient {
		fmt.Fprintln(o.Out, "Dry run (client): nothing was sent to the cluster.")
		return nil
	}
	if o.DryRun == dryRunNone {
		if err := c.checkAccess(ctx, "delete"); err != nil {
			return err
		}
		if err := confirmPlan(o.IOStreams, o.stdinTTY, o.Yes, plan); err != nil {
			return err
		}
	}
	for _, mc := range doomed {
		// The UID precondition makes sure we delete the object we looked
		// at, not one somebody recreated under the same name meanwhile.
		if err := deleteMachineConfig(ctx, c, o.DryRun, o.Out, mc); err != nil {
			return err
		}
	}
	if o.DryRun == dryRunServer || !o.Wait {
		return nil
	}
	exps := make([]mcp.Expectation, 0, len(plan.Pools))
	for _, pl := range plan.Pools {
		exps = append(exps, mcp.Expectation{Pool: pl.Name, Absent: pl.MCs})
	}
	return runWait(ctx, c, exps, waitLimits{Timeout: o.Timeout, StuckAfter: o.StuckAfter, Display: o.displayName}, o.Out, o.stdoutTTY)
}
