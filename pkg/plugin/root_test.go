package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestDisplayName(t *testing.T) {
	tests := map[string]string{
		"oc-kubens":                      "oc kubens",
		"/usr/local/bin/oc-kubens":       "oc kubens",
		"kubectl-kubens":                 "kubectl kubens",
		"/root/.krew/bin/kubectl-kubens": "kubectl kubens",
		`C:\krew\bin\kubectl-kubens.exe`: "kubectl kubens",
		"plugin.test":                    "oc kubens",
		"":                               "oc kubens",
	}
	for program, want := range tests {
		if got := DisplayName(program); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", program, got, want)
		}
	}
}

func TestHelpShowsDisplayName(t *testing.T) {
	for _, tt := range []struct{ program, name, other string }{
		{"/usr/bin/oc-kubens", "oc kubens", "kubectl kubens"},
		{"/usr/bin/kubectl-kubens", "kubectl kubens", "oc kubens"},
	} {
		for _, args := range [][]string{{"--help"}, {}, {"render", "--help"}, {"help", "version"}} {
			t.Run(tt.name+" "+strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := run(t, tt.program, args...)
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				if !strings.Contains(out, "Usage:\n  "+tt.name+" ") {
					t.Errorf("usage line does not name %q:\n%s", tt.name, out)
				}
				if strings.Contains(out, tt.other) {
					t.Errorf("help mentions %q:\n%s", tt.other, out)
				}
			})
		}
	}
	_, errOut, _ := run(t, "kubectl-kubens", "render", "x")
	if !strings.Contains(errOut, "'kubectl kubens render --help'") {
		t.Errorf("error does not use the display name: %q", errOut)
	}
}

// The help of every command, under both names: the display name is the
// only name of the command, the binary's name follows it, and what only
// looks like the name (labels, the field manager, schemas) stays as it is.
func TestWholeHelpTreeLocalized(t *testing.T) {
	for _, tt := range []struct{ display, bin, other, otherBin string }{
		{"oc kubens", "oc-kubens", "kubectl kubens", "kubectl-kubens"},
		{"kubectl kubens", "kubectl-kubens", "oc kubens", "oc-kubens completion"},
	} {
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			text := c.Long + "\n" + c.Example
			for _, bad := range []string{tt.other, tt.otherBin, "{{", "kubectl-kubens.io", "field manager kubectl-kubens"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s: help of %q holds %q", tt.display, c.CommandPath(), bad)
				}
			}
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}
		root := NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), tt.display)
		walk(root)
		completion, _, err := root.Find([]string{"completion"})
		if err != nil || !strings.Contains(completion.Example, tt.bin+" completion bash > ~/.local/share/bash-completion/completions/"+tt.bin) {
			t.Errorf("%s: completion examples name another binary: %v\n%s", tt.display, err, completion.Example)
		}
		enable, _, _ := root.Find([]string{"enable"})
		if !strings.Contains(enable.Long, "field manager oc-kubens") {
			t.Errorf("%s: enable's help lost the field manager's name:\n%s", tt.display, enable.Long)
		}
	}
}

// TestEveryCommandDocumented walks the whole tree, including commands added
// later, and requires a description and examples on each.
func TestEveryCommandDocumented(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q needs Short, Long and Example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), ocDisplayName))
}

func TestRootErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "unknown command with suggestion", args: []string{"rendr"}, wantErr: `unknown command "rendr" for "oc kubens"; did you mean "render"?`},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"--frob"}, wantErr: "unknown flag: --frob (see 'oc kubens --help')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, "oc-kubens", tt.args...)
			checkOneLineError(t, out, errOut, code, tt.wantErr)
		})
	}
}

func TestReportError(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		interrupted bool
		wantCode    int
		wantOut     string
	}{
		{name: "nil", err: nil, wantCode: 0},
		{name: "plain", err: errors.New("boom"), wantCode: 1, wantOut: "error: boom\n"},
		{name: "exit 2", err: &ExitError{Code: 2, Err: errors.New("cannot reach the cluster")}, wantCode: 2, wantOut: "error: cannot reach the cluster\n"},
		{name: "wrapped exit", err: fmt.Errorf("verify: %w", &ExitError{Code: 3, Err: errors.New("x")}), wantCode: 3, wantOut: "error: verify: x\n"},
		{name: "quiet exit", err: &ExitError{Code: 1}, wantCode: 1},
		{name: "zero code means failure", err: &ExitError{Err: errors.New("x")}, wantCode: 1, wantOut: "error: x\n"},
		{name: "interrupted", err: fmt.Errorf("waiting: %w", context.Canceled), interrupted: true, wantCode: 130, wantOut: "error: interrupted\n"},
		{name: "canceled without signal", err: context.Canceled, wantCode: 1, wantOut: "error: context canceled\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if code := reportError(&b, tt.err, tt.interrupted); code != tt.wantCode {
				t.Errorf("code %d, want %d", code, tt.wantCode)
			}
			if b.String() != tt.wantOut {
				t.Errorf("printed %q, want %q", b.String(), tt.wantOut)
			}
		})
	}
}

// TestExitErrorFromCommand runs a command that returns an ExitError through
// Execute's real path, the way verify will.
func TestExitErrorFromCommand(t *testing.T) {
	var out, errOut strings.Builder
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdKubens(streams, ocDisplayName)
	root.AddCommand(&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error {
		return &ExitError{Code: 2, Err: errors.New("could not run")}
	}})
	root.SetArgs([]string{"fail"})
	if code := reportError(&errOut, root.Execute(), false); code != 2 {
		t.Errorf("code %d, want 2", code)
	}
	if errOut.String() != "error: could not run\n" {
		t.Errorf("stderr %q", errOut.String())
	}
}
