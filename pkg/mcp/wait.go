package mcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// Expectation is what phase 1 of the wait checks on one pool: the render
// controller has taken our change into spec.configuration.source. Without
// it, a wait that starts right after apply sees the pool's old Updated=True
// and returns before anything happened (the `oc wait` race).
type Expectation struct {
	Pool string
	// Present MCs must be in spec.configuration.source, Absent ones must not.
	Present []string
	Absent  []string
	// Unit, when set, must be in state UnitState in the rendered config
	// named by spec.configuration. Names alone miss a change to an MC that
	// is already in the source (enable over an MC applied with enabled:
	// false): its old rendered config still lists it.
	Unit      string
	UnitState UnitState
	// Wrapped, when not nil, must be exactly the wrapper drop-ins
	// (unit -> contents, see manifests.WrapDropIns) of the rendered config
	// named by spec.configuration; an empty map means none. Like Unit, it
	// shows the render of a wrap config that changed under the same name.
	Wrapped map[string]string
}

// ConfigLookup returns the rendered config of that name, parsed; ok is
// false when it cannot tell (yet): not fetched, or unreadable.
type ConfigLookup func(config string) (cfg manifests.Config, ok bool)

// Phase is how far one pool has got.
type Phase string

const (
	PhaseRender  Phase = "Rendering" // waiting for the render controller
	PhaseRollout Phase = "Updating"  // waiting for nodes
	PhaseDone    Phase = "Updated"
)

// PoolProgress is one pool's position, reported after every change.
type PoolProgress struct {
	Pool        string
	Phase       Phase
	Config      string // spec.configuration.name
	Total       int32
	Ready       int32
	Updated     int32
	Degraded    int32
	Unavailable int32
	// Note, when set, tells why a degraded condition is not (yet) taken
	// as a failure.
	Note string
	// Stuck lists the pool's nodes that have been NotReady during their
	// update for longer than the threshold (see NodeView); a warning, not
	// a failure: such a node may still come back.
	Stuck []StuckNode
}

// String is the one-line progress form, stable so non-terminal output can
// print a line only when it changes.
func (p PoolProgress) String() string {
	s := fmt.Sprintf("%s: %s %d/%d updated, %d ready, %d degraded", p.Pool, p.Phase, p.Updated, p.Total, p.Ready, p.Degraded)
	if p.Config != "" {
		s += " (" + p.Config + ")"
	}
	if p.Note != "" {
		s += "; " + p.Note
	}
	if len(p.Stuck) > 0 {
		// Names only: the line must not change while nothing else does.
		names := make([]string, len(p.Stuck))
		for i, n := range p.Stuck {
			names[i] = n.Name
		}
		s += "; NotReady while updating: " + strings.Join(names, ", ")
	}
	return s
}

// ErrorKind classifies why a wait failed fast.
type ErrorKind string

const (
	KindNodeDegraded   ErrorKind = "NodeDegraded"
	KindRenderDegraded ErrorKind = "RenderDegraded"
	KindDegraded       ErrorKind = "Degraded"
	KindPaused         ErrorKind = "Paused"
	KindMissing        ErrorKind = "Missing"
)

// PoolError is a fail-fast verdict on one pool.
type PoolError struct {
	Pool    string
	Kind    ErrorKind
	Message string
	// Nodes holds "name (state: reason)" of degraded nodes, filled by Wait.
	Nodes []string
	// Waiting holds, for a paused pool, "name (where it is)" of the nodes
	// not yet at the pool's config, filled by Wait: the ones the pause
	// holds back.
	Waiting []string
}

// Error states what is wrong with the pool; what to do about it is the
// caller's to say, in its own command's words.
func (e *PoolError) Error() string {
	var b strings.Builder
	switch e.Kind {
	case KindPaused:
		fmt.Fprintf(&b, "pool %s is paused, so its nodes will not be updated", e.Pool)
	case KindMissing:
		fmt.Fprintf(&b, "pool %s no longer exists", e.Pool)
	case KindRenderDegraded:
		fmt.Fprintf(&b, "pool %s cannot render its configuration (RenderDegraded)", e.Pool)
	default:
		fmt.Fprintf(&b, "pool %s is degraded (%s)", e.Pool, e.Kind)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Nodes) > 0 {
		fmt.Fprintf(&b, "; degraded nodes: %s", strings.Join(e.Nodes, ", "))
	}
	if len(e.Waiting) > 0 {
		fmt.Fprintf(&b, "; not updated yet: %s", strings.Join(e.Waiting, ", "))
	}
	return b.String()
}

func sourceHas(p *mcfgv1.MachineConfigPool, name string) bool {
	for _, ref := range p.Spec.Configuration.Source {
		if ref.Name == name {
			return true
		}
	}
	return false
}

// Rendered is phase 1: the pool's spec config reflects the expectation.
func Rendered(p *mcfgv1.MachineConfigPool, e Expectation) bool {
	if p.Spec.Configuration.Name == "" {
		return false
	}
	for _, n := range e.Present {
		if !sourceHas(p, n) {
			return false
		}
	}
	for _, n := range e.Absent {
		if sourceHas(p, n) {
			return false
		}
	}
	return true
}

// unitRendered checks the expectations on the rendered config's contents.
func unitRendered(p *mcfgv1.MachineConfigPool, e Expectation, configs ConfigLookup) bool {
	if e.Unit == "" && e.Wrapped == nil {
		return true
	}
	if configs == nil {
		return false
	}
	cfg, ok := configs(p.Spec.Configuration.Name)
	if !ok {
		return false
	}
	if e.Unit != "" && configUnitState(cfg, e.Unit) != e.UnitState {
		return false
	}
	return e.Wrapped == nil || maps.Equal(manifests.WrapDropIns(cfg), e.Wrapped)
}

// configUnitState is a unit's state in a parsed config: enabled, or
// disabled (also when absent: units ship disabled).
func configUnitState(cfg manifests.Config, unit string) UnitState {
	if manifests.Unit(cfg, unit).EnabledOn() {
		return UnitEnabled
	}
	return UnitDisabled
}

// RolledOut is phase 2: every node runs the spec config and the pool status
// is about the current generation.
func RolledOut(p *mcfgv1.MachineConfigPool) bool {
	updated, _ := condition(p, mcfgv1.MachineConfigPoolUpdated)
	return p.Status.Configuration.Name == p.Spec.Configuration.Name &&
		updated &&
		p.Status.UpdatedMachineCount == p.Status.MachineCount &&
		p.Status.ObservedGeneration >= p.Generation
}

// Evaluate judges one snapshot of the pools against the expectations: the
// progress of each expected pool, whether all are done, and a fail-fast
// error. It is pure; Wait feeds it every change, and the time from its
// clock.
//
// units resolves unit expectations; with nil, an expectation with a Unit
// never passes phase 1. nodes, with the time to judge them at, fills each
// unfinished pool's Stuck list; the zero NodeView skips that check.
func Evaluate(pools []mcfgv1.MachineConfigPool, exps []Expectation, configs ConfigLookup, nodes NodeView) ([]PoolProgress, bool, error) {
	progress, done, _, err := evaluate(pools, exps, configs, nil, nodes)
	return progress, done, err
}

// staleFunc tells whether a degraded condition (status True) of a pool is
// unchanged since before the change and still within the grace period.
type staleFunc func(pool string, c mcfgv1.MachineConfigPoolCondition) bool

// degradedConditions in the order a verdict names them: render failures
// block phase 1, node failures phase 2.
var degradedConditions = []struct {
	Type mcfgv1.MachineConfigPoolConditionType
	Kind ErrorKind
}{
	{mcfgv1.MachineConfigPoolRenderDegraded, KindRenderDegraded},
	{mcfgv1.MachineConfigPoolNodeDegraded, KindNodeDegraded},
	{mcfgv1.MachineConfigPoolDegraded, KindDegraded},
}

// evaluate is Evaluate with the stale-condition test, and it also returns
// when a NotReady updating node of an unfinished pool next crosses the
// stuck threshold (zero: none), for Wait to look again then.
func evaluate(pools []mcfgv1.MachineConfigPool, exps []Expectation, configs ConfigLookup, stale staleFunc, nodes NodeView) ([]PoolProgress, bool, time.Time, error) {
	byName := map[string]*mcfgv1.MachineConfigPool{}
	for i := range pools {
		byName[pools[i].Name] = &pools[i]
	}
	done := true
	var progress []PoolProgress
	var errs []error
	var next time.Time
	for _, e := range exps {
		p, ok := byName[e.Pool]
		if !ok {
			errs = append(errs, &PoolError{Pool: e.Pool, Kind: KindMissing})
			done = false
			continue
		}
		pp := PoolProgress{
			Pool: p.Name, Config: p.Spec.Configuration.Name,
			Total: p.Status.MachineCount, Ready: p.Status.ReadyMachineCount, Updated: p.Status.UpdatedMachineCount,
			Degraded: p.Status.DegradedMachineCount, Unavailable: p.Status.UnavailableMachineCount,
		}
		switch {
		case !Rendered(p, e) || !unitRendered(p, e, configs):
			pp.Phase = PhaseRender
		case !RolledOut(p):
			pp.Phase = PhaseRollout
		default:
			pp.Phase = PhaseDone
		}
		if pp.Phase == PhaseDone {
			progress = append(progress, pp)
			continue
		}
		done = false
		var at time.Time
		pp.Stuck, at = findStuck(pools, p.Name, nodes)
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
		// Render failures block phase 1; node failures block phase 2. Any
		// of them means the wait cannot end well without a human, unless
		// it was there before the change and the operator has not looked
		// at the change yet: a failed render stays reported until the
		// next render, about 5 s after a MachineConfig changes.
		var verdict error
		var leftovers []string
		for _, dc := range degradedConditions {
			c := getCondition(p, dc.Type)
			if c == nil || c.Status != corev1.ConditionTrue {
				continue
			}
			// A failed render's leftover, and the aggregate Degraded the
			// node controller recomputes a moment later, stay leftovers
			// through the render: the operator writes the new spec before
			// it clears them. A node degraded when the wait started stays
			// a leftover in both phases: the wait that the advice asks for
			// once its cause is fixed starts before the daemon has retried
			// the node and the operator has cleared the condition.
			if stale != nil && stale(p.Name, *c) {
				leftovers = append(leftovers, string(dc.Type))
				continue
			}
			verdict = &PoolError{Pool: p.Name, Kind: dc.Kind, Message: c.Message}
			break
		}
		switch {
		case verdict != nil:
			errs = append(errs, verdict)
		case len(leftovers) > 0:
			pp.Note = strings.Join(leftovers, ", ") + " from before the change, waiting for the operator to act on it"
		case p.Spec.Paused:
			// A paused pool still renders but never rolls out: report it
			// instead of hanging until the timeout.
			errs = append(errs, &PoolError{Pool: p.Name, Kind: KindPaused})
		}
		progress = append(progress, pp)
	}
	return progress, done, next, errors.Join(errs...)
}

func getCondition(p *mcfgv1.MachineConfigPool, t mcfgv1.MachineConfigPoolConditionType) *mcfgv1.MachineConfigPoolCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// DefaultStaleConditionGrace is how long Wait holds back on a degraded
// condition that was already reported when it started (see
// WaitOptions.StaleConditionGrace).
const DefaultStaleConditionGrace = 30 * time.Second

// WaitOptions configures Wait.
type WaitOptions struct {
	Expectations []Expectation
	// Progress gets the progress after every change (may be nil).
	Progress func([]PoolProgress)
	// Nodes, when set, is called once on a degraded verdict to name the
	// degraded nodes and their reasons.
	Nodes func(ctx context.Context) ([]corev1.Node, error)
	// GetMachineConfig fetches a rendered config for expectations with a
	// Unit or Wrapped. Each name is fetched once; a failed fetch is retried a second
	// later (the API may be away).
	GetMachineConfig func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error)
	// StaleConditionGrace: a degraded condition (RenderDegraded,
	// NodeDegraded, Degraded) that the first snapshot already showed, and
	// that has not changed since (same status, message and
	// lastTransitionTime), is about the state before the change: the MCO
	// keeps a failed render's condition until it renders again, about 5 s
	// after a MachineConfig changes, and a degraded node keeps its state
	// until it takes the new config. Such a condition fails the wait only
	// after this long (default DefaultStaleConditionGrace); NodeDegraded
	// only until the pool has rendered the change. A condition that appears
	// or changes during the wait fails it at once. Negative: no grace.
	StaleConditionGrace time.Duration
	// WatchNodes, when set, starts a stream of node lists (see
	// WatchNodes), for naming nodes stuck in their update. Wait starts it
	// only once a pool still has work to do, and stops it with ctx.
	WatchNodes func(ctx context.Context) <-chan []corev1.Node
	// StuckAfter is how long a node may be NotReady during its update
	// (desiredConfig != currentConfig, or state Working) before Stuck hears
	// of it, once per node and config, and the TimeoutError names it
	// (default DefaultStuckAfter; negative: never). The node is not a
	// failure: it may still come back, and the MCO waits for it forever.
	StuckAfter time.Duration
	// Stuck is told about each stuck node once (may be nil).
	Stuck func(StuckNode)
	// Clock tells the time and runs the timers (default the real clock);
	// tests inject a fake one.
	Clock clock.Clock
}

// TimeoutError says which pools were still moving when time ran out, and
// which of their nodes were stuck (each pool's Stuck, judged at the end).
type TimeoutError struct {
	After   time.Duration
	Pending []PoolProgress
}

func (e *TimeoutError) Error() string {
	var parts []string
	var stuck []StuckNode
	for _, p := range e.Pending {
		if p.Phase != PhaseDone {
			parts = append(parts, p.String())
			stuck = append(stuck, p.Stuck...)
		}
	}
	msg := fmt.Sprintf("timed out after %s waiting for %s", e.After, strings.Join(parts, "; "))
	if len(stuck) > 0 {
		var names, advice []string
		for _, n := range stuck {
			names = append(names, n.String())
			advice = append(advice, n.Advice())
		}
		msg += fmt.Sprintf("; stuck in their update: %s; the MCO waits for them forever. %s",
			strings.Join(names, ", "), strings.Join(advice, ". "))
	}
	return msg + "; the rollout goes on in the cluster"
}

// Wait consumes pool snapshots (see WatchPools) until every expected pool
// has passed both phases, a pool fails fast, or ctx ends. Once a pool has
// work to do it also follows the nodes (WaitOptions.WatchNodes) to name the
// ones stuck in their update.
func Wait(ctx context.Context, snapshots <-chan []mcfgv1.MachineConfigPool, o WaitOptions) error {
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	start := clk.Now()
	var last []PoolProgress
	var pools []mcfgv1.MachineConfigPool
	// known caches the rendered configs read so far; a config that
	// cannot be parsed is cached as not ok, as the operator will not
	// change it either.
	type parsed struct {
		cfg manifests.Config
		ok  bool
	}
	known := map[string]parsed{}
	var retry <-chan time.Time
	grace := o.StaleConditionGrace
	if grace == 0 {
		grace = DefaultStaleConditionGrace
	}
	stuckAfter := o.StuckAfter
	if stuckAfter == 0 {
		stuckAfter = DefaultStuckAfter
	}
	// nodes is nil until the node stream has sent its first list; recheck
	// fires when a NotReady updating node crosses the threshold; warned
	// holds the node/config pairs already reported.
	var nodeCh <-chan []corev1.Node
	var nodes []corev1.Node
	nodesStarted := false
	var recheck <-chan time.Time
	warned := map[[2]string]bool{}
	view := func() NodeView {
		if nodes == nil {
			return NodeView{}
		}
		return NodeView{Nodes: nodes, Now: clk.Now(), StuckAfter: stuckAfter}
	}
	// before holds the degraded conditions of the first snapshot, by pool
	// and type; graceOver fires once to re-judge them.
	var before map[[2]string]mcfgv1.MachineConfigPoolCondition
	var graceOver <-chan time.Time
	stale := func(pool string, c mcfgv1.MachineConfigPoolCondition) bool {
		if clk.Since(start) >= grace {
			return false
		}
		b, ok := before[[2]string{pool, string(c.Type)}]
		return ok && b.Status == c.Status && b.Message == c.Message && b.Reason == c.Reason &&
			b.LastTransitionTime.Equal(&c.LastTransitionTime)
	}
	configs := func(config string) (manifests.Config, bool) {
		if p, ok := known[config]; ok {
			return p.cfg, p.ok
		}
		if config == "" || o.GetMachineConfig == nil {
			return manifests.Config{}, false
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		mc, err := o.GetMachineConfig(gctx, config)
		cancel()
		if err != nil {
			retry = clk.After(time.Second)
			return manifests.Config{}, false
		}
		cfg, err := manifests.ReadConfig(mc.Spec.Config.Raw)
		known[config] = parsed{cfg, err == nil}
		return cfg, err == nil
	}
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// Judge the stuck nodes at the end, not at the last change.
				v := view()
				for i := range last {
					if last[i].Phase != PhaseDone {
						last[i].Stuck, _ = findStuck(pools, last[i].Pool, v)
					}
				}
				return &TimeoutError{After: clk.Since(start).Round(time.Second), Pending: last}
			}
			return ctx.Err()
		case <-retry:
			retry = nil
		case <-graceOver:
			graceOver = nil
		case <-recheck:
			recheck = nil
		case n, ok := <-nodeCh:
			if !ok {
				nodeCh = nil
				continue
			}
			nodes = n
			if nodes == nil {
				nodes = []corev1.Node{}
			}
		case snap, ok := <-snapshots:
			if !ok {
				if ctx.Err() != nil {
					continue
				}
				return errors.New("pool watch ended unexpectedly")
			}
			pools = snap
			if before == nil {
				before = map[[2]string]mcfgv1.MachineConfigPoolCondition{}
				for i := range pools {
					for _, dc := range degradedConditions {
						if c := getCondition(&pools[i], dc.Type); c != nil && c.Status == corev1.ConditionTrue {
							before[[2]string{pools[i].Name, string(c.Type)}] = *c
						}
					}
				}
				if len(before) > 0 && grace > 0 {
					graceOver = clk.After(grace - clk.Since(start))
				}
			}
		}
		if pools == nil {
			continue // nodes before the first pool snapshot
		}
		progress, done, next, err := evaluate(pools, o.Expectations, configs, stale, view())
		last = progress
		// Warnings first, so a terminal redraws the pools below them.
		for _, p := range progress {
			for _, sn := range p.Stuck {
				key := [2]string{sn.Name, sn.Config}
				if !warned[key] {
					warned[key] = true
					if o.Stuck != nil {
						o.Stuck(sn)
					}
				}
			}
		}
		if o.Progress != nil {
			o.Progress(progress)
		}
		if err != nil {
			return enrich(ctx, err, pools, o.Nodes)
		}
		if done {
			return nil
		}
		if !nodesStarted && o.WatchNodes != nil && stuckAfter > 0 {
			// Some pool has work to do: follow the nodes from now on.
			nodesStarted = true
			nodeCh = o.WatchNodes(ctx)
		}
		recheck = nil
		if !next.IsZero() {
			recheck = clk.After(next.Sub(clk.Now()))
		}
	}
}

// enrich adds degraded node names and reasons to node-related pool errors.
func enrich(ctx context.Context, err error, pools []mcfgv1.MachineConfigPool, list func(context.Context) ([]corev1.Node, error)) error {
	if list == nil {
		return err
	}
	var nodes []corev1.Node
	var listed bool
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		pe, ok := e.(*PoolError)
		if !ok || (pe.Kind != KindNodeDegraded && pe.Kind != KindDegraded && pe.Kind != KindPaused) {
			continue
		}
		if !listed {
			listed = true
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			nodes, _ = list(ctx)
			cancel()
		}
		if pe.Kind == KindPaused {
			pe.Waiting = nodesBehind(pools, nodes, pe.Pool)
			continue
		}
		pe.Nodes = DegradedNodes(pools, nodes, pe.Pool)
	}
	return err
}

// nodesBehind names the nodes of pool that are not yet at its config
// (spec.configuration), with where each is: "updating" when it has been
// handed the config, else the config it runs.
func nodesBehind(pools []mcfgv1.MachineConfigPool, nodes []corev1.Node, pool string) []string {
	var target string
	for i := range pools {
		if pools[i].Name == pool {
			target = pools[i].Spec.Configuration.Name
		}
	}
	var out []string
	for i := range nodes {
		n := &nodes[i]
		if p, _ := PoolForNode(pools, n); p != pool {
			continue
		}
		cur, des := n.Annotations[CurrentConfigAnnotation], n.Annotations[DesiredConfigAnnotation]
		switch {
		case target == "" || cur == target && n.Annotations[StateAnnotation] == "Done":
		case des == target:
			out = append(out, n.Name+" (updating)")
		default:
			out = append(out, fmt.Sprintf("%s (at %s)", n.Name, cur))
		}
	}
	sort.Strings(out)
	return out
}

// CurrentExpectations builds the phase-1 expectations for a wait that did
// not itself change anything (`oc kubens wait`): every input MachineConfig a
// pool selects, whoever made it, must be in its rendered source (a config
// applied by hand, without our label, must not let the wait return on the
// pool's old Updated=True), and every MC in the source that no longer
// exists must have left it. Where every selected config can be read, the
// rendered config must also have kubens.service in the state their merge
// gives, which catches a config changed under the same name. only restricts
// the pools (empty: all); an unknown name is an error listing the pools.
func CurrentExpectations(pools []mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, only []string) ([]Expectation, error) {
	exists := map[string]bool{}
	for i := range mcs {
		exists[mcs[i].Name] = true
	}
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	var exps []Expectation
	for i := range pools {
		p := &pools[i]
		if len(want) > 0 && !want[p.Name] {
			continue
		}
		delete(want, p.Name)
		e := Expectation{Pool: p.Name}
		for j := range mcs {
			mc := &mcs[j]
			if IsRendered(mc) || mc.DeletionTimestamp != nil {
				continue
			}
			if ok, err := PoolSelectsMC(p, mc); err != nil {
				return nil, err
			} else if ok {
				e.Present = append(e.Present, mc.Name)
			}
		}
		sort.Strings(e.Present)
		// A changed MC stays in the source under the same name: also
		// expect the unit state the merge will give. A config that cannot
		// be read is left to the operator, which will not render it either
		// (RenderDegraded fails the wait).
		if len(e.Present) > 0 {
			if f := ForecastPool(p, mcs); f.Err == nil {
				e.Unit = manifests.UnitName
				e.UnitState = f.Kubens
				e.Wrapped = manifests.WrapDropIns(f.Merged)
			}
		}
		for _, ref := range p.Spec.Configuration.Source {
			if !exists[ref.Name] {
				e.Absent = append(e.Absent, ref.Name)
			}
		}
		exps = append(exps, e)
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("no MachineConfigPool named %s; pools on this cluster: %s", strings.Join(missing, ", "), strings.Join(PoolNames(pools), ", "))
	}
	sort.Slice(exps, func(i, j int) bool { return exps[i].Pool < exps[j].Pool })
	return exps, nil
}
