package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const referenceDir = "../../docs/reference"

// diffPages compares the pages generate writes for root with those in dir
// and describes every difference.
func diffPages(t *testing.T, root *cobra.Command, dir string) []string {
	t.Helper()
	fresh := t.TempDir()
	if err := generate(root, fresh); err != nil {
		t.Fatal(err)
	}
	want := readPages(t, fresh)
	have := readPages(t, dir)
	var diffs []string
	for name, content := range want {
		got, ok := have[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" is missing")
		case got != content:
			diffs = append(diffs, name+" is out of date: "+firstDifference(got, content))
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, name+" documents a command that no longer exists")
		}
	}
	slices.Sort(diffs)
	return diffs
}

func readPages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(f)] = string(b)
	}
	return pages
}

func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: committed %q, now %q", i+1, gl, wl)
		}
	}
	return "line endings differ"
}

// TestReferenceUpToDate fails when docs/reference/ is not what `make docs`
// would write for the current commands.
func TestReferenceUpToDate(t *testing.T) {
	diffs := diffPages(t, newRoot(), referenceDir)
	if len(diffs) > 0 {
		t.Errorf("docs/reference/ is out of date; run `make docs` and commit the result:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// TestReferenceCatchesFlagChange proves the check above notices a changed
// flag: pages generated for the current tree, compared with the same tree
// plus one flag, must differ in exactly that command's page.
func TestReferenceCatchesFlagChange(t *testing.T) {
	committed := t.TempDir()
	if err := generate(newRoot(), committed); err != nil {
		t.Fatal(err)
	}
	root := newRoot()
	var status *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "status" {
			status = c
		}
	}
	if status == nil {
		t.Fatal("no status command")
	}
	status.Flags().Bool("brand-new-flag", false, "A flag nobody documented.")
	diffs := diffPages(t, root, committed)
	if len(diffs) != 1 || !strings.Contains(diffs[0], "oc_kubens_status.md is out of date") || !strings.Contains(diffs[0], "brand-new-flag") {
		t.Errorf("adding a flag to status gave diffs %q, want exactly oc_kubens_status.md out of date", diffs)
	}
}
