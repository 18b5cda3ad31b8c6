package plugin

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/change"
)

// DisableOptions holds the flags and state of `oc kubens disable`.
type DisableOptions struct {
	changeOptions
	clusterOptions

	// StuckAfter: with --wait, see WaitOptions.StuckAfter.
	StuckAfter time.Duration
	// Force deletes even when the node disruption policy would not reboot
	// the nodes.
	Force bool
}

// NewCmdDisable returns the disable command.
func NewCmdDisable(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DisableOptions{changeOptions: newChangeOptions(), clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "disable",
		Short: "Turn off mount namespace encapsulation by removing what enable created (reboots nodes)",
		Long: `Delete the MachineConfigs that enable created (those with the
oc-kubens.io/managed-by label; the wrap configs stay, unwrap removes them),
after showing the plan and asking for confirmation. MachineConfigs made by
anyone else are never touched: when one of them keeps kubens.service enabled
on a pool, disable says so.

The Machine Config Operator then drains and REBOOTS every node of each affected
pool, maxUnavailable at a time. Without a terminal, --yes is required.

When the node disruption policy of MachineConfiguration/cluster (OpenShift
4.17+) gives kubens.service an action other than Reboot, the nodes would be
marked updated while kubelet and CRI-O stay encapsulated: disable refuses
unless --force. The plan shows the effective action.`,
		Example: `  # Show the plan and ask
  oc kubens disable

  # Remove without asking and wait until every node is back to plain
  oc kubens disable --yes --wait

  # Only the worker MachineConfig
  oc kubens disable --role worker`,
		Args: noArgs,
		RunE: runCommand(o),
	}
	cmd.Flags().StringArrayVar(&o.Roles, "role", nil,
		"Only remove the MachineConfig of this role; repeat for several. Default: every MachineConfig oc-kubens manages.")
	cmd.Flags().BoolVar(&o.Force, "force", false,
		"Delete even when the node disruption policy would not reboot the nodes (reboot them yourself afterwards).")
	o.changeOptions.addFlags(cmd)
	addStuckAfterFlag(cmd, &o.StuckAfter, "With --wait: ")
	return cmd
}

// Complete reads --dry-run, builds the clients and looks at the terminal.
func (o *DisableOptions) Complete(cmd *cobra.Command, _ []string) error {
	if err := o.changeOptions.complete(cmd); err != nil {
		return err
	}
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
	plan := change.PlanDisable(snap, o.Roles)
	if err := c.assessDisruption(ctx, plan); err != nil {
		return err
	}
	printPlan(o.humanOut(o.IOStreams), plan)
	if err := phraseDisruptionRefusal(plan.CheckDisable(o.Force)); err != nil {
		return err
	}
	return o.carryOut(ctx, plan, o.changeOptions, o.StuckAfter)
}
