package plugin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// Table tests of wait, and of the waiting of enable --wait and disable
// --wait, on a fake cluster (issue 13 item 6): --pool, --timeout running
// out, Ctrl-C. The second Ctrl-C is in wait_signal_test.go: it needs a
// process of its own.

// oursPending is the cluster right after enable: our configs exist, no
// pool has rendered them yet.
func oursPending(t *testing.T) []runtime.Object {
	return fcCluster(fcOurs(t, "master"), fcOurs(t, "worker"))
}

func TestWaitFake(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeOpenShift)
		cmd   controlCmd
		// operator plays the Machine Config Operator once wait watches.
		operator func(t *testing.T, f *fakeOpenShift)
		wantErr  string // "" for success
		out      []string
		notOut   []string
	}{
		{
			name: "--pool worker returns once worker is done, master still rendering",
			cmd:  controlCmd{name: "wait", pools: []string{"worker"}},
			operator: func(t *testing.T, f *fakeOpenShift) {
				f.rollOut(t, "worker", "rendered-worker-2", true, "00-worker", "99-kubens-worker")
			},
			out:    []string{"Waiting for pools worker to roll out", "worker: Rendering", "All pools updated: worker"},
			notOut: []string{"master"},
		},
		{
			name: "without --pool, master's pending render keeps it waiting until --timeout",
			cmd:  controlCmd{name: "wait", timeout: 500 * time.Millisecond},
			operator: func(t *testing.T, f *fakeOpenShift) {
				f.rollOut(t, "worker", "rendered-worker-2", true, "00-worker", "99-kubens-worker")
			},
			wantErr: "waiting for master: Rendering 2/2 updated, 2 ready, 0 degraded (rendered-master-1); the rollout goes on in the cluster: run `oc kubens wait` again to keep waiting",
		},
		{
			name: "a rendered config without the unit on is not the end of phase 1",
			cmd:  controlCmd{name: "wait", pools: []string{"worker"}, timeout: 500 * time.Millisecond},
			operator: func(t *testing.T, f *fakeOpenShift) {
				f.rollOut(t, "worker", "rendered-worker-2", false, "00-worker", "99-kubens-worker")
			},
			wantErr: "waiting for worker: Rendering",
		},
		{
			name:    "--pool naming no pool",
			cmd:     controlCmd{name: "wait", pools: []string{"infra"}},
			wantErr: "no MachineConfigPool named infra; pools on this cluster: master, worker",
		},
		{
			name:    "listing the pools is Unauthorized",
			setup:   failWith("list", "machineconfigpools", apierrors.NewUnauthorized("token has expired")),
			cmd:     controlCmd{name: "wait"},
			wantErr: "cannot list MachineConfigPools: the cluster does not accept your credentials (token has expired); log in again",
		},
		{
			name:    "a MachineConfig API without machineconfigpools",
			setup:   func(f *fakeOpenShift) { f.setMachineConfigResources("machineconfigs") },
			cmd:     controlCmd{name: "wait"},
			wantErr: errNoMachineConfigAPI.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeOpenShift(t, oursPending(t)...)
			if tt.setup != nil {
				tt.setup(f)
			}
			done := f.start(context.Background(), tt.cmd)
			if tt.operator != nil {
				f.awaitWatch(t)
				tt.operator(t, f)
			}
			err := awaitErr(t, done, 10*time.Second)
			out := f.out.String()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v; output:\n%s", err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q; output:\n%s", err, tt.wantErr, out)
			}
			for _, w := range tt.out {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notOut {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			for _, w := range f.writes() {
				if !strings.HasPrefix(w, "create rendered-") && !strings.HasPrefix(w, "update ") {
					t.Errorf("wait sent %q", w) // the rest is the test's operator
				}
			}
		})
	}
}

// controlWaits are the three ways to wait, each on a cluster where it has
// something to wait for that never comes.
var controlWaits = []struct {
	name string
	objs func(t *testing.T) []runtime.Object
	cmd  controlCmd
	// sent is how many write requests come before the waiting.
	sent int
}{
	{"enable --wait", func(*testing.T) []runtime.Object { return fcCluster() }, controlCmd{name: "enable", wait: true}, 2},
	{"disable --wait", oursOnBoth, controlCmd{name: "disable", wait: true}, 2},
	{"wait", oursPending, controlCmd{name: "wait"}, 0},
}

// TestControlTimeoutFake: --timeout running out is the wait engine's
// timeout error with the advice to wait again, exit status 1 (README: "Exit
// code 0 when every pool is updated, 1 otherwise").
func TestControlTimeoutFake(t *testing.T) {
	for _, tc := range controlWaits {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOpenShift(t, tc.objs(t)...)
			cmd := tc.cmd
			cmd.timeout = 300 * time.Millisecond
			err := awaitErr(t, f.start(context.Background(), cmd), 10*time.Second)
			var te *mcp.TimeoutError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), "run `oc kubens wait` again to keep waiting") {
				t.Fatalf("error %v, want the timeout with advice; output:\n%s", err, f.out)
			}
			if len(te.Pending) == 0 {
				t.Errorf("the timeout names no pool: %v", err)
			}
			if got := f.writes(); len(got) != tc.sent {
				t.Errorf("sent %q, want %d write(s) before the wait", got, tc.sent)
			}
			var stderr bytes.Buffer
			if code := reportError(&stderr, err, false); code != 1 || !strings.HasPrefix(stderr.String(), "error: timed out after ") {
				t.Errorf("exit %d, stderr %q; want 1 and the timeout", code, stderr.String())
			}
		})
	}
}

// TestControlCtrlCFake: Ctrl-C (the command's context cancelled) while it
// waits ends it at once as interrupted, exit status 130, with nothing sent
// after the changes.
func TestControlCtrlCFake(t *testing.T) {
	for _, tc := range controlWaits {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOpenShift(t, tc.objs(t)...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := f.start(ctx, tc.cmd)
			f.awaitWatch(t)
			cancel()
			err := awaitErr(t, done, 5*time.Second)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled; output:\n%s", err, f.out)
			}
			if got := f.writes(); len(got) != tc.sent {
				t.Errorf("sent %q, want %d write(s)", got, tc.sent)
			}
			var stderr bytes.Buffer
			if code := reportError(&stderr, err, true); code != exitInterrupted || stderr.String() != "error: interrupted\n" {
				t.Errorf("exit %d, stderr %q; want %d and interrupted", code, stderr.String(), exitInterrupted)
			}
		})
	}
}
