package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	imagev1 "github.com/openshift/api/image/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	imagev1client "github.com/openshift/client-go/image/clientset/versioned/typed/image/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// Exit codes of verify (see its help).
const (
	verifyExitNotExpected = 1
	verifyExitCannotRun   = 2
)

// clientQPS and clientBurst replace client-go's default of 5 requests per
// second, which would make creating 1000 pods take over three minutes. They
// are a ceiling, not the pace: the engine keeps a few pod creations in
// flight, so a slower API server gets fewer requests per second by itself,
// and its priority and fairness (429 with Retry-After, which client-go
// waits out and retries) still protects the cluster. At 100 per second the
// ceiling alone made 5000 nodes take 50 s of pod creations.
const (
	clientQPS   = 500
	clientBurst = 1000
)

// VerifyOptions holds the flags and state of `oc kubens verify`.
type VerifyOptions struct {
	configFlags *genericclioptions.ConfigFlags

	nodeSelection
	podRunFlags
	Expect string
	// PrintFlags is -o: a table when empty.
	PrintFlags *printFlags

	clients  *clusterClients
	expect   verify.State
	nodeObjs []corev1.Node
	expected *verify.ExpectedResolver

	genericiooptions.IOStreams
}

// NewCmdVerify returns the verify command.
func NewCmdVerify(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VerifyOptions{configFlags: configFlags, PrintFlags: newPrintFlags(tableOutput, ""), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "verify [NODE...] [--all-nodes | -l SELECTOR | --pool NAME]",
		Short: "Prove on every node that kubelet and the runtime run in their own mount namespace",
		Long: `Check on the nodes themselves whether mount namespace encapsulation is in
effect: the manual round of "oc debug node/NAME", "chroot /host" and readlink
/proc/{1,kubelet,crio}/ns/mnt, for every node at once.

verify makes one temporary namespace, runs one short privileged pod per node
(--parallelism at a time) that reads the mount namespaces of PID 1, kubelet
and the runtime (CRI-O, else containerd), and deletes the namespace at the
end, also on Ctrl-C. Without --parallelism, 100 pods run at once, or a fifth
of the nodes when that is more (at most 1000): up to 5000 nodes take at most
5 waves. Pod creations stay a few at a time whatever the parallelism, and the
API server's 429 answers are retried after their Retry-After. Each node ends
in one state:

  Encapsulated      kubelet and the runtime share a namespace that is not PID 1's
  NotEncapsulated   all three share PID 1's namespace
  Split             kubelet and the runtime are in different namespaces: broken,
                    pods lose secret and configmap mounts; reboot the node
  Unknown(REASON)   no verdict: NodeNotReady, Timeout, ImagePullBackOff,
                    Forbidden, ProcessMissing, ...

EXPECTED is what the node's current rendered MachineConfig asks for (- when
the cluster has no MachineConfig API, Unknown when discovery failed). CHECKS lists failed extra checks: the
pinned namespace is kubelet's, KUBENSMNT is set, the unit is enabled and
active, /run/netns is a mount point, the units the node's config wraps (oc
kubens wrap) run in kubelet's namespace. -o wide adds namespaces and the mounts
hidden from systemd; -o json, yaml, jsonpath or go-template print a
VerifyReport (oc-kubens.io/v1alpha1), -o name node/NAME per node. When
stderr is a terminal and the output is the table, a live line there shows
the nodes done out of the total, their states so far and the time taken.

Exit status: 0 when every node is in the --expect state, 1 when any is not
(Unknown included), 2 when verify could not run at all.`,
		Example: `  # Check every node after enabling encapsulation
  oc kubens verify --all-nodes

  # Check the worker pool after disabling it again
  oc kubens verify --pool worker --expect not-encapsulated

  # Two nodes, with namespaces and mount counts
  oc kubens verify node-a node-b -o wide

  # Outside OpenShift, name an image with a POSIX shell
  oc kubens verify --all-nodes --image busybox:1.36`,
		RunE: runCommand(o),
	}
	// A mistyped flag means verify could not run: exit 2, like every other
	// "could not run", so scripts can tell it from "a node is not as expected".
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: verifyExitCannotRun, Err: newUsageError(c, err)}
	})
	f := cmd.Flags()
	o.nodeSelection.addFlags(cmd, "Verify")
	o.podRunFlags.addFlags(cmd)
	f.StringVar(&o.Expect, "expect", "encapsulated", "The state every node must be in for exit status 0: encapsulated or not-encapsulated.")
	o.PrintFlags.addFlags(cmd, "a table and a summary line; wide adds namespaces, mounts and messages", "node/NAME per verified node")
	_ = cmd.RegisterFlagCompletionFunc("expect", cobra.FixedCompletions([]string{"encapsulated", "not-encapsulated"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// addDebugPodFlags adds the flags verify and exec share for their pods.
func addDebugPodFlags(cmd *cobra.Command, image, policy *string) {
	cmd.Flags().StringVar(image, "image", "", "Image of the debug pods; it needs a POSIX sh (busybox is enough). Default on OpenShift: the image oc debug uses (openshift/tools:latest, else "+verify.OpenShiftToolsImage+"). Required elsewhere.")
	cmd.Flags().StringVar(policy, "image-pull-policy", "", "Pull policy of the debug pods: Always, IfNotPresent or Never. Default: the cluster's.")
	_ = cmd.RegisterFlagCompletionFunc("image-pull-policy", cobra.FixedCompletions([]string{"Always", "IfNotPresent", "Never"}, cobra.ShellCompDirectiveNoFileComp))
}

// Complete reads the arguments. Nothing touches the cluster until Run.
func (o *VerifyOptions) Complete(_ *cobra.Command, args []string) error {
	o.Nodes = args
	switch strings.ToLower(o.Expect) {
	case "encapsulated":
		o.expect = verify.Encapsulated
	case "not-encapsulated", "notencapsulated":
		o.expect = verify.NotEncapsulated
	}
	var err error
	if o.clients, err = debugClients(o.configFlags); err != nil {
		return usageErr(err)
	}
	return nil
}

// Validate checks the flags.
func (o *VerifyOptions) Validate() error {
	if err := o.nodeSelection.validate("verify"); err != nil {
		return err
	}
	if o.expect == "" {
		return usageErr(fmt.Errorf("--expect must be encapsulated or not-encapsulated, got %q", o.Expect))
	}
	if err := o.PrintFlags.validate(); err != nil {
		return usageErr(err)
	}
	return o.podRunFlags.validate()
}

// usageErr marks flag mistakes; they exit 2 like every "could not run".
func usageErr(err error) error {
	return &ExitError{Code: verifyExitCannotRun, Err: err}
}

// validatePullPolicy is checkPullPolicy for verify and measure, whose flag
// mistakes exit 2 ("could not run").
func validatePullPolicy(p string) error {
	if err := checkPullPolicy(p); err != nil {
		return usageErr(err)
	}
	return nil
}

// checkPullPolicy checks --image-pull-policy; commands without exit codes
// of their own (exec, wrap) exit 1 on it, like on any error.
func checkPullPolicy(p string) error {
	switch corev1.PullPolicy(p) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return nil
	}
	return fmt.Errorf("--image-pull-policy must be Always, IfNotPresent or Never, got %q", p)
}

// debugClients builds the clients with a rate limit fit for one request
// per node.
func debugClients(f *genericclioptions.ConfigFlags) (*clusterClients, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	return clientsForConfig(cfg)
}

// cannotRun is the error of a verify that could not run (exit 2), or the
// context's when it was interrupted (Ctrl-C, SIGTERM, SIGHUP) before the
// probes ran: exit 130, not "could not run".
func cannotRun(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &ExitError{Code: verifyExitCannotRun, Err: err}
}

// Run probes the nodes and prints the report.
func (o *VerifyOptions) Run(ctx context.Context) error {
	cannot := func(err error) error { return cannotRun(ctx, err) }
	var err error
	mcAPI, mcErr := machineConfigAPI(o.clients)
	if mcErr != nil {
		// Only NotFound means "no MachineConfig API": a Forbidden or a
		// timeout says nothing either way, so EXPECTED is unknown, not "-".
		fmt.Fprintf(o.ErrOut, "warning: %s; EXPECTED is unknown\n", oneLine(mcErr))
	}
	if o.nodeObjs, err = o.selectNodes(ctx, o.clients, mcAPI, mcErr); err != nil {
		return cannot(err)
	}
	if len(o.nodeObjs) == 0 {
		return cannot(errors.New("no nodes matched: nothing to verify"))
	}
	image, err := resolveImage(ctx, o.clients, o.Image)
	if err != nil {
		return cannot(err)
	}
	return o.probe(ctx, image, mcAPI, mcErr)
}

// probe runs the probes on the selected nodes and prints the report: Run
// from the point where the nodes and the image are known.
func (o *VerifyOptions) probe(ctx context.Context, image string, mcAPI bool, mcErr error) error {
	cannot := func(err error) error { return cannotRun(ctx, err) }
	if mcAPI {
		mc := o.clients.mcfg.MachineconfigurationV1().MachineConfigs()
		o.expected = &verify.ExpectedResolver{Get: func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error) {
			return mc.Get(ctx, name, metav1.GetOptions{})
		}}
	}
	// The wrapped units are the probe's arguments, so the rendered configs
	// are read before the pods start; the resolver keeps each one for
	// fillExpected afterwards.
	wrapped := o.wrappedUnits(ctx)

	sweepStale(ctx, o.clients, o.ErrOut)
	progress := newProgress(o.ErrOut, o.PrintFlags, "Verifying", len(o.nodeObjs))
	e := o.engine(o.clients, image, progress)
	e.OnNodeDone = func(r any) {
		if nr, ok := r.(verify.NodeResult); ok {
			progress.nodeDone(string(nr.State))
		}
	}
	progress.startTicker()
	out, err := e.RunWithUnits(ctx, o.nodeObjs, wrapped)
	progress.finish()
	if tooMany := new(verify.TooManyUnitsError); errors.As(err, &tooMany) {
		err = fmt.Errorf("%w: verify fewer nodes at a time (NODE..., -l or --pool)", err)
	}
	if out != nil && out.Namespace != "" && !o.Keep && out.CleanupErr == nil {
		fmt.Fprintf(o.ErrOut, "Deleted namespace %s\n", out.Namespace)
	}
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && (!interrupted || out == nil || len(out.Results) != len(o.nodeObjs)) {
		if interrupted {
			return ctx.Err()
		}
		return cannot(err)
	}
	if interrupted {
		// On Ctrl-C / SIGTERM / SIGHUP the nodes that finished keep their
		// results and the rest are Unknown(Interrupted): print them all,
		// then exit 130.
		markInterrupted(out.Results, o.nodeObjs)
	}
	// No request here: the resolver read every node's rendered config
	// before the pods started (wrappedUnits), so a cancelled ctx is fine.
	o.fillExpected(ctx, out.Results, mcErr != nil)
	report := verify.NewReport(o.expect, out.Results)
	if err := o.printReport(report); err != nil {
		return cannot(err)
	}
	if interrupted {
		return ctx.Err()
	}
	if !report.AllAsExpected() {
		return &ExitError{Code: verifyExitNotExpected}
	}
	return nil
}

// printReport prints the report in the -o format.
func (o *VerifyOptions) printReport(report *verify.VerifyReport) error {
	p := o.PrintFlags
	if p == nil { // an Options built by hand (tests): the default table
		p = newPrintFlags(tableOutput, "")
	}
	if p.human() {
		return printVerifyTable(o.Out, p.notes(o.Out, o.ErrOut), report, p.isWide(), p.NoHeaders)
	}
	nodes := make([]string, 0, len(report.Nodes))
	for _, n := range report.Nodes {
		nodes = append(nodes, n.Node)
	}
	return p.printReport(o.Out, report, named(nodeKind, nodes...))
}

// markInterrupted gives every node without a result Unknown(Interrupted).
func markInterrupted(results []verify.NodeResult, nodes []corev1.Node) {
	for i := range results {
		if results[i].Node == "" {
			results[i] = verify.NodeResult{Node: nodes[i].Name, State: verify.StateUnknown, Reason: verify.ReasonInterrupted,
				Message: "verify was interrupted before this node's probe finished"}
		}
	}
}

// machineConfigAPI tells whether the cluster serves the MachineConfig API.
// err is set when that cannot be told (forbidden, timeout, server error):
// only a NotFound from discovery means the API is missing.
func machineConfigAPI(c *clusterClients) (have bool, err error) {
	err = c.requireMachineConfigAPI()
	if errors.Is(err, errNoMachineConfigAPI) {
		return false, nil
	}
	return err == nil, err
}

// wrappedUnits maps each node to the units its current rendered config
// wraps with kubensenter; nil without the MachineConfig API.
func (o *VerifyOptions) wrappedUnits(ctx context.Context) map[string][]string {
	if o.expected == nil {
		return nil
	}
	out := map[string][]string{}
	for i := range o.nodeObjs {
		if w := o.expected.WrappedFor(ctx, &o.nodeObjs[i]); len(w) > 0 {
			out[o.nodeObjs[i].Name] = w
		}
	}
	return out
}

// fillExpected sets each result's EXPECTED state: from the node's rendered
// config where the MachineConfig API exists, Unknown where it could not be
// told whether the API exists (mcUnknown), and left empty ("-") where the
// cluster has none.
func (o *VerifyOptions) fillExpected(ctx context.Context, results []verify.NodeResult, mcUnknown bool) {
	for i := range results {
		switch {
		case mcUnknown:
			results[i].Expected = verify.StateUnknown
		case o.expected != nil:
			results[i].Expected = o.expected.For(ctx, &o.nodeObjs[i])
		}
	}
}

// resolveImage picks the debug pod image the way oc debug does: the flag,
// else the openshift/tools:latest image stream, else the support-tools
// image; outside OpenShift the flag is required.
func resolveImage(ctx context.Context, c *clusterClients, flag string) (string, error) {
	return pickImage(ctx, c.disc, func(ctx context.Context) (*imagev1.ImageStream, error) {
		images, err := imagev1client.NewForConfig(c.config)
		if err != nil {
			return nil, err
		}
		return images.ImageStreams("openshift").Get(ctx, "tools", metav1.GetOptions{})
	}, flag)
}

// pickImage is resolveImage with the image stream lookup passed in.
func pickImage(ctx context.Context, disc discovery.DiscoveryInterface, toolsStream func(context.Context) (*imagev1.ImageStream, error), flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if _, err := disc.ServerResourcesForGroupVersion("image.openshift.io/v1"); err != nil {
		if apierrors.IsNotFound(err) {
			return "", errors.New("--image is required on clusters without OpenShift's image API: name an image with a POSIX sh that every node can pull, e.g. --image=busybox:1.36 (host tools are used through chroot /host)")
		}
		return "", explainAPIError(err, "discover the image API")
	}
	// Any failure to read the stream (missing, forbidden) falls back, as
	// oc debug does.
	if is, err := toolsStream(ctx); err == nil {
		for _, tag := range is.Status.Tags {
			if tag.Tag == "latest" && len(tag.Items) > 0 && tag.Items[0].DockerImageReference != "" {
				return tag.Items[0].DockerImageReference, nil
			}
		}
	}
	return verify.OpenShiftToolsImage, nil
}

// sweepStale removes the namespaces of crashed runs; failures only warn.
func sweepStale(ctx context.Context, c *clusterClients, log interface{ Write([]byte) (int, error) }) {
	deleted, err := verify.SweepStale(ctx, c.kube, time.Now())
	for _, ns := range deleted {
		fmt.Fprintf(log, "Deleted stale namespace %s left by an earlier run\n", ns)
	}
	if err != nil && !apierrors.IsForbidden(err) {
		fmt.Fprintf(log, "warning: could not remove stale namespaces of earlier runs: %v\n", err)
	}
}
