package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// Exit codes of measure: like verify's, 1 when a node could not be
// measured, 2 when measure could not run at all.
const (
	measureExitUnmeasured = 1
)

// MeasureOptions holds the flags and state of `oc kubens measure`.
type MeasureOptions struct {
	configFlags *genericclioptions.ConfigFlags

	nodeSelection
	podRunFlags
	Duration time.Duration
	Baseline string
	// PrintFlags is -o: a table when empty.
	PrintFlags *printFlags

	baseline *measure.MeasureReport
	clients  *clusterClients

	genericiooptions.IOStreams
}

// NewCmdMeasure returns the measure command.
func NewCmdMeasure(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &MeasureOptions{configFlags: configFlags, PrintFlags: newPrintFlags(tableOutput, ""), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "measure [NODE...] [--all-nodes | -l SELECTOR | --pool NAME] [--duration 30s]",
		Short: "Measure what systemd spends on container mounts, node by node, before and after",
		Long: `Measure, on each node, the load that mount namespace encapsulation takes off
systemd: PID 1's CPU use over a window (% of one core, from /proc/1/stat and
the node's clock tick), the mounts in PID 1's and kubelet's tables (HIDDEN:
how many more kubelet sees), the mount units systemd tracks, how many lines
of PID 1's mount table changed per second (sampled every 200 ms), and the
node's pod count.

measure runs one short privileged pod per node, exactly like verify (same
temporary namespace, --parallelism, --timeout, cleanup also on Ctrl-C); each
pod lives for --duration. Run it before enabling encapsulation with
-o json > before.json, and after with --baseline before.json to see, per node
and for the cluster, systemd's CPU before and after and the mounts hidden.
Nodes measured only once are listed as New or Gone. As for verify, a live
line on stderr shows the progress when stderr is a terminal and the output
is the table.

Exit status: 0 when every node was measured, 1 when any could not be, 2
when measure could not run at all.`,
		Example: `  # Every node, over 30 seconds
  oc kubens measure --all-nodes

  # Before and after enabling encapsulation
  oc kubens measure --all-nodes -o json > before.json
  oc kubens enable --yes --wait
  oc kubens measure --all-nodes --baseline before.json

  # One pool, a longer window, everything
  oc kubens measure --pool worker --duration 2m -o wide`,
		RunE: runCommand(o),
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: verifyExitCannotRun, Err: newUsageError(c, err)}
	})
	o.nodeSelection.addFlags(cmd, "Measure")
	o.podRunFlags.addFlags(cmd)
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", 30*time.Second, "How long to measure each node (1s to 1h), on top of the time its pod takes to start.")
	f.StringVar(&o.Baseline, "baseline", "", "A measure -o json|yaml file from before a change: print each node's figures before and after.")
	o.PrintFlags.addFlags(cmd, "a table and a summary line; wide adds PID 1's name and messages", "node/NAME per node measured (with --baseline: per node on either side)")
	_ = cmd.MarkFlagFilename("baseline", "json", "yaml", "yml")
	return cmd
}

// Complete reads the arguments and the baseline file; nothing touches the
// cluster until Run.
func (o *MeasureOptions) Complete(_ *cobra.Command, args []string) error {
	o.Nodes = args
	var err error
	if o.clients, err = debugClients(o.configFlags); err != nil {
		return usageErr(err)
	}
	if o.Baseline == "" {
		return nil
	}
	f, err := os.Open(o.Baseline)
	if err != nil {
		return usageErr(fmt.Errorf("--baseline: %w", err))
	}
	defer f.Close()
	if o.baseline, err = measure.ReadBaseline(f); err != nil {
		return usageErr(fmt.Errorf("--baseline %s: %w", o.Baseline, err))
	}
	return nil
}

// Validate checks the flags.
func (o *MeasureOptions) Validate() error {
	if err := o.nodeSelection.validate("measure"); err != nil {
		return err
	}
	if o.Duration < measure.MinWindow || o.Duration > measure.MaxWindow {
		return usageErr(fmt.Errorf("--duration must be between %s and %s, got %s", measure.MinWindow, measure.MaxWindow, o.Duration))
	}
	if err := o.PrintFlags.validate(); err != nil {
		return usageErr(err)
	}
	return o.podRunFlags.validate()
}

// measureProbe is measure's per-node pod on the verify engine.
type measureProbe struct{ window time.Duration }

func (p measureProbe) Command() []string { return measure.ProbeCommand(p.window) }

func (p measureProbe) Read(node string, pod *corev1.Pod) (measure.NodeMeasurement, bool) {
	report, reason, message, done := verify.FinishedPod(pod)
	switch {
	case !done:
		return measure.NodeMeasurement{}, false
	case reason != "":
		return measure.Unmeasured(node, reason, message), true
	}
	r, err := measure.ParseReport(report)
	if err != nil {
		return measure.Unmeasured(node, verify.ReasonBadReport, "the probe's report was rejected: "+err.Error()), true
	}
	return measure.FromReport(node, r, p.window), true
}

func (p measureProbe) Failed(node, reason, message string) measure.NodeMeasurement {
	return measure.Unmeasured(node, reason, message)
}

// Run measures the nodes and prints the report, or the comparison with the
// baseline.
func (o *MeasureOptions) Run(ctx context.Context) error {
	cannot := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ExitError{Code: verifyExitCannotRun, Err: err}
	}
	clients := o.clients
	mcAPI, mcErr := machineConfigAPI(clients)
	nodes, err := o.selectNodes(ctx, clients, mcAPI, mcErr)
	if err != nil {
		return cannot(err)
	}
	if len(nodes) == 0 {
		return cannot(errors.New("no nodes matched: nothing to measure"))
	}
	image, err := resolveImage(ctx, clients, o.Image)
	if err != nil {
		return cannot(err)
	}
	sweepStale(ctx, clients, o.ErrOut)
	fmt.Fprintf(o.ErrOut, "Measuring %d node(s) for %s each\n", len(nodes), o.Duration)
	progress := newProgress(o.ErrOut, o.PrintFlags, "Measuring", len(nodes))
	e := o.engine(clients, image, progress)
	e.OnNodeDone = func(r any) {
		if m, ok := r.(measure.NodeMeasurement); ok {
			progress.nodeDone(string(m.State))
		}
	}
	progress.startTicker()
	out, err := verify.RunProbe[measure.NodeMeasurement](ctx, e, nodes,
		verify.RunOptions{Purpose: "measure", Window: o.Duration}, measureProbe{window: o.Duration})
	progress.finish()
	if out != nil && out.Namespace != "" && !o.Keep && out.CleanupErr == nil {
		fmt.Fprintf(o.ErrOut, "Deleted namespace %s\n", out.Namespace)
	}
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && (!interrupted || out == nil || len(out.Results) != len(nodes)) {
		return cannot(err)
	}
	report := measure.NewMeasureReport(o.Duration, out.Results)
	if o.baseline != nil {
		err = o.printComparison(measure.Compare(o.baseline, report))
	} else {
		err = o.printReport(report)
	}
	if err != nil {
		return cannot(err)
	}
	if interrupted {
		return ctx.Err()
	}
	if report.Summary.Unknown > 0 {
		return &ExitError{Code: measureExitUnmeasured}
	}
	return nil
}

func (o *MeasureOptions) printReport(r *measure.MeasureReport) error {
	p := o.PrintFlags
	if !p.human() {
		nodes := make([]string, 0, len(r.Nodes))
		for _, n := range r.Nodes {
			nodes = append(nodes, n.Node)
		}
		return p.printReport(o.Out, r, named(nodeKind, nodes...))
	}
	w := printers.GetNewTabWriter(o.Out)
	wide := p.isWide()
	if !p.NoHeaders {
		header := "NODE\tSTATE\tSYSTEMD-CPU\tMOUNT-UNITS\tMOUNTS(PID1/KUBELET)\tHIDDEN\tCHURN/S\tPODS"
		if wide {
			header += "\tPID1\tMESSAGE"
		}
		fmt.Fprintln(w, header)
	}
	for _, n := range r.Nodes {
		state := string(n.State)
		if n.Reason != "" {
			state += "(" + n.Reason + ")"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s", n.Node, state, percent(n.PID1CPUPercent), count(n.MountUnits),
			count(n.Mounts.PID1), count(n.Mounts.Kubelet), count(n.Mounts.Hidden), rate(n.ChurnPerSecond), count(n.Pods))
		if wide {
			line += "\t" + dash(n.PID1Comm) + "\t" + dash(oneLine(errors.New(n.Message)))
		}
		fmt.Fprintln(w, line)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	s := r.Summary
	_, err := fmt.Fprintf(p.notes(o.Out, o.ErrOut), "%d node(s) measured over %s, %d unknown: systemd CPU avg %s (max %s), %s mount units, %s mounts hidden from systemd.\n",
		s.Measured, r.Duration.Duration, s.Unknown, percent(s.AvgPID1CPUPercent), percent(s.MaxPID1CPUPercent), count(s.MountUnits), count(s.HiddenMounts))
	return err
}

// measureComparison is the -o document of measure --baseline.
type measureComparison struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	measure.Comparison
}

func (o *MeasureOptions) printComparison(c measure.Comparison) error {
	p := o.PrintFlags
	if !p.human() {
		nodes := make([]string, 0, len(c.Nodes))
		for _, n := range c.Nodes {
			nodes = append(nodes, n.Node)
		}
		doc := measureComparison{APIVersion: measure.ReportAPIVersion, Kind: "MeasureComparison", Comparison: c}
		return p.printReport(o.Out, &doc, named(nodeKind, nodes...))
	}
	w := printers.GetNewTabWriter(o.Out)
	if !p.NoHeaders {
		fmt.Fprintln(w, "NODE\tMEASURED\tSYSTEMD-CPU BEFORE\tAFTER\tDIFF\tMOUNT-UNITS BEFORE\tAFTER\tHIDDEN BEFORE\tAFTER")
	}
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, presence(n.Presence),
			percentP(n.CPUBefore), percentP(n.CPUAfter), signedPercentP(n.CPUDelta),
			countP(n.MountUnitsBefore), countP(n.MountUnitsAfter), countP(n.HiddenBefore), countP(n.HiddenAfter))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	cl := c.Cluster
	_, err := fmt.Fprintf(p.notes(o.Out, o.ErrOut), "Cluster (%d node(s) on both sides, %d new, %d gone): systemd CPU avg %s -> %s (%s) over %d node(s); mount units %s -> %s over %d node(s).\n",
		cl.Both, cl.New, cl.Gone, percentP(cl.AvgCPUBefore), percentP(cl.AvgCPUAfter), signedPercentP(cl.AvgCPUDelta), cl.CPUNodes,
		countP(cl.MountUnitsBefore), countP(cl.MountUnitsAfter), cl.UnitNodes)
	return err
}

func presence(p measure.Presence) string {
	switch p {
	case measure.Gone:
		return "before only"
	case measure.New:
		return "after only"
	}
	return "both"
}

func percent(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "%"
}

func rate(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func count(v int) string {
	if v < 0 {
		return "-"
	}
	return strconv.Itoa(v)
}

func percentP(v *float64) string {
	if v == nil {
		return "-"
	}
	return percent(*v)
}

func signedPercentP(v *float64) string {
	if v == nil {
		return "-"
	}
	sign := ""
	if *v > 0 {
		sign = "+"
	}
	return sign + strconv.FormatFloat(*v, 'f', 2, 64) + "%"
}

func countP(v *int) string {
	if v == nil {
		return "-"
	}
	return count(*v)
}
