package plugin

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Flag mistakes in verify exit 2 ("could not run") with a message that says
// what to do, before any cluster access.
func TestVerifyFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"verify"}, "say which nodes to verify"},
		{[]string{"verify", "n1", "--all-nodes"}, "exactly one of"},
		{[]string{"verify", "--all-nodes", "-l", "a=b"}, "exactly one of"},
		{[]string{"verify", "--all-nodes", "--expect", "maybe"}, "--expect must be"},
		{[]string{"verify", "--all-nodes", "-o", "name"}, "unsupported output format"},
		{[]string{"verify", "--all-nodes", "--parallelism", "0"}, "--parallelism must be at least 1"},
		{[]string{"verify", "--all-nodes", "--timeout", "10ms"}, "--timeout must be at least 1s"},
		{[]string{"verify", "--all-nodes", "--image-pull-policy", "Sometimes"}, "--image-pull-policy must be"},
		{[]string{"verify", "-l", "a in (", "--image", "x"}, "--selector"},
		{[]string{"verify", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			// An unreachable server: validation must fail before any request.
			code := Execute(append([]string{"oc-kubens"}, append(tt.args, "--server", "https://127.0.0.1:1")...), streams)
			if code != verifyExitCannotRun || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestExecArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"exec"}, "name the node"},
		{[]string{"exec", "n1", "ls"}, "put the command after --"},
		{[]string{"exec", "n1"}, "stdin is not a terminal"},
		{[]string{"exec", "n1", "-t", "--", "ls"}, "-t needs a terminal"},
		{[]string{"exec", "n1", "--timeout", "0s", "--", "ls"}, "--timeout must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			code := Execute(append([]string{"oc-kubens"}, append(tt.args, "--server", "https://127.0.0.1:1")...), streams)
			if code != 1 || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}

	o := &ExecOptions{}
	cmd := NewCmdExec(nil, genericiooptions.IOStreams{})
	if err := o.Complete(cmd, []string{"n1", "cat", "/x"}); err != nil || o.Node != "n1" || len(o.Command) != 2 || o.TTY {
		t.Fatalf("complete: %v %+v", err, o)
	}
}
