// Command gendocs writes the per-command reference pages under
// docs/reference/ from the cobra command tree, so the pages say exactly what
// `oc kubens CMD --help` says. `make docs` runs it; gendocs_test.go fails
// when the committed pages differ from what it would write now (a flag, a
// help text or a command changed without `make docs`).
//
// Usage: go run ./hack/gendocs [DIR]   (default docs/reference)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
)

func main() {
	dir := "docs/reference"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := generate(newRoot(), dir); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// newRoot is the command tree as `oc kubens` shows it, with defaults that
// depend on the machine (the home folder in --cache-dir) written as $HOME so
// the pages are the same wherever they are generated.
func newRoot() *cobra.Command {
	root := plugin.NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), "oc kubens")
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		unhome := func(f *pflag.Flag) { f.DefValue = strings.ReplaceAll(f.DefValue, home, "$HOME") }
		root.PersistentFlags().VisitAll(unhome)
		for _, c := range root.Commands() {
			c.Flags().VisitAll(unhome)
		}
	}
	return root
}

// generate replaces the Markdown pages in dir with fresh ones for root's
// tree. The pages carry no generation date, so regenerating an unchanged
// tree changes nothing.
func generate(root *cobra.Command, dir string) error {
	disableAutoGenTag(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Remove the old pages first so a removed command loses its page.
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return doc.GenMarkdownTree(root, dir)
}

func disableAutoGenTag(cmd *cobra.Command) {
	cmd.DisableAutoGenTag = true
	for _, c := range cmd.Commands() {
		disableAutoGenTag(c)
	}
}
