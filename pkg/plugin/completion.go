package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// completionShells lists the shells cobra can write scripts for.
func completionShells() []string { return []string{"bash", "zsh", "fish", "powershell"} }

// CompletionOptions holds the arguments of `oc kubens completion`.
type CompletionOptions struct {
	Shell string

	root *cobra.Command
	genericiooptions.IOStreams
}

// NewCmdCompletion returns the completion command, which prints a shell
// completion script for the plugin binary.
func NewCmdCompletion(_ *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CompletionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "completion SHELL",
		Short: "Print a shell completion script (bash, zsh, fish, powershell)",
		Long: `Print a completion script for the {{bin}} binary in the given shell's
language. Load it in the current shell or install it where your shell looks
for completions. The script completes commands and flags; it asks the binary
itself (its hidden __complete command) for dynamic values.`,
		Example: `  # bash, current session
  source <({{bin}} completion bash)

  # bash, permanently
  {{bin}} completion bash > ~/.local/share/bash-completion/completions/{{bin}}

  # zsh (compinit must be active)
  {{bin}} completion zsh > "${fpath[1]}/_{{bin}}"

  # fish
  {{bin}} completion fish > ~/.config/fish/completions/{{bin}}.fish

  # PowerShell
  {{bin}} completion powershell | Out-String | Invoke-Expression`,
		ValidArgs:             completionShells(),
		DisableFlagsInUseLine: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return newUsageError(cmd, fmt.Errorf("name one shell: %s", strings.Join(completionShells(), ", ")))
			}
			return nil
		},
		RunE: runCommand(o),
	}
	return cmd
}

// Complete records the shell and the root command to generate for.
func (o *CompletionOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Shell = args[0]
	o.root = cmd.Root()
	return nil
}

// Validate checks the shell name.
func (o *CompletionOptions) Validate() error {
	for _, s := range completionShells() {
		if o.Shell == s {
			return nil
		}
	}
	return fmt.Errorf("unsupported shell %q: use one of %s", o.Shell, strings.Join(completionShells(), ", "))
}

// Run writes the script to Out.
func (o *CompletionOptions) Run(_ context.Context) error {
	switch o.Shell {
	case "bash":
		return o.root.GenBashCompletionV2(o.Out, true)
	case "zsh":
		return o.root.GenZshCompletion(o.Out)
	case "fish":
		return o.root.GenFishCompletion(o.Out, true)
	default:
		return o.root.GenPowerShellCompletionWithDesc(o.Out)
	}
}
