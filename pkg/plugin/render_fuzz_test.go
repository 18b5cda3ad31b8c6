package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// FuzzRenderArgs feeds arbitrary command lines to `render`, which needs no
// cluster: whatever the user types, render must not panic, and a failure
// must be exactly one "error: ..." line on stderr (a newline or an escape
// sequence smuggled in through a flag value must not break that line).
// `make fuzz` (part of `make test`) runs it for 60 s; plain `go test` runs
// the seed corpus below.
//
// One input is the arguments after "render", separated by NUL bytes (a
// command line cannot contain NUL, so every split is a real argv).
func FuzzRenderArgs(f *testing.F) {
	seeds := [][]string{
		{},
		{"--role", "worker"},
		{"--role", "master", "--role", "worker", "--role", "arbiter"},
		{"--role", "master,worker"},
		{"--role", ""},
		{"--role", "Worker"},
		{"--role", strings.Repeat("a", 300)},
		{"--role", "a\nb"},
		{"--role", "\x1b[31mred"},
		{"--disabled", "--role", "infra"},
		{"--disabled=maybe"},
		{"-o", "json"},
		{"-o", "yaml"},
		{"-o", "kyaml"},
		{"-o", "name"},
		{"-o", "wide"},
		{"-o", "table"},
		{"-o", "jsonpath={.items[*].metadata.name}"},
		{"-o", "jsonpath={.items[0"},
		{"-o", "go-template={{range .items}}{{.metadata.name}}{{end}}"},
		{"-o", "go-template={{.nope"},
		{"-o", "go-template"},
		{"-o=template", "--template", "{{.kind}}"},
		{"-o", "jsonpath-as-json={.items}"},
		{"--show-managed-fields", "-o", "yaml"},
		{"--allow-missing-template-keys=false", "-o", "jsonpath={.nope}"},
		{"--wrap", "node-agent.service=/usr/local/bin/node-agent --interval 10", "--role", "worker"},
		{"--wrap", "bad"},
		{"--wrap", "=cmd"},
		{"--wrap", "a.service="},
		{"--wrap", "a.service=/bin/a", "--wrap", "a.service=/bin/b"},
		{"--wrap", "a.service=/bin/a\nExecStart=/bin/evil"},
		{"--wrap", "a.service=/bin/a", "--disabled"},
		{"--wrap", "../../etc/passwd=/bin/sh"},
		{"extra"},
		{"--unknown"},
		{"-x"},
		{"--role"},
		{"-o"},
		{"--"},
		{"--", "--role"},
		{"-h"},
		{"--kubeconfig", "/nonexistent", "--context", "nowhere", "--server", "https://127.0.0.1:1"},
		{"--request-timeout", "-1"},
		{"--role=\x00"},
		{"\xff\xfe"},
	}
	for _, s := range seeds {
		f.Add(strings.Join(s, "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		var args []string
		if line != "" {
			args = strings.Split(line, "\x00")
		}
		for _, a := range args {
			// The template-file formats read the named file: keep the
			// fuzzer away from devices and kernel files, whose reads
			// may block or never end. Files are otherwise fair game.
			if strings.Contains(a, "/dev") || strings.Contains(a, "/proc") || strings.Contains(a, "/sys") {
				return
			}
		}
		var out, errOut bytes.Buffer
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
		// Execute without its signal handling: the fuzzer runs this
		// thousands of times a second.
		cmd := NewCmdKubens(streams, ocDisplayName)
		cmd.SetArgs(append([]string{"render"}, args...))
		code := reportError(&errOut, cmd.ExecuteContext(context.Background()), false)
		stderr := errOut.String()
		if code == 0 {
			if stderr != "" {
				t.Fatalf("exit 0 with stderr %q (args %q)", stderr, args)
			}
			return
		}
		if code != 1 {
			t.Errorf("exit %d, want 1 (args %q)", code, args)
		}
		if !strings.HasPrefix(stderr, "error: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("stderr is not one \"error: \" line (args %q):\n%q", args, stderr)
		}
		if strings.ContainsAny(stderr, "\x1b\r") {
			t.Fatalf("stderr carries a raw control character (args %q): %q", args, stderr)
		}
	})
}
