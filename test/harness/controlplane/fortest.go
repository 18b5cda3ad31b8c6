package controlplane

import (
	"context"
	"testing"
	"time"
)

// StartForTest starts a control plane for one test, within timeout, and
// stops it when the test ends; a failure to start fails the test.
func StartForTest(t testing.TB, o Options, timeout time.Duration) *ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cp, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(context.Background()); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
	})
	return cp
}
