package plugin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Table tests of enable and disable on a fake cluster (issue 13 item 6), in
// the style of kubectl's pkg/cmd/wait/wait_test.go: each row is a cluster,
// a command and what it must send and say. A row that fails must leave
// every MachineConfig and pool as it was.

func failWith(verb, resource string, err error) func(f *fakeOpenShift) {
	return func(f *fakeOpenShift) {
		f.mcfg.PrependReactor(verb, resource, func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err })
	}
}

func TestEnableDisableFake(t *testing.T) {
	mcGR := schema.GroupResource{Group: "machineconfiguration.openshift.io", Resource: "machineconfigs"}
	unauthorized := apierrors.NewUnauthorized("token has expired")
	tests := []struct {
		name  string
		objs  func(t *testing.T) []runtime.Object
		setup func(f *fakeOpenShift)
		cmd   controlCmd
		// wantErr is a part of the error; "" for success.
		wantErr string
		// writes are exactly the write requests sent (see writes).
		writes []string
		// reviews are the verbs the access review was asked about.
		reviews []string
		out     []string
	}{
		{
			name: "enable creates one config per role",
			cmd:  controlCmd{name: "enable"}, reviews: []string{"create", "patch"},
			writes: []string{"patch 99-kubens-master", "patch 99-kubens-worker"},
			out:    []string{"machineconfig.machineconfiguration.openshift.io/99-kubens-master created", "machineconfig.machineconfiguration.openshift.io/99-kubens-worker created"},
		},
		{
			name:  "enable: the access review denies create",
			setup: func(f *fakeOpenShift) { f.deny("create") },
			cmd:   controlCmd{name: "enable"}, reviews: []string{"create", "patch"},
			wantErr: "you are not allowed to create MachineConfigs (machineconfigs.machineconfiguration.openshift.io); nothing was changed",
		},
		{
			name:   "enable --dry-run=client sends nothing",
			cmd:    controlCmd{name: "enable", dryRun: cmdutil.DryRunClient},
			writes: nil, reviews: nil,
			out: []string{"Dry run (client): nothing was sent to the cluster."},
		},
		{
			name:    "enable --dry-run=server sends every apply as a dry run",
			cmd:     controlCmd{name: "enable", dryRun: cmdutil.DryRunServer},
			writes:  []string{"patch 99-kubens-master (dry run)", "patch 99-kubens-worker (dry run)"},
			reviews: nil,
			out:     []string{"99-kubens-master created (server dry run)", "nothing was persisted"},
		},
		{
			name:  "enable: the apply is Forbidden",
			setup: failWith("patch", "machineconfigs", apierrors.NewForbidden(mcGR, "99-kubens-master", errors.New("admission webhook denied it"))),
			cmd:   controlCmd{name: "enable"}, reviews: []string{"create", "patch"},
			writes:  []string{"patch 99-kubens-master"},
			wantErr: "you are not allowed to apply MachineConfig 99-kubens-master: machineconfigs.machineconfiguration.openshift.io \"99-kubens-master\" is forbidden: admission webhook denied it. Log in as a cluster administrator",
		},
		{
			name:    "enable: discovery Unauthorized",
			setup:   func(f *fakeOpenShift) { f.kube.PrependReactor("get", "resource", deny(unauthorized)) },
			cmd:     controlCmd{name: "enable"},
			wantErr: "cannot discover the MachineConfig API: the cluster does not accept your credentials (token has expired); log in again",
		},
		{
			name: "enable: access review Unauthorized",
			setup: func(f *fakeOpenShift) {
				f.kube.PrependReactor("create", "selfsubjectaccessreviews", deny(unauthorized))
			},
			cmd: controlCmd{name: "enable"}, reviews: []string{"create"},
			wantErr: "cannot check your permissions on MachineConfigs: the cluster does not accept your credentials (token has expired); log in again",
		},
		{
			name:    "enable: a MachineConfig API without machineconfigpools",
			setup:   func(f *fakeOpenShift) { f.setMachineConfigResources("machineconfigs", "controllerconfigs") },
			cmd:     controlCmd{name: "enable"},
			wantErr: errNoMachineConfigAPI.Error(),
		},
		{
			name:    "enable: no MachineConfig API at all",
			setup:   func(f *fakeOpenShift) { f.disc.Resources = nil },
			cmd:     controlCmd{name: "enable"},
			wantErr: errNoMachineConfigAPI.Error(),
		},
		{
			name:    "enable: a hand-applied seed for worker is left alone, master's is created",
			objs:    func(*testing.T) []runtime.Object { return fcCluster(fcSeed("worker")) },
			cmd:     controlCmd{name: "enable"},
			reviews: []string{"create", "patch"},
			writes:  []string{"patch 99-kubens-master"},
			out:     []string{"99-kubens-master created", "99-kubens-worker left as it is (not created by oc-kubens)"},
		},
		{
			name:    "disable deletes every config of ours",
			objs:    oursOnBoth,
			cmd:     controlCmd{name: "disable"},
			reviews: []string{"delete"},
			writes:  []string{"delete 99-kubens-master", "delete 99-kubens-worker"},
			out:     []string{"99-kubens-master deleted", "99-kubens-worker deleted"},
		},
		{
			name:    "disable --role worker deletes the worker config only",
			objs:    oursOnBoth,
			cmd:     controlCmd{name: "disable", roles: []string{"worker"}},
			reviews: []string{"delete"},
			writes:  []string{"delete 99-kubens-worker"},
			out:     []string{"99-kubens-worker deleted"},
		},
		{
			name: "disable leaves a hand-applied seed alone and says it keeps the unit on",
			objs: func(t *testing.T) []runtime.Object {
				return fcCluster(fcOurs(t, "master"), fcSeed("worker"))
			},
			cmd:     controlCmd{name: "disable"},
			reviews: []string{"delete"},
			writes:  []string{"delete 99-kubens-master"},
			out:     []string{"WARNING: kubens.service stays enabled on pool worker through 99-kubens-worker, which oc-kubens does not manage"},
		},
		{
			name:    "disable: the access review denies delete",
			objs:    oursOnBoth,
			setup:   func(f *fakeOpenShift) { f.deny("delete") },
			cmd:     controlCmd{name: "disable"},
			reviews: []string{"delete"},
			wantErr: "you are not allowed to delete MachineConfigs (machineconfigs.machineconfiguration.openshift.io); nothing was changed",
		},
		{
			name: "disable --dry-run=client sends nothing",
			objs: oursOnBoth,
			cmd:  controlCmd{name: "disable", dryRun: cmdutil.DryRunClient},
			out:  []string{"Dry run (client): nothing was sent to the cluster."},
		},
		{
			name:   "disable --dry-run=server sends every delete as a dry run",
			objs:   oursOnBoth,
			cmd:    controlCmd{name: "disable", dryRun: cmdutil.DryRunServer},
			writes: []string{"delete 99-kubens-master (dry run)", "delete 99-kubens-worker (dry run)"},
			out:    []string{"99-kubens-master deleted (server dry run)"},
		},
		{
			name:    "disable: the delete is Forbidden",
			objs:    oursOnBoth,
			setup:   failWith("delete", "machineconfigs", apierrors.NewForbidden(mcGR, "99-kubens-master", errors.New("no"))),
			cmd:     controlCmd{name: "disable"},
			reviews: []string{"delete"},
			writes:  []string{"delete 99-kubens-master"},
			wantErr: "you are not allowed to delete MachineConfig 99-kubens-master",
		},
		{
			name:    "disable: listing MachineConfigs is Unauthorized",
			objs:    oursOnBoth,
			setup:   failWith("list", "machineconfigs", unauthorized),
			cmd:     controlCmd{name: "disable"},
			wantErr: "cannot list MachineConfigs: the cluster does not accept your credentials (token has expired); log in again",
		},
		{
			name:    "disable: a MachineConfig API without machineconfigpools",
			objs:    oursOnBoth,
			setup:   func(f *fakeOpenShift) { f.setMachineConfigResources("machineconfigs") },
			cmd:     controlCmd{name: "disable"},
			wantErr: errNoMachineConfigAPI.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := fcCluster()
			if tt.objs != nil {
				objs = tt.objs(t)
			}
			f := newFakeOpenShift(t, objs...)
			if tt.setup != nil {
				tt.setup(f)
			}
			before := f.state(t)
			err := f.run(context.Background(), tt.cmd)
			out := f.out.String()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v; output:\n%s", err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q; output:\n%s", err, tt.wantErr, out)
			}
			if got := f.writes(); !slices.Equal(got, tt.writes) {
				t.Errorf("sent %q, want %q", got, tt.writes)
			}
			if got := f.accessReviews(); !slices.Equal(got, tt.reviews) {
				t.Errorf("access reviews for %q, want %q", got, tt.reviews)
			}
			for _, w := range tt.out {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if after := f.state(t); (tt.wantErr != "" || tt.cmd.dryRun != cmdutil.DryRunNone) && after != before {
				t.Errorf("the cluster changed:\n%s\nwas:\n%s", after, before)
			}
			if strings.Contains(tt.wantErr, "MachineConfig API") && len(f.mcfg.Actions()) > 0 {
				t.Errorf("requests sent without the API: %v", f.mcfg.Actions())
			}
		})
	}
}

func deny(err error) clienttesting.ReactionFunc {
	return func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err }
}

// oursOnBoth is the cluster after enable has rolled out on both pools.
func oursOnBoth(t *testing.T) []runtime.Object {
	return []runtime.Object{
		fcPool("master", "rendered-master-2", "00-master", "99-kubens-master"),
		fcPool("worker", "rendered-worker-2", "00-worker", "99-kubens-worker"),
		fcInput("00-master", "master", `{"name":"chronyd.service","enabled":true}`),
		fcInput("00-worker", "worker", `{"name":"chronyd.service","enabled":true}`),
		fcOurs(t, "master"), fcOurs(t, "worker"),
		fcRendered("rendered-master-2", "master", true),
		fcRendered("rendered-worker-2", "worker", true),
	}
}

// TestEnableIsIdempotent: a second enable finds its configs as it wants
// them and sends nothing, not even an access review.
func TestEnableIsIdempotent(t *testing.T) {
	f := newFakeOpenShift(t, fcCluster()...)
	if err := f.run(context.Background(), controlCmd{name: "enable"}); err != nil {
		t.Fatalf("first enable: %v\n%s", err, f.out)
	}
	if got := f.writes(); len(got) != 2 {
		t.Fatalf("first enable sent %q, want the two applies", got)
	}
	first := f.state(t)
	f.mcfg.ClearActions()
	f.kube.ClearActions()
	f.out = &lockedBuffer{}
	if err := f.run(context.Background(), controlCmd{name: "enable"}); err != nil {
		t.Fatalf("second enable: %v\n%s", err, f.out)
	}
	if got, reviews := f.writes(), f.accessReviews(); len(got) != 0 || len(reviews) != 0 {
		t.Errorf("second enable sent %q and reviews %q, want nothing", got, reviews)
	}
	out := f.out.String()
	for _, w := range []string{"unchanged 99-kubens-master", "unchanged 99-kubens-worker", "Nothing to change"} {
		if !strings.Contains(out, w) {
			t.Errorf("second enable's output lacks %q:\n%s", w, out)
		}
	}
	if f.state(t) != first {
		t.Errorf("the second enable changed the cluster")
	}
}

// TestEnableAdoptsHandAppliedSeed follows a cluster where somebody applied
// the documentation's 99-kubens-master and 99-kubens-worker by hand (no
// oc-kubens label): enable --wait changes nothing, says they already
// enable the unit, and waits for the operator to roll them out; disable
// then leaves them alone too.
func TestEnableAdoptsHandAppliedSeed(t *testing.T) {
	f := newFakeOpenShift(t, fcCluster(fcSeed("master"), fcSeed("worker"))...)
	before := f.state(t)
	done := f.start(context.Background(), controlCmd{name: "enable", wait: true})
	// Applied, not yet rendered: enable waits for the render with the
	// unit on.
	f.awaitWatch(t)
	f.rollOut(t, "master", "rendered-master-2", true, "00-master", "99-kubens-master")
	f.rollOut(t, "worker", "rendered-worker-2", true, "00-worker", "99-kubens-worker")
	if err := awaitErr(t, done, 10*time.Second); err != nil {
		t.Fatalf("enable --wait: %v\n%s", err, f.out)
	}
	out := f.out.String()
	for _, w := range []string{
		"99-kubens-master  (exists and was not created by oc-kubens; holds kubens.service enabled; left exactly as it is)",
		"99-kubens-worker  (exists and was not created by oc-kubens",
		"Note: kubens.service is already enabled on pool master by 99-kubens-master.",
		"Note: kubens.service is already enabled on pool worker by 99-kubens-worker.",
		"Nothing to change",
		"All pools updated: master, worker",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("enable's output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range f.writes() {
		if !strings.HasPrefix(w, "create rendered-") && !strings.HasPrefix(w, "update ") {
			t.Errorf("enable sent %q", w) // the rest is this test playing the operator
		}
	}
	for _, mc := range f.machineConfigs(t) {
		if strings.HasPrefix(mc.Name, "99-kubens-") && !strings.Contains(before, mcLine(&mc)) {
			t.Errorf("%s changed: %s", mc.Name, mcLine(&mc))
		}
	}

	f.mcfg.ClearActions()
	f.out = &lockedBuffer{}
	if err := f.run(context.Background(), controlCmd{name: "disable"}); err != nil {
		t.Fatalf("disable: %v\n%s", err, f.out)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("disable sent %q for configs it does not own", got)
	}
	if out := f.out.String(); !strings.Contains(out, "Nothing to change") || !strings.Contains(out, "stays enabled on pool worker through 99-kubens-worker") {
		t.Errorf("disable's output:\n%s", out)
	}
}
