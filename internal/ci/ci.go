// Package ci tells tests whether they run in CI, where a test that cannot
// run must fail rather than skip: a skip there would pass silently.
package ci

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// InCI reports whether CI is set to anything but "", "0" or "false" (CI
// services set "true", some "1"; .ci/run sets "true" when it is unset).
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false":
		return false
	}
	return true
}

// SkipOrFail skips the test outside CI and fails it in CI, with the same
// message.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=%s: a test must not be skipped in CI; `make test` installs what it needs)", msg, os.Getenv("CI"))
		return
	}
	t.Skip(msg)
}
