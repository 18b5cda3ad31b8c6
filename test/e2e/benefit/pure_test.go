package benefit

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The helpers the report stands on, checked without a cluster (these run in
// `make integration` too, gate or not).

func TestMountDiff(t *testing.T) {
	a := []string{"1 0 0:1 / / rw", "2 1 0:2 / /proc rw", "3 1 0:3 / /run rw"}
	for _, tc := range []struct {
		name string
		b    []string
		want int
	}{
		{"same", a, 0},
		{"one added", append(append([]string{}, a...), "9 1 0:9 / /x rw"), 1},
		{"one removed", a[:2], 1},
		{"remounted: a new line for the old one", []string{a[0], a[1], "4 1 0:3 / /run rw"}, 2},
		{"duplicates count one by one", append(append([]string{}, a...), a[2]), 1},
	} {
		if got := mountDiff(a, tc.b); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 4, 2, 3, 0, 0, 0, 0, 10})
	if s.Mean != 2.5 || s.P50 != 1 || s.P95 != 10 || s.Max != 10 {
		t.Errorf("got %+v", s)
	}
	// Nearest rank: p95 of 20 values is the 19th.
	var v []float64
	for i := 1; i <= 20; i++ {
		v = append(v, float64(i))
	}
	if s := summarize(v); s.P95 != 19 || s.P50 != 10 {
		t.Errorf("1..20: %+v", s)
	}
	if s := summarize(nil); !math.IsNaN(s.Mean) {
		t.Errorf("empty: %+v", s)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b float64
		want string
	}{{10, 2, "5.0x"}, {0, 0, "1x"}, {3, 0, "∞ (0 encapsulated)"}, {math.NaN(), 1, "-"}} {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCountLines(t *testing.T) {
	if n := countLines("a.mount loaded\n\n b.mount loaded\n"); n != 2 {
		t.Errorf("%d, want 2", n)
	}
}

// measureAvailable reads the root help's command list, not the exit code.
func TestMeasureAvailable(t *testing.T) {
	dir := t.TempDir()
	fake := func(help string) string {
		p := filepath.Join(dir, "oc-kubens")
		if err := os.WriteFile(p, []byte("#!/bin/sh\ncat <<'EOF'\n"+help+"EOF\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	without := "Usage:\n  oc kubens [command]\n\nAvailable Commands:\n  enable      Turn it on\n  verify      Check\n\nFlags:\n  measure is not a command here\n"
	if measureAvailable(fake(without)) {
		t.Error("found measure where the command list has none")
	}
	with := "Available Commands:\n  enable      Turn it on\n  measure     Measure systemd\n\nFlags:\n"
	if !measureAvailable(fake(with)) {
		t.Error("did not find measure in the command list")
	}
}
