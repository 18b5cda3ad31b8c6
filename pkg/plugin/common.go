package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	mcfgscheme "github.com/openshift/client-go/machineconfiguration/clientset/versioned/scheme"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// clusterOptions is the state the control commands (enable, disable, wait,
// status) share: the kubectl flags they read, the clients their Complete
// builds from them, and the streams. Each command embeds it in its own
// options struct, which keeps its own Complete, Validate and Run.
type clusterOptions struct {
	configFlags *genericclioptions.ConfigFlags
	clients     *clusterClients
	// stdinTTY / stdoutTTY: confirmation needs a person at a terminal;
	// progress redraws in place only on one.
	stdinTTY, stdoutTTY bool
	// displayName is how the user runs us ("oc kubens", "kubectl kubens"),
	// for advice that names a command.
	displayName string

	genericiooptions.IOStreams
}

// completeClients builds the clients, looks at the terminal and reads the
// display name off the root command.
func (o *clusterOptions) completeClients(cmd *cobra.Command) error {
	o.displayName = ocDisplayName
	if cmd != nil {
		if d := cmd.Root().Annotations[cobra.CommandDisplayNameAnnotation]; d != "" {
			o.displayName = d
		}
	}
	c, err := newClusterClients(o.configFlags)
	if err != nil {
		return err
	}
	o.clients = c
	o.stdinTTY = printers.IsTerminal(o.In)
	o.stdoutTTY = printers.IsTerminal(o.Out)
	return nil
}

// changeOptions are the flags enable, disable, wrap and unwrap share. Each
// command registers its own --role flag, since the help text differs.
type changeOptions struct {
	Roles   []string
	Yes     bool
	Wait    bool
	Timeout time.Duration
	// DryRun is --dry-run, read in Complete.
	DryRun cmdutil.DryRunStrategy
	// PrintFlags is -o: without it, one kubectl line per MachineConfig
	// ("... created"); with it, the objects, and the plan on stderr.
	PrintFlags *printFlags
}

func newChangeOptions() changeOptions {
	return changeOptions{PrintFlags: newPrintFlags(textOutput, "")}
}

func (o *changeOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Apply without asking for confirmation (required when stdin is not a terminal).")
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "After applying, wait until every affected pool has rolled the change out (see `wait`).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", defaultWaitTimeout, "With --wait: how long to wait before giving up.")
	o.PrintFlags.addFlags(cmd, "one line per MachineConfig", "machineconfig.machineconfiguration.openshift.io/<name> per MachineConfig")
}

// complete reads --dry-run.
func (o *changeOptions) complete(cmd *cobra.Command) error {
	var err error
	o.DryRun, err = cmdutil.GetDryRunStrategy(cmd)
	return err
}

// validate checks the roles, --timeout and -o.
func (o *changeOptions) validate() error {
	for _, r := range o.Roles {
		if err := manifests.ValidateRole(r); err != nil {
			return err
		}
	}
	if err := validateTimeout(o.Timeout); err != nil {
		return err
	}
	if o.PrintFlags == nil {
		return nil
	}
	return o.PrintFlags.validate()
}

// humanOut is where the plan, the notes and the wait's progress go:
// stdout, or stderr when -o keeps stdout for the objects.
func (o *changeOptions) humanOut(streams genericiooptions.IOStreams) io.Writer {
	if o.structured() {
		return streams.ErrOut
	}
	return streams.Out
}

// structured tells whether -o asks for objects rather than lines.
func (o *changeOptions) structured() bool {
	return o.PrintFlags != nil && !o.PrintFlags.human()
}

// printResults prints what happened to each MachineConfig: by default
// kubectl's "machineconfig.machineconfiguration.openshift.io/NAME created"
// lines (with "(dry run)" or "(server dry run)"); with -o the objects, as a
// v1 List when there are several (as kubectl apply does), leaving out the
// ones that are not ours.
func (o *changeOptions) printResults(w io.Writer, results []change.Result) error {
	if !o.structured() {
		for _, r := range results {
			if r.Object == nil {
				continue // a role's wrap config that neither exists nor will
			}
			op := r.Operation
			if r.Change.Action == change.Foreign {
				op += " (not created by oc-kubens)"
			}
			pf := cmdutil.PrintFlagsWithDryRunStrategy(genericclioptions.NewPrintFlags(op).WithTypeSetter(mcfgscheme.Scheme), o.DryRun)
			p, err := pf.ToPrinter()
			if err != nil {
				return err
			}
			if err := p.PrintObj(r.Object, w); err != nil {
				return err
			}
		}
		return nil
	}
	var objs []runtime.Object
	for _, r := range results {
		if r.Change.Action != change.Foreign && r.Object != nil {
			objs = append(objs, r.Object)
		}
	}
	p := o.PrintFlags.printer
	if len(objs) == 1 || (len(objs) > 1 && o.PrintFlags.format() == "name") {
		for _, obj := range objs {
			if err := p.PrintObj(obj, w); err != nil {
				return err
			}
		}
		return nil
	}
	list := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []runtime.RawExtension{}}
	for _, obj := range objs {
		list.Items = append(list.Items, runtime.RawExtension{Object: obj})
	}
	return p.PrintObj(list, w)
}

func validateTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", d)
	}
	return nil
}

// command is the kubectl options pattern every command follows.
type command interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runCommand is a command's RunE: Complete, Validate, then Run with the
// command's context (cancelled on Ctrl-C, SIGTERM and SIGHUP).
func runCommand(o command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
