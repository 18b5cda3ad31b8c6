package mcp

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
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
		units     UnitLookup
		wantPhase Phase
		wantDone  bool
		wantErr   string
	}{
		{
			name: "MC already in the source but changed: old rendered config lacks the unit",
			pool: mkPool("worker", w, withSpec("r1", "99-kubens-worker"), withStatus("r1", 3, 3, 3, 0), updatedTrue),
			exps: []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: UnitEnabled}},
			units: func(config, unit string) UnitState {
				return map[string]UnitState{"r1": UnitDisabled, "r2": UnitEnabled}[config]
			},
			wantPhase: PhaseRender,
		},
		{
			name: "changed MC rendered",
			pool: mkPool("worker", w, withSpec("r2", "99-kubens-worker"), withStatus("r1", 3, 3, 3, 0), updatedTrue),
			exps: []Expectation{{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: UnitEnabled}},
			units: func(config, unit string) UnitState {
				return map[string]UnitState{"r1": UnitDisabled, "r2": UnitEnabled}[config]
			},
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
			prog, done, err := Evaluate([]mcfgv1.MachineConfigPool{tt.pool}, tt.exps, tt.units)
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
	})
	var pe *PoolError
	if !errors.As(err, &pe) || pe.Kind != KindNodeDegraded || !strings.Contains(err.Error(), "degraded nodes: w2 (Degraded: disk full)") {
		t.Fatalf("err = %v", err)
	}
}

// scriptedClient fails its first lists, then serves pools; every Watch
// returns a fake watcher the test drives and can drop.
type scriptedClient struct {
	mu       sync.Mutex
	failList int
	pools    []mcfgv1.MachineConfigPool
	lists    int
	watchers chan *watch.FakeWatcher
}

func (c *scriptedClient) List(ctx context.Context, _ metav1.ListOptions) (*mcfgv1.MachineConfigPoolList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists++
	if c.failList > 0 {
		c.failList--
		return nil, errors.New("connection refused")
	}
	return &mcfgv1.MachineConfigPoolList{Items: append([]mcfgv1.MachineConfigPool(nil), c.pools...)}, nil
}

func (c *scriptedClient) Watch(ctx context.Context, _ metav1.ListOptions) (watch.Interface, error) {
	w := watch.NewFake()
	c.watchers <- w
	return w, nil
}

func TestWatchPoolsSurvivesOutages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p1 := mkPool("worker", []string{"worker"}, withSpec("r1"))
	c := &scriptedClient{failList: 2, pools: []mcfgv1.MachineConfigPool{p1}, watchers: make(chan *watch.FakeWatcher, 4)}
	var errs []error
	var mu sync.Mutex
	snaps := WatchPools(ctx, c, WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})

	next := func() []mcfgv1.MachineConfigPool {
		select {
		case s := <-snaps:
			return s
		case <-ctx.Done():
			t.Fatal("no snapshot")
			return nil
		}
	}
	if s := next(); len(s) != 1 || s[0].Spec.Configuration.Name != "r1" {
		t.Fatalf("first snapshot %+v", s)
	}
	w := <-c.watchers
	p2 := p1.DeepCopy()
	p2.Spec.Configuration.Name = "r2"
	w.Modify(p2)
	if s := next(); s[0].Spec.Configuration.Name != "r2" {
		t.Fatalf("after modify %+v", s)
	}
	// Drop the watch (API restart): the loop re-lists and watches again.
	c.mu.Lock()
	c.pools = []mcfgv1.MachineConfigPool{*p2}
	c.mu.Unlock()
	w.Stop()
	if s := next(); s[0].Spec.Configuration.Name != "r2" {
		t.Fatalf("after relist %+v", s)
	}
	w2 := <-c.watchers
	w2.Error(&metav1.Status{Message: "too old resource version"})
	<-c.watchers
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 3 || !strings.Contains(errs[2].Error(), "too old") {
		t.Fatalf("errors reported: %v", errs)
	}
}

func TestCurrentExpectations(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{
		mkPool("worker", []string{"worker"}, withSpec("r1", "00-worker", "99-kubens-worker-old")),
		mkPool("master", []string{"master"}, withSpec("r2", "00-master")),
	}
	mcs := []mcfgv1.MachineConfig{managed(mc("99-kubens-worker", "worker", nil)), mc("00-worker", "worker", nil), mc("00-master", "master", nil)}
	isManaged := func(m *mcfgv1.MachineConfig) bool { return m.Labels["oc-kubens.io/managed-by"] == "oc-kubens" }
	got, err := CurrentExpectations(pools, mcs, nil, isManaged)
	if err != nil {
		t.Fatal(err)
	}
	want := []Expectation{{Pool: "master"}, {Pool: "worker", Present: []string{"99-kubens-worker"}, Absent: []string{"99-kubens-worker-old"},
		Unit: "kubens.service", UnitState: UnitDisabled}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := CurrentExpectations(pools, mcs, []string{"infra"}, isManaged); err == nil || !strings.Contains(err.Error(), "no MachineConfigPool named infra; pools on this cluster: master, worker") {
		t.Fatalf("err = %v", err)
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
