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
		{[]string{"version", "-o", ""}, []string{"json", "yaml", "kyaml", "name", "go-template", "go-template-file", "template", "templatefile", "jsonpath", "jsonpath-as-json", "jsonpath-file"}},
		{[]string{"version", "--output", "y"}, []string{"yaml"}},
		{[]string{"status", "-o", "j"}, []string{"json", "jsonpath", "jsonpath-as-json", "jsonpath-file"}},
		{[]string{"verify", "-o", "w"}, []string{"wide"}},
		{[]string{"measure", "-o", "w"}, []string{"wide"}},
		{[]string{"render", "-o", "w"}, nil},
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

// TestOutputCompletionMatchesValidate keeps -o completion in step with the
// commands: every command with -o completes it; every format offered is
// named in the flag's help and accepted by the command (an unsupported
// format fails before any request, so the unreachable server never answers
// a valid one).
func TestOutputCompletionMatchesValidate(t *testing.T) {
	dir := t.TempDir()
	templates := map[string]string{"go-template": "{{.kind}}", "jsonpath": "{.kind}"}
	for name, tmpl := range templates {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tmpl), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The arguments each command needs to get as far as its -o check.
	needs := map[string][]string{"verify": {"--all-nodes"}, "measure": {"--all-nodes"}, "wrap": {"a.service"}, "unwrap": {"a.service"}}
	root := NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), "oc kubens")
	commands := 0
	for _, cmd := range root.Commands() {
		f := cmd.Flags().Lookup("output")
		if f == nil {
			continue
		}
		commands++
		formats := completeOffline(t, cmd.Name(), "-o", "")
		if len(formats) < 11 {
			t.Errorf("%s: -o completes %q", cmd.Name(), formats)
		}
		for _, format := range formats {
			if !strings.Contains(f.Usage, format) {
				t.Errorf("%s -o: completion offers %q, which the flag's help does not name: %q", cmd.Name(), format, f.Usage)
			}
			args := append([]string{cmd.Name(), "-o", format, "--server", "https://127.0.0.1:1"}, needs[cmd.Name()]...)
			switch {
			case strings.HasPrefix(format, "jsonpath"):
				args = append(args, "--template", templateArg(dir, format, "jsonpath"))
			case strings.Contains(format, "template"):
				args = append(args, "--template", templateArg(dir, format, "go-template"))
			}
			_, errOut, _ := run(t, "oc-kubens", args...)
			if strings.Contains(errOut, "output format") || strings.Contains(errOut, "-o "+format) {
				t.Errorf("%s -o %s: completed but refused: %s", cmd.Name(), format, errOut)
			}
		}
		if _, errOut, _ := run(t, "oc-kubens", append([]string{cmd.Name(), "-o", "bogus", "--server", "https://127.0.0.1:1"}, needs[cmd.Name()]...)...); !strings.Contains(errOut, `output format "bogus"`) {
			t.Errorf("%s -o bogus: %s", cmd.Name(), errOut)
		}
	}
	if commands < 5 {
		t.Errorf("%d commands have -o, want at least status, verify, measure, render, version", commands)
	}
}

// templateArg is --template for a format: a file for the -file formats.
func templateArg(dir, format, kind string) string {
	if strings.HasSuffix(format, "file") {
		return filepath.Join(dir, kind)
	}
	return map[string]string{"go-template": "{{.kind}}", "jsonpath": "{.kind}"}[kind]
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
