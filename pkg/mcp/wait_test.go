package mcp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

var (
	updatedTrue  = withCond(mcfgv1.MachineConfigPoolUpdated, true, "")
	updatingTrue = withCond(mcfgv1.MachineConfigPoolUpdating, true, "")
	expWorker    = []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}}}
)

func TestEvaluate(t *testing.T) {
	w := []string{"worker"}
	tests := []struct {
		name      string
		pool      mcfgv1.MachineConfigPool
		exps      []Expectation
		configs   ConfigLookup
		wantPhase Phase
		wantDone  bool
		wantErr   string
	}{
		{
			name:      "MC already in the source but changed: old rendered config lacks the unit",
			pool:      mkPool("worker", w, withSpec("r1", "99-kubens-worker"), withStatus("r1", 3, 3, 3, 0), updatedTrue),
			exps:      []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: UnitEnabled}},
			configs:   kubensConfigs(map[string]bool{"r1": false, "r2": true}),
			wantPhase: PhaseRender,
		},
		{
			name:      "changed MC rendered",
			pool:      mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r1", 3, 3, 3, 0), updatedTrue),
			exps:      []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: UnitEnabled}},
			configs:   kubensConfigs(map[string]bool{"r1": false, "r2": true}),
			wantPhase: PhaseRollout,
		},
		{
			name:      "unit expectation without a lookup never passes",
			pool:      mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r2", 3, 3, 3, 0), updatedTrue),
			exps:      []Expectation{{Pool: "worker", Unit: "kubens.service", UnitState: UnitEnabled}},
			wantPhase: PhaseRender,
		},
		{
			name: "the early-return race: old Updated=True, source without our MC",
			pool: mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 3, 3, 3, 0), updatedTrue),
			exps: expWorker, wantPhase: PhaseRender,
		},
		{
			name: "rendered, rollout not started yet (status still old, Updated=True)",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-1", 3, 3, 3, 0), updatedTrue),
			exps: expWorker, wantPhase: PhaseRollout,
		},
		{
			name: "rolling out",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-1", 3, 2, 1, 0), updatingTrue),
			exps: expWorker, wantPhase: PhaseRollout,
		},
		{
			name: "status config switched but counts incomplete",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 2, 0), updatedTrue),
			exps: expWorker, wantPhase: PhaseRollout,
		},
		{
			name: "observedGeneration behind",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 3, 0), updatedTrue, withGeneration(3, 2)),
			exps: expWorker, wantPhase: PhaseRollout,
		},
		{
			name: "done",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 3, 0), updatedTrue),
			exps: expWorker, wantPhase: PhaseDone, wantDone: true,
		},
		{
			name: "disable: our MC still in source",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 3, 0), updatedTrue),
			exps: []Expectation{{Pool: "worker", Absent: []string{"99-kubens-worker"}}}, wantPhase: PhaseRender,
		},
		{
			name: "disable done",
			pool: mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 3, 3, 3, 0), updatedTrue),
			exps: []Expectation{{Pool: "worker", Absent: []string{"99-kubens-worker"}}}, wantPhase: PhaseDone, wantDone: true,
		},
		{
			name: "node degraded fails fast",
			pool: mkPool("worker", w, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-1", 3, 2, 1, 1),
				withCond(mcfgv1.MachineConfigPoolNodeDegraded, true, `Node w2 is reporting: "boom"`)),
			exps: expWorker, wantPhase: PhaseRollout, wantErr: `pool worker is degraded (NodeDegraded): Node w2 is reporting: "boom"`,
		},
		{
			name: "render failure fails fast in phase 1",
			pool: mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 3, 3, 3, 0), updatedTrue,
				withCond(mcfgv1.MachineConfigPoolRenderDegraded, true, "Failed to render configuration for pool worker")),
			exps: expWorker, wantPhase: PhaseRender, wantErr: "pool worker cannot render its configuration (RenderDegraded): Failed to render",
		},
		{
			name: "paused pool with work to do is reported, not waited on",
			pool: mkPool("worker", w, paused, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-1", 3, 3, 0, 0)),
			exps: expWorker, wantPhase: PhaseRollout, wantErr: "pool worker is paused",
		},
		{
			name: "paused pool already rolled out is fine",
			pool: mkPool("worker", w, paused, withSpec("rendered-worker-2", "99-kubens-worker"), withStatus("rendered-worker-2", 3, 3, 3, 0), updatedTrue),
			exps: expWorker, wantPhase: PhaseDone, wantDone: true,
		},
		{
			name: "missing pool",
			pool: mkPool("master", []string{"master"}),
			exps: expWorker, wantErr: "pool worker no longer exists",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, done, err := Evaluate([]mcfgv1.MachineConfigPool{tt.pool}, tt.exps, tt.configs, NodeView{})
			if done != tt.wantDone {
				t.Errorf("done = %v, want %v", done, tt.wantDone)
			}
			if tt.wantPhase != "" && (len(prog) != 1 || prog[0].Phase != tt.wantPhase) {
				t.Errorf("progress = %+v, want phase %s", prog, tt.wantPhase)
			}
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestProgressString(t *testing.T) {
	p := PoolProgress{Pool: "worker", Phase: PhaseRollout, Config: "rendered-worker-2", Total: 3, Ready: 2, Updated: 1}
	if got, want := p.String(), "worker: Updating 1/3 updated, 2 ready, 0 degraded (rendered-worker-2)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// feed sends snapshots one by one, as the watch would.
func feed(snaps ...[]mcfgv1.MachineConfigPool) <-chan []mcfgv1.MachineConfigPool {
	ch := make(chan []mcfgv1.MachineConfigPool)
	go func() {
		for _, s := range snaps {
			ch <- s
		}
	}()
	return ch
}

func TestWaitSequence(t *testing.T) {
	w := []string{"worker"}
	race := mkPool("worker", w, withSpec("r1", "00-worker"), withStatus("r1", 2, 2, 2, 0), updatedTrue)
	renderedNotRolled := mkPool("worker", w, withSpec("r2", "00-worker", "99-kubens-worker"), withStatus("r1", 2, 2, 2, 0), updatedTrue)
	rolling := mkPool("worker", w, withSpec("r2", "00-worker", "99-kubens-worker"), withStatus("r1", 2, 1, 1, 0), updatingTrue)
	done := mkPool("worker", w, withSpec("r2", "00-worker", "99-kubens-worker"), withStatus("r2", 2, 2, 2, 0), updatedTrue)

	var seen []string
	err := Wait(context.Background(), feed(
		[]mcfgv1.MachineConfigPool{race}, []mcfgv1.MachineConfigPool{renderedNotRolled},
		[]mcfgv1.MachineConfigPool{rolling}, []mcfgv1.MachineConfigPool{done},
	), WaitOptions{Expectations: expWorker, Progress: func(p []PoolProgress) { seen = append(seen, string(p[0].Phase)) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, ","); got != "Rendering,Updating,Updating,Updated" {
		t.Fatalf("phases %s", got)
	}
}

func TestWaitTimeout(t *testing.T) {
	race := mkPool("worker", []string{"worker"}, withSpec("r1", "00-worker"), withStatus("r1", 2, 2, 2, 0), updatedTrue)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := Wait(ctx, feed([]mcfgv1.MachineConfigPool{race}), WaitOptions{Expectations: expWorker})
	var te *TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "worker: Rendering 2/2 updated") {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitNamesDegradedNodes(t *testing.T) {
	p := mkPool("worker", []string{"worker"}, withSpec("r2", "99-kubens-worker"), withStatus("r1", 2, 1, 1, 1),
		withCond(mcfgv1.MachineConfigPoolNodeDegraded, true, "1 node degraded"))
	nodes := []corev1.Node{node("w1", []string{"worker"}, "r2", "r2", "Done", ""), node("w2", []string{"worker"}, "r1", "r2", "Degraded", "disk full")}
	err := Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{p}), WaitOptions{
		Expectations: expWorker,
		Nodes:        func(context.Context) ([]corev1.Node, error) { return nodes, nil },
		// Degraded from the first snapshot on: judged at once.
		StaleConditionGrace: -1,
	})
	var pe *PoolError
	if !errors.As(err, &pe) || pe.Kind != KindNodeDegraded || !strings.Contains(err.Error(), "degraded nodes: w2 (Degraded: disk full)") {
		t.Fatalf("err = %v", err)
	}
}

// A pool paused mid-rollout names the nodes the pause holds back: the one
// still finishing its update and the one never handed the new config.
func TestWaitNamesNodesBehindAPause(t *testing.T) {
	p := mkPool("worker", []string{"worker"}, withSpec("r2", "99-kubens-worker"), withStatus("r1", 3, 3, 1, 0), updatingTrue, paused)
	nodes := []corev1.Node{
		node("w1", []string{"worker"}, "r2", "r2", "Done", ""),
		node("w2", []string{"worker"}, "r1", "r2", "Working", ""),
		node("w3", []string{"worker"}, "r1", "r1", "Done", ""),
		node("m1", []string{"master"}, "m1", "m1", "Done", ""),
	}
	err := Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{p}), WaitOptions{
		Expectations: expWorker,
		Nodes:        func(context.Context) ([]corev1.Node, error) { return nodes, nil },
	})
	var pe *PoolError
	if !errors.As(err, &pe) || pe.Kind != KindPaused ||
		!strings.HasSuffix(err.Error(), "is paused, so its nodes will not be updated; not updated yet: w2 (updating), w3 (at r1)") {
		t.Fatalf("err = %v", err)
	}
}

func TestCurrentExpectations(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{
		mkPool("worker", []string{"worker"}, withSpec("r1", "00-worker", "99-kubens-worker-old")),
		mkPool("master", []string{"master"}, withSpec("r2", "00-master")),
	}
	mcs := []mcfgv1.MachineConfig{managed(mc("99-kubens-worker", "worker", nil)), mc("00-worker", "worker", nil), mc("00-master", "master", nil),
		rendered("r1", "worker", nil)}
	got, err := CurrentExpectations(pools, mcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Expectation{
		{Pool: "master", Present: []string{"00-master"}, Unit: "kubens.service", UnitState: UnitDisabled, Wrapped: map[string]string{}},
		{Pool: "worker", Present: []string{"00-worker", "99-kubens-worker"}, Absent: []string{"99-kubens-worker-old"},
			Unit: "kubens.service", UnitState: UnitDisabled, Wrapped: map[string]string{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := CurrentExpectations(pools, mcs, []string{"infra"}); err == nil || !strings.Contains(err.Error(), "no MachineConfigPool named infra; pools on this cluster: master, worker") {
		t.Fatalf("err = %v", err)
	}
}

// Issue 9 item 7: after the manual procedure (`oc apply` of 99-kubens-worker
// without our label) the standalone wait must not return on the pool's old
// Updated=True: the unmanaged config must be in the rendered source first.
func TestCurrentExpectationsIncludeUnmanagedConfigs(t *testing.T) {
	w := []string{"worker"}
	before := mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 2, 2, 2, 0), updatedTrue)
	mcs := []mcfgv1.MachineConfig{mc("00-worker", "worker", nil), mc("99-kubens-worker", "worker", map[string]bool{"kubens.service": true})}
	exps, err := CurrentExpectations([]mcfgv1.MachineConfigPool{before}, mcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != 1 || !reflect.DeepEqual(exps[0].Present, []string{"00-worker", "99-kubens-worker"}) || exps[0].UnitState != UnitEnabled {
		t.Fatalf("expectations %+v", exps)
	}
	units := kubensConfigs(map[string]bool{"rendered-worker-1": false, "rendered-worker-2": true})
	if prog, done, err := Evaluate([]mcfgv1.MachineConfigPool{before}, exps, units, NodeView{}); done || err != nil || prog[0].Phase != PhaseRender {
		t.Fatalf("before the render: %+v done=%v err=%v, want Rendering", prog, done, err)
	}
	after := mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-2", 2, 2, 2, 0), updatedTrue)
	if _, done, err := Evaluate([]mcfgv1.MachineConfigPool{after}, exps, units, NodeView{}); !done || err != nil {
		t.Fatalf("after the rollout: done=%v err=%v", done, err)
	}
}

// Issue 9 item 1: one Ignition 2.2.0 config in a pool made the expected unit
// state unknown, so phase 1 never passed and wait hung until --timeout.
func TestWaitWithIgnition22Configs(t *testing.T) {
	w := []string{"worker"}
	sctp := mc("load-sctp-module-worker", "worker", nil)
	sctp.Spec.Config.Raw = []byte(ign22LoadSCTP)
	enable22 := mc("99-custom-enable-kubens-worker", "worker", nil)
	enable22.Spec.Config.Raw = []byte(ign22EnableKubens)
	for _, tt := range []struct {
		name string
		mcs  []mcfgv1.MachineConfig
	}{
		{"2.2.0 config beside ours", []mcfgv1.MachineConfig{managed(mc("99-kubens-worker", "worker", map[string]bool{"kubens.service": true})), sctp}},
		{"2.2.0 config enabling kubens", []mcfgv1.MachineConfig{enable22, sctp}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, m := range tt.mcs {
				names = append(names, m.Name)
			}
			sort.Strings(names)
			p := mkPool("worker", w, withSpec("r2", names...), withStatus("r2", 1, 1, 1, 0), updatedTrue)
			exps, err := CurrentExpectations([]mcfgv1.MachineConfigPool{p}, tt.mcs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if exps[0].Unit != "kubens.service" || exps[0].UnitState != UnitEnabled {
				t.Fatalf("expectation %+v, want kubens.service enabled", exps[0])
			}
			r2 := rendered("r2", "worker", map[string]bool{"kubens.service": true})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = Wait(ctx, feed([]mcfgv1.MachineConfigPool{p}), WaitOptions{
				Expectations:     exps,
				GetMachineConfig: func(context.Context, string) (*mcfgv1.MachineConfig, error) { return &r2, nil },
			})
			if err != nil {
				t.Fatalf("wait: %v", err)
			}
		})
	}
}

// withCondAt sets a condition with its lastTransitionTime.
func withCondAt(t mcfgv1.MachineConfigPoolConditionType, status bool, msg string, at time.Time) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) {
		withCond(t, status, msg)(p)
		p.Status.Conditions[len(p.Status.Conditions)-1].LastTransitionTime = metav1.NewTime(at)
	}
}

// Issue 9 item 14: the offending config deleted, `disable --yes --wait`
// must not fail on the RenderDegraded condition of the render before the
// change: the operator re-renders about 5 s later.
func TestWaitIgnoresDegradedConditionFromBeforeTheChange(t *testing.T) {
	w := []string{"worker"}
	failedAt := time.Now().Add(-time.Minute)
	const msg = "Failed to render configuration for pool worker: parsing Ignition config failed"
	exps := []Expectation{{Pool: "worker", Absent: []string{"99-kubens-worker"}}}
	staleFail := mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-2", 2, 2, 2, 0), updatedTrue,
		withCondAt(mcfgv1.MachineConfigPoolRenderDegraded, true, msg, failedAt), withCondAt(mcfgv1.MachineConfigPoolDegraded, true, msg, failedAt))
	reRendered := mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-2", 2, 2, 2, 0), updatedTrue,
		withCondAt(mcfgv1.MachineConfigPoolRenderDegraded, false, "", time.Now()), withCondAt(mcfgv1.MachineConfigPoolDegraded, true, msg, failedAt))
	rolling := mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-2", 2, 1, 1, 0), updatingTrue,
		withCondAt(mcfgv1.MachineConfigPoolRenderDegraded, false, "", time.Now()))
	done := mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 2, 2, 2, 0), updatedTrue,
		withCondAt(mcfgv1.MachineConfigPoolRenderDegraded, false, "", time.Now()))

	var lines []string
	err := Wait(context.Background(), feed(
		[]mcfgv1.MachineConfigPool{staleFail}, []mcfgv1.MachineConfigPool{reRendered},
		[]mcfgv1.MachineConfigPool{rolling}, []mcfgv1.MachineConfigPool{done},
	), WaitOptions{Expectations: exps, Progress: func(p []PoolProgress) { lines = append(lines, p[0].String()) }})
	if err != nil {
		t.Fatalf("wait failed on a condition from before the change: %v", err)
	}
	if !strings.Contains(lines[0], "RenderDegraded, Degraded from before the change") {
		t.Errorf("first progress line does not say why it goes on: %q", lines[0])
	}

	// The same condition renewed during the wait (a new failure: the
	// message or lastTransitionTime moves) fails at once.
	failedAgain := staleFail.DeepCopy()
	failedAgain.Status.Conditions[1].Message = "Failed to render configuration for pool worker: another config is broken"
	failedAgain.Status.Conditions[1].LastTransitionTime = metav1.NewTime(time.Now())
	start := time.Now()
	err = Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{staleFail}, []mcfgv1.MachineConfigPool{*failedAgain}), WaitOptions{Expectations: exps})
	var pe *PoolError
	if !errors.As(err, &pe) || pe.Kind != KindRenderDegraded || !strings.Contains(err.Error(), "another config is broken") || time.Since(start) > time.Second {
		t.Fatalf("renewed failure: err = %v after %s", err, time.Since(start))
	}

	// A failure that appears during the wait fails it at once, as before.
	clean := mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-2", 2, 2, 2, 0), updatedTrue)
	err = Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{clean}, []mcfgv1.MachineConfigPool{staleFail}), WaitOptions{Expectations: exps})
	if !errors.As(err, &pe) || pe.Kind != KindRenderDegraded {
		t.Fatalf("new failure: err = %v", err)
	}

	// A node degraded when the wait starts (left by the old config, or
	// repaired just before `wait` is run again) does not fail the wait in
	// either phase while the grace lasts: the operator clears the
	// condition once the daemon has retried the node. If it never does,
	// the wait fails after the grace.
	nodeDeg := withCondAt(mcfgv1.MachineConfigPoolNodeDegraded, true, `Node w1 is reporting: "disk full"`, failedAt)
	notRendered := mkPool("worker", w, withSpec("rendered-worker-1", "00-worker"), withStatus("rendered-worker-1", 2, 1, 1, 1), nodeDeg)
	renderedDeg := mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-1", 2, 1, 1, 1), nodeDeg)
	repaired := mkPool("worker", w, withSpec("rendered-worker-2", "00-worker", "99-kubens-worker"), withStatus("rendered-worker-2", 2, 2, 2, 0), updatedTrue,
		withCondAt(mcfgv1.MachineConfigPoolNodeDegraded, false, "", time.Now()))
	var phases []string
	err = Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{notRendered}, []mcfgv1.MachineConfigPool{renderedDeg}, []mcfgv1.MachineConfigPool{repaired}),
		WaitOptions{Expectations: expWorker, Progress: func(p []PoolProgress) { phases = append(phases, string(p[0].Phase)) }})
	if err != nil || strings.Join(phases, ",") != "Rendering,Updating,Updated" {
		t.Fatalf("node degraded before the wait, then repaired: err = %v, phases %v", err, phases)
	}
	start = time.Now()
	err = Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{notRendered}, []mcfgv1.MachineConfigPool{renderedDeg}),
		WaitOptions{Expectations: expWorker, StaleConditionGrace: 200 * time.Millisecond})
	if !errors.As(err, &pe) || pe.Kind != KindNodeDegraded || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("node degraded before the wait, never repaired: err = %v after %s", err, time.Since(start))
	}

	// A leftover that the operator never clears fails the wait after the
	// grace period, without another snapshot.
	start = time.Now()
	err = Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{staleFail}), WaitOptions{Expectations: exps, StaleConditionGrace: 200 * time.Millisecond})
	if !errors.As(err, &pe) || pe.Kind != KindRenderDegraded || time.Since(start) < 200*time.Millisecond || time.Since(start) > 2*time.Second {
		t.Fatalf("leftover never cleared: err = %v after %s", err, time.Since(start))
	}
}

func TestWaitLooksUpRenderedUnit(t *testing.T) {
	w := []string{"worker"}
	stale := mkPool("worker", w, withSpec("r1", "99-kubens-worker"), withStatus("r1", 1, 1, 1, 0), updatedTrue)
	fresh := mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r2", 1, 1, 1, 0), updatedTrue)
	configs := map[string]mcfgv1.MachineConfig{
		"r1": rendered("r1", "worker", map[string]bool{"kubens.service": false}),
		"r2": rendered("r2", "worker", map[string]bool{"kubens.service": true}),
	}
	fails := 1
	get := func(_ context.Context, name string) (*mcfgv1.MachineConfig, error) {
		if name == "r2" && fails > 0 {
			fails-- // the API is away once: Wait must retry by itself
			return nil, errors.New("connection refused")
		}
		mc := configs[name]
		return &mc, nil
	}
	var phases []string
	err := Wait(context.Background(), feed([]mcfgv1.MachineConfigPool{stale}, []mcfgv1.MachineConfigPool{fresh}), WaitOptions{
		Expectations:     []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: UnitEnabled}},
		GetMachineConfig: get,
		Progress:         func(p []PoolProgress) { phases = append(phases, string(p[0].Phase)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(phases, ","); got != "Rendering,Rendering,Updated" {
		t.Fatalf("phases %s", got)
	}
}

// kubensConfigs is a ConfigLookup of rendered configs that enable
// kubens.service or not, by name; unknown names are not known yet.
func kubensConfigs(enabled map[string]bool) ConfigLookup {
	return func(config string) (manifests.Config, bool) {
		on, ok := enabled[config]
		if !ok {
			return manifests.Config{}, false
		}
		cfg, err := manifests.ParseConfig([]byte(fmt.Sprintf(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":%v}]}}`, on)))
		return cfg, err == nil
	}
}

// A wrap config changed under the same name is rendered only once the
// rendered config carries exactly the wrapper drop-ins forecast: the old
// rendered config (another command) and one with an extra unit both keep
// the pool in Rendering.
func TestEvaluateWrappedDropIns(t *testing.T) {
	w := []string{"worker"}
	cfgs := map[string]string{
		"r1": `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"agent.service","dropins":[{"name":"99-kubens-wrapper.conf","contents":"old"}]}]}}`,
		"r2": `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"agent.service","dropins":[{"name":"99-kubens-wrapper.conf","contents":"new"}]}]}}`,
		"r3": `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"agent.service","dropins":[{"name":"99-kubens-wrapper.conf","contents":"new"}]},{"name":"b.service","dropins":[{"name":"99-kubens-wrapper.conf","contents":"x"}]}]}}`,
		"r4": `{"ignition":{"version":"3.2.0"}}`,
	}
	lookup := func(config string) (manifests.Config, bool) {
		raw, ok := cfgs[config]
		if !ok {
			return manifests.Config{}, false
		}
		cfg, err := manifests.ParseConfig([]byte(raw))
		return cfg, err == nil
	}
	for _, tt := range []struct {
		rendered string
		want     map[string]string
		phase    Phase
	}{
		{"r1", map[string]string{"agent.service": "new"}, PhaseRender},
		{"r2", map[string]string{"agent.service": "new"}, PhaseDone},
		{"r3", map[string]string{"agent.service": "new"}, PhaseRender},
		{"r2", map[string]string{}, PhaseRender},
		{"r4", map[string]string{}, PhaseDone},
		{"unknown", map[string]string{}, PhaseRender},
	} {
		pool := mkPool("worker", w, withSpec(tt.rendered, "99-kubens-wrap-worker"), withStatus(tt.rendered, 2, 2, 2, 0), updatedTrue)
		exps := []Expectation{{Pool: "worker", Present: []string{"99-kubens-wrap-worker"}, Wrapped: tt.want}}
		prog, _, err := Evaluate([]mcfgv1.MachineConfigPool{pool}, exps, lookup, NodeView{})
		if err != nil || prog[0].Phase != tt.phase {
			t.Errorf("rendered %s, want %v: %s (err %v), want %s", tt.rendered, tt.want, prog[0].Phase, err, tt.phase)
		}
	}
}
