// Package shelltest holds what the tests of the per-node probe scripts
// (verify's, measure's, wrap's) share: the POSIX shells to run them in, and
// cutting one shell function out of a script to test it alone.
package shelltest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

// Shells lists the POSIX shells at hand, each as the argv that starts it;
// a probe must work in each, busybox sh above all since that is the
// image's. A shell that is another one under its name (sh is often dash or
// bash) is listed once: running it twice proves nothing. With none, the
// test is skipped.
func Shells(t testing.TB) [][]string {
	t.Helper()
	var out [][]string
	seen := map[string]bool{}
	for _, sh := range [][]string{{"sh"}, {"busybox", "sh"}, {"dash"}, {"bash", "--posix"}} {
		path, err := exec.LookPath(sh[0])
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(path); err == nil && sh[0] != "busybox" {
			path = real
		}
		key := path + " " + strings.Join(sh[1:], " ")
		if !seen[key] {
			seen[key] = true
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		ci.SkipOrFail(t, "no POSIX shell found")
	}
	return out
}

// Function returns the text of the shell function name of script, from
// "name() {" to its closing "}" line.
func Function(t testing.TB, script, name string) string {
	t.Helper()
	start := strings.Index(script, "\n"+name+"() {\n")
	if start < 0 {
		t.Fatalf("script has no function %s", name)
	}
	end := strings.Index(script[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("function %s does not end", name)
	}
	return script[start : start+end+3]
}
