// Package plugin holds the oc-kubens command tree: one cobra command and one
// options struct (Complete, Validate, Run) per subcommand, all reading the
// standard kubectl flags from the ConfigFlags the root command owns.
package plugin

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
)

const (
	// ocDisplayName is how the command appears when oc runs the oc-kubens
	// binary. Help texts and examples are written with it.
	ocDisplayName = "oc kubens"
	// kubectlDisplayName is how it appears when run as kubectl-kubens, the
	// name krew installs (oc finds that name too).
	kubectlDisplayName = "kubectl kubens"
)

// Execute runs the plugin. args are the process arguments, args[0] being the
// program name, which picks the display name (oc-kubens -> "oc kubens",
// kubectl-kubens -> "kubectl kubens"). It returns the process exit code: 0 on
// success, the code of an *ExitError, 130 on Ctrl-C, and 1 for any other
// error, which is printed as a single "error: ..." line on streams.ErrOut.
func Execute(args []string, streams genericiooptions.IOStreams) int {
	program := ""
	if len(args) > 0 {
		program, args = args[0], args[1:]
	}
	cmd := NewCmdKubens(streams, DisplayName(program))
	// An empty, non-nil slice: cobra falls back to os.Args on nil.
	cmd.SetArgs(append([]string{}, args...))

	// Commands see Ctrl-C / SIGTERM / SIGHUP as cancellation of cmd.Context() so they
	// can clean up (verify deletes its namespace). A second Ctrl-C kills the
	// process the usual way.
	// SIGHUP (the terminal went away) counts as SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	err := cmd.ExecuteContext(ctx)
	return reportError(streams.ErrOut, err, ctx.Err() != nil)
}

// DisplayName maps the program name to the name shown in usage, help and
// errors: "kubectl kubens" for kubectl-kubens, "oc kubens" otherwise.
func DisplayName(program string) string {
	// Cut at either separator: the name may be a Windows path (krew ships
	// kubectl-kubens.exe there) and this code is tested on Linux.
	base := program[strings.LastIndexAny(program, `/\`)+1:]
	base = strings.TrimSuffix(base, ".exe")
	if strings.HasPrefix(base, "kubectl-") {
		return kubectlDisplayName
	}
	return ocDisplayName
}

// NewCmdKubens builds the whole command tree. displayName is "oc kubens" or
// "kubectl kubens" (see DisplayName).
func NewCmdKubens(streams genericiooptions.IOStreams, displayName string) *cobra.Command {
	configFlags := genericclioptions.NewConfigFlags(true)
	// API warnings (deprecations, pod security, "a DNS label is
	// recommended") go to stderr as kubectl prints them, "Warning: ...",
	// once each, not as raw klog lines.
	warnings := newWarningWriter(streams.ErrOut)
	configFlags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		if c.WarningHandler == nil && c.WarningHandlerWithContext == nil {
			c.WarningHandler = warnings
		}
		return c
	}

	cmd := &cobra.Command{
		// The binary's name, which shell completion registers for.
		Use:   strings.ReplaceAll(displayName, " ", "-"),
		Short: "Turn on, check and undo OpenShift mount namespace encapsulation",
		Long: `Mount namespace encapsulation moves kubelet and CRI-O into a private mount
namespace, so systemd stops scanning the thousands of container mounts and
uses far less CPU. It is an OpenShift Technology Preview feature, off by
default, switched on per machine config pool by a MachineConfig that enables
kubens.service.

This plugin renders, applies, waits for, checks and removes that switch.
Changing it makes the Machine Config Operator drain and REBOOT EVERY NODE of
each affected pool, maxUnavailable at a time.`,
		Example: `  # See the plan: pools, node counts, what reboots (changes nothing)
  oc kubens enable --dry-run=client

  # Turn it on and wait until every pool has rolled it out (nodes reboot)
  oc kubens enable --yes --wait

  # Where does each pool and node stand, and is every node really encapsulated?
  oc kubens status
  oc kubens verify --all-nodes

  # Print the MachineConfigs instead, for review or GitOps
  oc kubens render`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: displayName,
		},
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		RunE:                       runRoot,
		SilenceErrors:              true, // Execute prints errors, on one line
		SilenceUsage:               true, // no usage dump on runtime errors
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true, // our own completion command documents itself
		},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return newUsageError(c, err)
	})
	configFlags.AddFlags(cmd.PersistentFlags())

	// Subcommands: one line each.
	cmd.AddCommand(NewCmdRender(configFlags, streams))
	cmd.AddCommand(NewCmdVersion(configFlags, streams))
	cmd.AddCommand(NewCmdCompletion(configFlags, streams))
	cmd.AddCommand(NewCmdEnable(configFlags, streams))
	cmd.AddCommand(NewCmdDisable(configFlags, streams))
	cmd.AddCommand(NewCmdWait(configFlags, streams))
	cmd.AddCommand(NewCmdStatus(configFlags, streams))
	cmd.AddCommand(NewCmdVerify(configFlags, streams))
	cmd.AddCommand(NewCmdMeasure(configFlags, streams))
	cmd.AddCommand(NewCmdExec(configFlags, streams))
	cmd.AddCommand(NewCmdWrap(configFlags, streams))
	cmd.AddCommand(NewCmdUnwrap(configFlags, streams))
	// Node, pool, role and -o completions (complete.go).
	RegisterCompletions(cmd, configFlags)

	localizeExamples(cmd, displayName)
	return cmd
}

// runRoot prints help when called without a subcommand and turns a mistyped
// subcommand into a one-line usage error with a suggestion.
func runRoot(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return newUsageError(cmd, fmt.Errorf("%s", msg))
}

// binPlaceholder stands, in help texts and examples, for the binary's name
// as the user runs it (oc-kubens or kubectl-kubens). Help texts name the
// command "oc kubens", which localizeExamples turns into the display name.
// "oc-kubens" itself is never rewritten: it also names the product, its
// labels (oc-kubens.io/...), its field manager and its schemas.
const binPlaceholder = "{{bin}}"

// localizeExamples rewrites help texts and examples, which are written for
// "oc kubens" with {{bin}} for the binary, for the name this process runs
// under.
func localizeExamples(cmd *cobra.Command, displayName string) {
	r := strings.NewReplacer(
		ocDisplayName, displayName,
		binPlaceholder, strings.ReplaceAll(displayName, " ", "-"),
	)
	cmd.Long = r.Replace(cmd.Long)
	cmd.Example = r.Replace(cmd.Example)
	for _, c := range cmd.Commands() {
		localizeExamples(c, displayName)
	}
}
