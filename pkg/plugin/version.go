package plugin

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/internal/version"
)

// VersionOptions holds the flags of `oc kubens version`.
type VersionOptions struct {
	Output string

	genericiooptions.IOStreams
}

// NewCmdVersion returns the version command. It never contacts a cluster;
// the ConfigFlags parameter keeps the constructor shape of every subcommand.
func NewCmdVersion(_ *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of the plugin",
		Long: `Print the version, git commit and build date of this plugin binary, and the
Go version and platform it was built for. Does not contact the cluster.`,
		Example: `  # Print the version
  oc kubens version

  # Print it as JSON, for scripts
  oc kubens version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: empty for text, json or yaml.")
	return cmd
}

// Complete has nothing to fill in; it exists to keep the pattern uniform.
func (o *VersionOptions) Complete(_ *cobra.Command, _ []string) error { return nil }

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unsupported output format %q: use -o json or -o yaml, or leave -o out for text", o.Output)
}

// Run prints the build information.
func (o *VersionOptions) Run() error {
	info := version.Get()
	if done, err := printStructured(o.Out, o.Output, info); done {
		return err
	}
	_, err := fmt.Fprintf(o.Out, "Version:    %s\nGit commit: %s\nBuild date: %s\nGo version: %s\nPlatform:   %s\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
