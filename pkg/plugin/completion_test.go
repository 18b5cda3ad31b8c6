package plugin

import (
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	tests := []struct {
		shell, program, want string
	}{
		{shell: "bash", program: "oc-kubens", want: "__start_oc-kubens"},
		{shell: "bash", program: "kubectl-kubens", want: "__start_kubectl-kubens"},
		{shell: "zsh", program: "oc-kubens", want: "#compdef oc-kubens"},
		{shell: "fish", program: "oc-kubens", want: "complete -c oc-kubens"},
		{shell: "powershell", program: "oc-kubens", want: "Register-ArgumentCompleter"},
	}
	for _, tt := range tests {
		t.Run(tt.shell+" "+tt.program, func(t *testing.T) {
			out, errOut, code := run(t, tt.program, "completion", tt.shell)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("script lacks %q", tt.want)
			}
		})
	}

	// The scripts call back into the binary; check it answers.
	out, _, code := run(t, "oc-kubens", "__complete", "render", "-o", "")
	if code != 0 || !strings.Contains(out, "yaml") || !strings.Contains(out, "json") {
		t.Errorf("__complete for render -o: exit %d, %q", code, out)
	}

	out, errOut, code := run(t, "oc-kubens", "completion", "tcsh")
	checkOneLineError(t, out, errOut, code, `unsupported shell "tcsh"`)
	out, errOut, code = run(t, "oc-kubens", "completion")
	checkOneLineError(t, out, errOut, code, "name one shell")
}
