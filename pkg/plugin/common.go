package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

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
	o.stdinTTY = isTerminal(o.In)
	o.stdoutTTY = isTerminal(o.Out)
	return nil
}

// changeOptions are the flags enable and disable share. Each command
// registers its own --role flag, since the help text differs.
type changeOptions struct {
	Roles   []string
	Yes     bool
	DryRun  string
	Wait    bool
	Timeout time.Duration
}

func (o *changeOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Apply without asking for confirmation (required when stdin is not a terminal).")
	cmd.Flags().StringVar(&o.DryRun, "dry-run", dryRunNone, `Must be "none", "client" (print the plan only) or "server" (the API server validates the change without persisting it).`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunClient
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "After applying, wait until every affected pool has rolled the change out (see `wait`).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", defaultWaitTimeout, "With --wait: how long to wait before giving up.")
}

// validate checks the roles, --timeout and --dry-run.
func (o *changeOptions) validate() error {
	for _, r := range o.Roles {
		if err := manifests.ValidateRole(r); err != nil {
			return err
		}
	}
	if err := validateTimeout(o.Timeout); err != nil {
		return err
	}
	return validateDryRun(o.DryRun)
}

func validateTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", d)
	}
	return nil
}

func validateDryRun(v string) error {
	switch v {
	case dryRunNone, dryRunClient, dryRunServer:
		return nil
	}
	return fmt.Errorf(`invalid --dry-run %q: use "none", "client" or "server"`, v)
}

// printStructured writes v as indented JSON or as YAML when format is
// "json" or "yaml", and reports whether it did; any other format is left
// to the caller's own text output.
func printStructured(w io.Writer, format string, v any) (bool, error) {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return true, err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return true, err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}
