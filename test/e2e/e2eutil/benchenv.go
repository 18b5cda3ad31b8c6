package e2eutil

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// EnvInt reads a positive integer setting of a benchmark from the
// environment (make passes them), def when it is unset or not positive.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// EnvSizes reads a comma-separated list of node counts, in increasing
// order, def when the variable is unset.
func EnvSizes(tb testing.TB, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			tb.Fatalf("%s=%q: want increasing node counts, like 50,500,2000,5000", name, v)
		}
		sizes = append(sizes, n)
	}
	return sizes
}
