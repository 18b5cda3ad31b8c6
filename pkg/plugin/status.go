package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// StatusOptions holds the flags and state of `oc kubens status`.
type StatusOptions struct {
	PrintFlags *printFlags

	clusterOptions
}

// NewCmdStatus returns the status command.
func NewCmdStatus(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{PrintFlags: newPrintFlags(tableOutput, ""), clusterOptions: clusterOptions{configFlags: configFlags, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show, per pool and node, whether encapsulation is configured and rolled out",
		Long: `Show, per machine config pool, whether kubens.service is enabled in the
config the pool has rolled out (the rendered MachineConfig in
status.configuration, the ground truth), whether a change is pending, which
MachineConfigs enable it, the ZTP container-mount-namespace unit, the
pool's conditions and counts, and the units that config runs in the
Kubernetes mount namespace (oc kubens wrap). -o wide adds one line per node.

Reads only API objects, whatever the node count: the pools, the input
MachineConfigs the pools select (listed by the pools' selectors, so the
hundreds of old rendered configs of a long-lived cluster are never sent),
the nodes, and only the rendered configs that pools and nodes name, and
MachineConfiguration/cluster for its node disruption policy. It runs no pods.
To check the nodes themselves, use 'oc kubens verify'.

When that policy gives kubens.service an action other than Reboot (OpenShift
4.17+), the nodes are marked updated without a reboot: status then warns, and
flags each node that has not rebooted since its current config was rendered
(NOT REBOOTED in -o wide, notRebooted in -o json; judged by its Ready
condition's last transition, a heuristic).`,
		Example: `  # Per pool
  oc kubens status

  # Per pool and per node
  oc kubens status -o wide

  # Machine-readable (apiVersion oc-kubens.io/v1alpha1, kind KubensStatus)
  oc kubens status -o json

  # The pools that have encapsulation rolled out
  oc kubens status -o jsonpath='{range .pools[?(@.kubens=="enabled")]}{.name}{"\n"}{end}'`,
		Args: noArgs,
		RunE: runCommand(o),
	}
	o.PrintFlags.addFlags(cmd, "a table per pool; wide adds one line per node",
		"machineconfigpool.machineconfiguration.openshift.io/POOL per pool")
	return cmd
}

// Complete builds the clients.
func (o *StatusOptions) Complete(cmd *cobra.Command, _ []string) error {
	return o.completeClients(cmd)
}

// Validate checks the output format.
func (o *StatusOptions) Validate() error {
	return o.PrintFlags.validate()
}

// Run reads the cluster and prints the report.
func (o *StatusOptions) Run(ctx context.Context) error {
	if err := o.clients.requireMachineConfigAPI(); err != nil {
		return err
	}
	// The nodes are read for every output that shows them: all but the
	// default table and -o name.
	p := o.PrintFlags
	// A node disruption policy that lets kubens.service change without a
	// reboot can leave nodes Done but not as their config says: then the
	// nodes are read for every output, to flag those.
	pol, err := change.ReadDisruptionPolicy(ctx, o.clients.op)
	if err != nil {
		return explainAPIError(err, "read the node disruption policy (MachineConfiguration/cluster)")
	}
	disruption := pol.For([]string{manifests.UnitName}, nil)
	rebootless := disruption.Known && !disruption.Reboots()
	snap, err := o.clients.inputSnapshot(ctx, rebootless || !(p.human() && !p.isWide()) && p.format() != "name")
	if err != nil {
		return err
	}
	snap.KubensRebootless = rebootless
	if err := o.clients.addRenderedConfigs(ctx, &snap); err != nil {
		return err
	}
	rep := mcp.Derive(snap)
	if !p.human() {
		pools := make([]string, 0, len(rep.Pools))
		for _, pool := range rep.Pools {
			pools = append(pools, pool.Name)
		}
		return p.printReport(o.Out, &rep, named(poolKind, pools...))
	}
	notes := p.notes(o.Out, o.ErrOut)
	if err := printStatus(o.Out, notes, rep, p.isWide(), p.NoHeaders); err != nil {
		return err
	}
	if rebootless {
		printNotRebooted(notes, rep, disruption)
	}
	return nil
}

// printNotRebooted warns about the node disruption policy and names the
// nodes that are Done without a reboot since their config was rendered.
func printNotRebooted(w io.Writer, rep mcp.Report, d change.Disruption) {
	var names []string
	for _, n := range rep.Nodes {
		if n.NotRebooted {
			names = append(names, n.Name)
		}
	}
	fmt.Fprintf(w, "WARNING: the node disruption policy in MachineConfiguration/cluster gives %s the action %s: the Machine Config Operator marks nodes updated without rebooting them, so kubelet and CRI-O keep the mount namespace they were started in.\n",
		strings.Join(d.Matched, ", "), d.Describe())
	if len(names) > 0 {
		fmt.Fprintf(w, "WARNING: NOT REBOOTED since their current config was rendered: %s. KUBENS above is what their config says, not what runs; check with 'oc kubens verify', and reboot them to apply it.\n",
			strings.Join(names, ", "))
	}
}

func yesNo(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printStatus writes the pool table, the notes (to notes), and with wide
// the node table; noHeaders leaves out the column headers.
func printStatus(w, notes io.Writer, rep mcp.Report, wide, noHeaders bool) error {
	tw := printers.GetNewTabWriter(w)
	if !noHeaders {
		fmt.Fprintln(tw, "POOL\tKUBENS\tPENDING\tUPDATED\tUPDATING\tDEGRADED\tPAUSED\tMACHINES\tREADY\tUPDATED#\tDEGRADED#\tENABLED BY\tWRAPPED")
	}
	for _, p := range rep.Pools {
		pending := "-"
		if p.PendingChange {
			pending = "-> " + string(p.DesiredKubens)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.Kubens, pending,
			yesNo(p.Updated), yesNo(p.Updating), yesNo(p.Degraded), yesNo(p.Paused),
			p.MachineCount, p.ReadyMachineCount, p.UpdatedMachineCount, p.DegradedMachineCount,
			dash(strings.Join(p.EnabledBy, ",")), dash(strings.Join(p.Wrapped, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range rep.Pools {
		if p.ZTP {
			fmt.Fprintf(notes, "Note: pool %s encapsulates through the ZTP container-mount-namespace.service.\n", p.Name)
		}
		if p.Degraded && p.DegradedReason != "" {
			fmt.Fprintf(notes, "Pool %s is degraded: %s\n", p.Name, p.DegradedReason)
		}
		if p.Paused && p.PendingChange {
			fmt.Fprintf(notes, "Pool %s is paused with a pending change: nothing rolls out until it is unpaused.\n", p.Name)
		}
	}
	if !wide {
		return nil
	}
	fmt.Fprintln(w)
	tw = printers.GetNewTabWriter(w)
	if !noHeaders {
		fmt.Fprintln(tw, "NODE\tPOOL\tKUBENS\tSTATE\tCURRENT\tDESIRED\tREASON")
	}
	for _, n := range rep.Nodes {
		reason := n.Reason
		if n.NotRebooted && reason == "" {
			reason = "NOT REBOOTED since its config was rendered (node disruption policy)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(n.Pool), n.Kubens, dash(n.State),
			dash(n.CurrentConfig), dash(n.DesiredConfig), dash(reason))
	}
	return tw.Flush()
}
