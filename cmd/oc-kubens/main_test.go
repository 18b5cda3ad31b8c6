package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// These tests run the real binary: $OC_KUBENS_BIN (make unit sets it to
// bin/oc-kubens) or, when unset, a static build of this package.
func pluginBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("OC_KUBENS_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "oc-kubens")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// No kubeconfig anywhere: render, version and help must not need one.
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent/kubeconfig", "HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), exitErr.ExitCode()
	}
	if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return out.String(), errOut.String(), 0
}

// TestRenderMatchesSeed is the acceptance check: `oc-kubens render` prints
// the two MachineConfigs of the documented procedure, equal field by field
// apart from our marker label.
func TestRenderMatchesSeed(t *testing.T) {
	bin := pluginBinary(t)
	out, errOut, code := runBinary(t, bin, "render")
	if code != 0 || errOut != "" {
		t.Fatalf("render: exit %d, stderr %q", code, errOut)
	}
	got := parseStream(t, out)
	seedBytes, err := os.ReadFile("../../pkg/manifests/testdata/seed_mount_namespace_config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := parseStream(t, string(seedBytes))
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("render printed %d objects, seed has %d; want 2 and 2", len(got), len(want))
	}
	for i := range got {
		labels, _ := got[i]["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["oc-kubens.io/managed-by"] != "oc-kubens" {
			t.Errorf("object %d: marker label missing: %v", i, labels)
		}
		delete(labels, "oc-kubens.io/managed-by")
		if diffs := diffFields("", got[i], want[i]); len(diffs) > 0 {
			t.Errorf("object %d differs from the seed:\n  %s", i, strings.Join(diffs, "\n  "))
		}
	}
}

func TestBadInputOneLineExit1(t *testing.T) {
	bin := pluginBinary(t)
	for _, args := range [][]string{
		{"render", "--role", ""},
		{"render", "--role", "Bad Role!"},
		{"render", "-o", "xml"},
		{"render", "stray"},
		{"render", "--no-such-flag"},
		{"no-such-command"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runBinary(t, bin, args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if !strings.HasPrefix(errOut, "error: ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr is not one 'error: ...' line: %q", errOut)
			}
		})
	}
}

// TestHelpDisplayName runs the binary under both names krew and oc use.
func TestHelpDisplayName(t *testing.T) {
	bin := pluginBinary(t)
	link := filepath.Join(t.TempDir(), "kubectl-kubens")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, name, other string }{
		{bin, "oc kubens", "kubectl kubens"},
		{link, "kubectl kubens", "oc kubens"},
	} {
		out, errOut, code := runBinary(t, tt.path, "--help")
		if code != 0 || errOut != "" {
			t.Fatalf("%s --help: exit %d, stderr %q", tt.path, code, errOut)
		}
		if !strings.Contains(out, "Usage:\n  "+tt.name+" [flags]\n  "+tt.name+" [command]\n") || strings.Contains(out, tt.other) {
			t.Errorf("%s --help does not show %q alone:\n%s", filepath.Base(tt.path), tt.name, out)
		}
	}
}

// TestStaticBinary checks the build has no dynamic loader (CGO_ENABLED=0).
func TestStaticBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF check on Linux only")
	}
	f, err := elf.Open(pluginBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary is dynamically linked (has PT_INTERP); build with CGO_ENABLED=0")
		}
	}
}

func parseStream(t *testing.T, s string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, doc := range strings.Split(s, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("parsing YAML document: %v\n%s", err, doc)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	return docs
}

// diffFields lists every field path where got and want differ.
func diffFields(path string, got, want any) []string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var diffs []string
		for _, k := range sorted {
			diffs = append(diffs, diffFields(path+"."+k, gm[k], wm[k])...)
		}
		return diffs
	}
	gl, gok := got.([]any)
	wl, wok := want.([]any)
	if gok && wok && len(gl) == len(wl) {
		var diffs []string
		for i := range gl {
			diffs = append(diffs, diffFields(fmt.Sprintf("%s[%d]", path, i), gl[i], wl[i])...)
		}
		return diffs
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: got %v, seed has %v", path, got, want)}
	}
	return nil
}
