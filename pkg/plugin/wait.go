package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// WaitOptions holds the flags and state of `oc kubens wait`.
type WaitOptions struct {
	Pools      []string
	Timeout    time.Duration
	StuckAfter time.Duration

	clusterOptions
}

// NewCmdWait returns the wait command.
func NewCmdWait(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &WaitOptions{clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until every pool has rolled out its configuration, without the oc wait race",
		Long: `Wait, per pool, in two phases:

  1. the render controller has taken the change into the pool's desired config:
     spec.configuration.source holds every MachineConfig the pool selects
     (whoever made it: one applied by hand counts too) and no longer holds
     deleted ones, and the rendered config has kubens.service in the state
     the merge of those MachineConfigs gives;
  2. every node runs that config: status.configuration equals
     spec.configuration, Updated=True, all machines updated, and the status
     is about the current generation.

Right after a change the pool still says Updated=True for the OLD config;
'oc wait --for=condition=Updated' returns there, this command does not.

Fails at once, naming nodes and reasons, when a pool degrades or cannot
render; reports a paused pool instead of hanging. A render failure already
reported when the wait starts is given 30s for the operator to render again
(it does about 5s after a MachineConfig changes, e.g. once the offending one
is deleted) before it fails the wait; so is a degraded node, for the operator
to retry it once its cause is fixed. Keeps going when the API
server goes away (single-node reboots). Progress is shown per pool.

A node that does not come back from its reboot stays NotReady, with the daemon
state Working, and its pool Updating, forever: the Machine Config Operator
never marks it Degraded. Once a node has been NotReady in the middle of its
update for --stuck-after (10m by default), the wait names it once, with what
to check, and goes on waiting (it may still come back); a timeout names it
again.`,
		Example: `  # Wait for every pool, 30 minutes at most
  oc kubens wait

  # Wait for the worker pool for up to an hour
  oc kubens wait --pool worker --timeout 1h

  # Name a node that is NotReady for 5 minutes during its update
  oc kubens wait --stuck-after 5m`,
		Args: noArgs,
		RunE: runCommand(o),
	}
	cmd.Flags().StringSliceVar(&o.Pools, "pool", nil, "Pools to wait for (repeat or comma-separate); default all.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", defaultWaitTimeout, "How long to wait before giving up.")
	addStuckAfterFlag(cmd, &o.StuckAfter, "")
	return cmd
}

// addStuckAfterFlag registers --stuck-after; prefix starts the help text
// ("With --wait: " for enable and disable).
func addStuckAfterFlag(cmd *cobra.Command, d *time.Duration, prefix string) {
	cmd.Flags().DurationVar(d, "stuck-after", mcp.DefaultStuckAfter,
		prefix+"Warn, once per node, about a node that has been NotReady this long in the middle of its update (the Machine Config Operator waits for it forever, without marking it Degraded); 0 turns the warning off.")
}

// validateStuckAfter checks --stuck-after.
func validateStuckAfter(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--stuck-after must not be negative, got %s", d)
	}
	return nil
}

// Complete builds the clients and looks at the terminal.
func (o *WaitOptions) Complete(cmd *cobra.Command, _ []string) error {
	return o.completeClients(cmd)
}

// Validate checks the flags.
func (o *WaitOptions) Validate() error {
	if err := validateTimeout(o.Timeout); err != nil {
		return err
	}
	return validateStuckAfter(o.StuckAfter)
}

// Run waits.
func (o *WaitOptions) Run(ctx context.Context) error {
	if err := o.clients.requireMachineConfigAPI(); err != nil {
		return err
	}
	snap, err := o.clients.inputSnapshot(ctx, false)
	if err != nil {
		return err
	}
	exps, err := mcp.CurrentExpectations(snap.Pools, snap.MachineConfigs, o.Pools)
	if err != nil {
		return err
	}
	return runWait(ctx, o.clients, exps, waitLimits{Timeout: o.Timeout, StuckAfter: o.StuckAfter, Display: o.displayName}, o.Out, o.stdoutTTY)
}
