package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/internal/version"
)

// The -o document of version: the build information with an apiVersion
// and kind, like every document the plugin prints.
const (
	versionAPIVersion = "oc-kubens.io/v1alpha1"
	versionKind       = "Version"
)

// versionDocument is what version -o prints.
type versionDocument struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	version.Info
}

// VersionOptions holds the flags of `oc kubens version`.
type VersionOptions struct {
	PrintFlags *printFlags

	genericiooptions.IOStreams
}

// NewCmdVersion returns the version command. It never contacts a cluster;
// the ConfigFlags parameter keeps the constructor shape of every subcommand.
func NewCmdVersion(_ *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{PrintFlags: newPrintFlags(textOutput, ""), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of the plugin",
		Long: `Print the version, git commit and build date of this plugin binary, and the
Go version and platform it was built for. Does not contact the cluster.`,
		Example: `  # Print the version
  oc kubens version

  # Print it as JSON, for scripts (apiVersion oc-kubens.io/v1alpha1, kind Version)
  oc kubens version -o json

  # Only the version
  oc kubens version -o jsonpath='{.version}'`,
		Args: noArgs,
		RunE: runCommand(o),
	}
	o.PrintFlags.addFlags(cmd, "text", "version.oc-kubens.io/VERSION")
	return cmd
}

// Complete has nothing to fill in; it exists to keep the pattern uniform.
func (o *VersionOptions) Complete(_ *cobra.Command, _ []string) error { return nil }

// Validate checks the output format.
func (o *VersionOptions) Validate() error { return o.PrintFlags.validate() }

// Run prints the build information.
func (o *VersionOptions) Run(_ context.Context) error {
	info := version.Get()
	if !o.PrintFlags.human() {
		doc := versionDocument{APIVersion: versionAPIVersion, Kind: versionKind, Info: info}
		kind := schema.FromAPIVersionAndKind(versionAPIVersion, versionKind)
		return o.PrintFlags.printReport(o.Out, &doc, named(kind, info.Version))
	}
	_, err := fmt.Fprintf(o.Out, "Version:    %s\nGit commit: %s\nBuild date: %s\nGo version: %s\nPlatform:   %s\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
