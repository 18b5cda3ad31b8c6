package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// EnableOptions holds the flags and state of `oc kubens enable`.
type EnableOptions struct {
	changeOptions
	clusterOptions

	// Force applies even when the merge forecast says kubens.service stays
	// off on a reached pool, when a reached pool already uses the ZTP
	// mechanism, or when the node disruption policy would not reboot.
	Force bool
	// NameSuffix names our configs 99-kubens-<role>-<suffix>, for clusters
	// where somebody else's object already has the plain name.
	NameSuffix string
	// StuckAfter: with --wait, see WaitOptions.StuckAfter.
	StuckAfter time.Duration
}

// NewCmdEnable returns the enable command.
func NewCmdEnable(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &EnableOptions{changeOptions: newChangeOptions(), clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
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

It also refuses unless --force when a pool already encapsulates through the
telco ZTP container-mount-namespace.service (two mechanisms risk a Split
node), and when the node disruption policy of MachineConfiguration/cluster
(OpenShift 4.17+) gives kubens.service an action other than Reboot: the
nodes would then be marked updated without the reboot that moves kubelet and
CRI-O. The plan shows the effective action.

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
		RunE: runCommand(o),
	}
	cmd.Flags().StringArrayVar(&o.Roles, "role", nil,
		"Pool role to enable it for, as for render; repeat for several. Default: master and worker. A custom pool selecting one of the roles is included.")
	cmd.Flags().BoolVar(&o.Force, "force", false,
		"Apply even when the merge forecast says kubens.service stays off on a pool (a later config disables it), when a pool already uses the ZTP container-mount-namespace mechanism, or when the node disruption policy would not reboot the nodes.")
	cmd.Flags().StringVar(&o.NameSuffix, "name-suffix", "",
		"Name the MachineConfigs 99-kubens-<role>-<suffix>: for clusters where a 99-kubens-<role> that oc-kubens did not create exists.")
	o.changeOptions.addFlags(cmd)
	addStuckAfterFlag(cmd, &o.StuckAfter, "With --wait: ")
	return cmd
}

// Complete reads --dry-run, builds the clients and looks at the terminal.
func (o *EnableOptions) Complete(cmd *cobra.Command, _ []string) error {
	if err := o.changeOptions.complete(cmd); err != nil {
		return err
	}
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
	snap, err := c.snapshot(ctx, false)
	if err != nil {
		return err
	}
	plan, err := change.PlanEnable(snap, change.EnableRequest{Roles: o.Roles, NameSuffix: o.NameSuffix})
	if err != nil {
		return phraseUnselected(err)
	}
	if err := c.assessDisruption(ctx, plan); err != nil {
		return err
	}
	human := o.humanOut(o.IOStreams)
	printPlan(human, plan)
	if err := phraseEnableRefusal(plan.CheckEnable(o.Force)); err != nil {
		return err
	}
	return o.carryOut(ctx, plan, o.changeOptions, o.StuckAfter)
}

// phraseEnableRefusal says what to do about a plan enable refuses.
func phraseEnableRefusal(err error) error {
	var foreign *change.ForeignError
	var notReaching *change.NotReachingError
	var ztp *change.ZTPError
	switch {
	case errors.As(err, &ztp):
		return fmt.Errorf("refusing to enable: pool %s already runs kubelet and CRI-O in the ZTP %s (see the WARNING above); a second mechanism risks a Split node, "+
			"where pods lose their secret and configmap mounts. Nothing was changed. Remove the ZTP MachineConfigs named above first, or re-run with --force to apply anyway",
			strings.Join(ztp.Pools, ", "), manifests.ZTPUnitName)
	case errors.As(err, &foreign):
		name := foreign.Existing.Name
		return fmt.Errorf("MachineConfig %s exists and was not created by oc-kubens (it holds %s); oc-kubens never changes, takes over or deletes other people's configs. "+
			"Re-run with --name-suffix=oc-kubens to create %s-oc-kubens instead, which sorts after it, or move that object out of the way yourself",
			name, describeForeign(foreign.Existing), name)
	case errors.As(err, &notReaching):
		return fmt.Errorf("refusing to enable: %s would still not be enabled on pool %s after this change (see the WARNING above), so nothing was changed. "+
			"Fix or remove the config that decides it, or re-run with --force to apply anyway", notReaching.Unit, strings.Join(notReaching.Pools, ", "))
	}
	return phraseDisruptionRefusal(err)
}

// phraseDisruptionRefusal says what to do about a node disruption policy
// that would leave the nodes unrebooted.
func phraseDisruptionRefusal(err error) error {
	var d *change.DisruptionError
	if !errors.As(err, &d) {
		return err
	}
	return fmt.Errorf("refusing to %s: the node disruption policy in MachineConfiguration/cluster gives %s the action %s, so the Machine Config Operator would mark the nodes of pool %s updated "+
		"WITHOUT rebooting them, and kubelet and CRI-O would stay where they are while the cluster looks done. Nothing was changed. "+
		"Remove that entry from spec.nodeDisruptionPolicy (oc edit machineconfiguration cluster), or re-run with --force and reboot each node yourself afterwards",
		d.Verb, strings.Join(d.Disruption.Matched, ", "), d.Disruption.Describe(), strings.Join(d.Pools, ", "))
}

// assessDisruption reads the node disruption policy and records in the
// plan what it does with the change.
func (c *clusterClients) assessDisruption(ctx context.Context, plan *change.Plan) error {
	pol, err := change.ReadDisruptionPolicy(ctx, c.op)
	if err != nil {
		return explainAPIError(err, "read the node disruption policy (MachineConfiguration/cluster)")
	}
	plan.SetDisruption(pol)
	return nil
}

// carryOut is what enable, disable, wrap and unwrap do once the plan is
// printed: nothing when there is nothing to send, else check access,
// confirm, apply or delete, say what happened to each MachineConfig, and
// with --wait wait for the rollout.
func (o *clusterOptions) carryOut(ctx context.Context, plan *change.Plan, co changeOptions, stuckAfter time.Duration) error {
	human := co.humanOut(o.IOStreams)
	applier := &change.Applier{Client: o.clients.mcfg, DryRun: co.DryRun}
	if !plan.SendsAnything() {
		fmt.Fprintln(human, nothingToChange(plan.Verb))
		if co.structured() {
			results, err := applier.Apply(ctx, plan)
			if err != nil {
				return err
			}
			if err := co.printResults(o.Out, results); err != nil {
				return err
			}
		}
		return o.waitFor(ctx, plan, co, stuckAfter)
	}
	if co.DryRun == cmdutil.DryRunNone {
		if err := change.CheckAccess(ctx, o.clients.kube, plan.RequiredVerbs()); err != nil {
			return phraseAccessError(err)
		}
		if err := confirmPlan(o.IOStreams, o.stdinTTY, co.Yes, plan, human); err != nil {
			return err
		}
	}
	results, err := applier.Apply(ctx, plan)
	if perr := co.printResults(o.Out, results); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return phraseApplyError(err)
	}
	switch co.DryRun {
	case cmdutil.DryRunClient:
		fmt.Fprintln(human, "Dry run (client): nothing was sent to the cluster.")
		return nil
	case cmdutil.DryRunServer:
		fmt.Fprintln(human, "Dry run (server): the API server accepted the change; nothing was persisted.")
		return nil
	}
	return o.waitFor(ctx, plan, co, stuckAfter)
}

// nothingToChange is what a plan with nothing to send says.
func nothingToChange(verb string) string {
	switch verb {
	case change.VerbDisable:
		return "Nothing to change: no MachineConfig managed by oc-kubens exists."
	case change.VerbWrap, change.VerbUnwrap:
		return "Nothing to change: the units are already as asked (no new rendered config, no reboot)."
	}
	return "Nothing to change: encapsulation is already configured for these pools (no new rendered config, no reboot)."
}

// waitFor waits, with --wait and not in a dry run, until the plan's pools
// have rolled it out.
func (o *clusterOptions) waitFor(ctx context.Context, plan *change.Plan, co changeOptions, stuckAfter time.Duration) error {
	if !co.Wait || co.DryRun != cmdutil.DryRunNone || plan.Verb == change.VerbDisable && !plan.SendsAnything() {
		return nil
	}
	return runWait(ctx, o.clients, plan.Expectations(), waitLimits{Timeout: co.Timeout, StuckAfter: stuckAfter, Display: o.displayName}, co.humanOut(o.IOStreams), o.stdoutTTY)
}

// phraseAccessError says who can do what the access review denied.
func phraseAccessError(err error) error {
	var denied *change.AccessDeniedError
	if errors.As(err, &denied) {
		return fmt.Errorf("you are not allowed to %s MachineConfigs (machineconfigs.%s); nothing was changed. Log in as a cluster administrator, or ask one to run this",
			strings.Join(denied.Verbs, "/"), mcfgv1.GroupName)
	}
	return explainAPIError(err, "check your permissions on MachineConfigs")
}

// phraseApplyError says what to do about a failed apply or delete.
func phraseApplyError(err error) error {
	var apiErr *change.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if apierrors.IsForbidden(apiErr.Err) {
		return fmt.Errorf("you are not allowed to %s MachineConfig %s: %s. Log in as a cluster administrator, or ask one to run this", apiErr.Verb, apiErr.Name, apiMessage(apiErr.Err))
	}
	doing := "applying"
	if apiErr.Verb == "delete" {
		doing = "deleting"
	}
	if len(apiErr.Done) > 0 {
		// Half the plan is in: say so, and how to finish (a run again
		// sends only what is missing).
		return fmt.Errorf("%s MachineConfig %s: %w; %s had already been changed, so the change is incomplete: run the same command again to finish it",
			doing, apiErr.Name, apiErr.Err, strings.Join(apiErr.Done, ", "))
	}
	return fmt.Errorf("%s MachineConfig %s: %w; nothing was changed", doing, apiErr.Name, apiErr.Err)
}

// confirmPlan asks on a terminal, and refuses without --yes elsewhere: an
// unattended script must say it accepts the reboots.
func confirmPlan(streams genericiooptions.IOStreams, tty, yes bool, plan *change.Plan, out io.Writer) error {
	if yes {
		return nil
	}
	if !tty {
		return fmt.Errorf("refusing to %s without confirmation: stdin is not a terminal, so nothing was changed. Re-run with --yes to accept the plan above", plan.Verb)
	}
	ok, err := confirm(streams.In, out, fmt.Sprintf("Apply this plan and %s encapsulation?", plan.Verb))
	if err != nil {
		return err
	}
	if !ok {
		return &ExitError{Code: 1, Err: fmt.Errorf("aborted: nothing was changed")}
	}
	return nil
}

// phraseUnselected says what to do about a role no pool selects.
func phraseUnselected(err error) error {
	if u := new(mcp.UnselectedError); errors.As(err, &u) {
		return fmt.Errorf("%w. Drop that role from --role, or create a pool for it first", err)
	}
	return err
}
