package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// completeOffline runs cobra's hidden __complete entry point, which is what
// every shell script and kubectl's plugin completion call, and returns the
// offered values (the last line is the directive, dropped).
func completeOffline(t *testing.T, args ...string) []string {
	t.Helper()
	// A kubeconfig pointing at a closed port: completion must give up fast
	// and quietly.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdKubens(streams, "oc kubens")
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd, "--kubeconfig", kubeconfig}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %v: %v\n%s", args, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %v printed no directive:\n%s", args, out.String())
	}
	var values []string
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		values = append(values, name)
	}
	return values
}

func TestCompletionOffline(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"version", "-o", ""}, []string{"json", "yaml"}},
		{[]string{"version", "--output", "y"}, []string{"yaml"}},
		{[]string{"status", "-o", ""}, []string{"wide", "json", "yaml"}},
		// No cluster: --role falls back to the built-in roles.
		{[]string{"enable", "--role", ""}, []string{"master", "worker"}},
		{[]string{"disable", "--role", "w"}, []string{"worker"}},
		// No cluster: no pool or node names, and no error in the command line.
		{[]string{"wait", "--pool", ""}, nil},
		{[]string{"exec", ""}, nil},
		{[]string{"verify", "a", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := completeOffline(t, tt.args...)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOutputFormatsNamedInHelp keeps outputFormats in step with the
// commands: every format offered must be one the command's -o help names, and
// every command with -o must have an entry.
func TestOutputFormatsNamedInHelp(t *testing.T) {
	root := NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), "oc kubens")
	for _, cmd := range root.Commands() {
		f := cmd.Flags().Lookup("output")
		if f == nil {
			continue
		}
		formats, ok := outputFormats[cmd.Name()]
		if !ok {
			t.Errorf("%s has -o but no entry in outputFormats", cmd.Name())
			continue
		}
		for _, format := range formats {
			if !strings.Contains(f.Usage, format) {
				t.Errorf("%s -o: completion offers %q, which the flag's help does not name: %q", cmd.Name(), format, f.Usage)
			}
		}
	}
}

func TestNodeRoles(t *testing.T) {
	got := nodeRoles(map[string]string{
		"node-role.kubernetes.io/worker": "",
		"node-role.kubernetes.io/infra":  "",
		"node-role.kubernetes.io/":       "",
		"kubernetes.io/hostname":         "n1",
	})
	if got != "infra,worker" {
		t.Errorf("nodeRoles = %q", got)
	}
}
