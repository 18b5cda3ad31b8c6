package e2eutil

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Update is -update for the suites that compare the plugin's output with
// golden files: go test ./test/e2e/output -update rewrites them from the
// current output.
var Update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

// Golden runs the built plugin binary and compares what it prints with
// golden files. A suite makes one per binary and cluster and calls Run once
// per command line.
type Golden struct {
	// Bin is the plugin binary (PluginBinary.Path).
	Bin string
	// Dir holds the golden files; empty means testdata.
	Dir string
	// Args are appended to every command line, e.g. --kubeconfig PATH.
	Args []string
	// Normalize, when set, rewrites stdout and stderr before they are
	// compared: build stamps, hashes, generated names.
	Normalize func(string) string
}

// Run runs the binary with args, stdin from /dev/null. It compares stdout
// with the golden file name, stderr with name.stderr (which exists only
// when stderr is not empty) and the exit code with wantCode. It returns the
// normalised stdout.
func (g Golden) Run(t *testing.T, name string, wantCode int, args ...string) string {
	t.Helper()
	cmd := exec.Command(g.Bin, append(append([]string{}, args...), g.Args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running %s: %v", g.Bin, err)
		}
		code = ee.ExitCode()
	}
	stdout, stderr := out.String(), errOut.String()
	if g.Normalize != nil {
		stdout, stderr = g.Normalize(stdout), g.Normalize(stderr)
	}
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
	}
	dir := g.Dir
	if dir == "" {
		dir = "testdata"
	}
	path := filepath.Join(dir, name)
	CompareGolden(t, path, stdout)
	if stderr != "" || fileExists(path+".stderr") || *Update {
		CompareGolden(t, path+".stderr", stderr)
	}
	return stdout
}

// CompareGolden compares got with the file at path, or under -update
// writes it there (and removes the file when got is empty and the path
// ends in .stderr, so that an empty stderr needs no file).
func CompareGolden(t testing.TB, path, got string) {
	t.Helper()
	if *Update {
		if got == "" && strings.HasSuffix(path, ".stderr") {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v (rerun with -update to create it); got:\n%s", err, got)
		return
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
