package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
)

// DefaultParallelism is the fewest probe pods in flight at once when no
// parallelism is given (see AutoParallelism): enough that a few hundred
// nodes take a couple of waves, while image pulls from one registry stay
// bounded.
const DefaultParallelism = 100

// MaxAutoParallelism caps AutoParallelism: beyond it, more pods at once
// would mostly add concurrent image pulls, not speed.
const MaxAutoParallelism = 1000

// autoWaves is how many waves of pods AutoParallelism aims for.
const autoWaves = 5

// AutoParallelism is the parallelism for n nodes when none is given:
// DefaultParallelism, or n/5 (rounded up) when that is more, at most
// MaxAutoParallelism; so up to 5000 nodes take at most 5 waves of pod
// latency. A fixed 100 made a 5000-node run pay 50 waves (50 s with 1 s
// pods, over 9 minutes with measure's 10 s window). The parallelism does
// not set the API load: every node costs one pod create and its kubelet's
// status writes whatever the parallelism, and creations are bounded
// separately (a few requests in flight, so a slower API server gets fewer
// per second; its 429 answers are retried after their Retry-After by
// client-go). A pod in flight costs the API server nothing while it runs.
func AutoParallelism(n int) int {
	return min(max(DefaultParallelism, (n+autoWaves-1)/autoWaves), MaxAutoParallelism)
}

// DefaultTimeout is how long one node's probe may take from its pod's
// creation, image pull included.
const DefaultTimeout = 2 * time.Minute

// deadlineSlack is added to the timeout for activeDeadlineSeconds: the
// kubelet counts from the pod's start, and the client must see the result
// before the kubelet kills the pod.
const deadlineSlack = 30 * time.Second

// creators is how many pod creations may be in flight at once, within the
// parallelism bound; enough to hide a WAN round trip, few enough not to
// burst the apiserver.
const creators = 8

// Engine runs probe pods on many nodes through one temporary namespace.
type Engine struct {
	Client     kubernetes.Interface
	Image      string
	PullPolicy corev1.PullPolicy
	// Parallelism bounds the probe pods in flight (AutoParallelism of the
	// node count if 0).
	// Pods for nodes that are NotReady when the run starts do not count: no
	// kubelet works on them, and holding slots for a whole timeout each
	// would stall every healthy node behind them.
	Parallelism int
	// Timeout bounds each node's probe (DefaultTimeout if 0).
	Timeout time.Duration
	// Keep leaves the namespace and its pods in place for debugging.
	Keep bool
	// Log receives progress lines (namespace created/deleted, sweeps). May be nil.
	Log io.Writer
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// OnNodeDone, if set, is called once per node as soon as its result is
	// known, with that result (a NodeResult for Run, the probe's R for
	// RunProbe): the caller's live progress. It runs on the run's own
	// goroutine, so it must return quickly.
	OnNodeDone func(result any)
}

// Probe is what a run does on each node. The engine owns everything else:
// the namespace, parallelism, deadlines, NotReady nodes, the watch and the
// cleanup, so every command that runs one pod per node gets the same
// guarantees.
type Probe[R any] interface {
	// Command is the container command of every pod of the run.
	Command() []string
	// Read turns a pod of the run into the node's result; false while the
	// pod is still on its way. It sees every update of the pod.
	Read(node string, pod *corev1.Pod) (R, bool)
	// Failed is the result of a node the engine gave up on: reason is one of
	// ReasonTimeout, ReasonNodeNotReady, ReasonNodeDeleted, ReasonPodDeleted,
	// ReasonInterrupted, ReasonCreateFailed or ReasonForbidden, message says
	// why in words.
	Failed(node, reason, message string) R
}

// RunOptions name a run and size its pods' lifetime.
type RunOptions struct {
	// Purpose is the RunLabel value and names what the run creates: the
	// namespace "oc-kubens-<Purpose>-xxxxx" and the pods "<Purpose>-<node>".
	// A DNS-1123 label of at most 20 characters.
	Purpose string
	// Window is how long each pod is meant to run once started (0 for a
	// probe that reports at once). It is added to the engine's timeout, for
	// the client's wait and for activeDeadlineSeconds, so that the timeout
	// keeps meaning "time to get the pod going".
	Window time.Duration
}

// ProbeOutcome is what one run found.
type ProbeOutcome[R any] struct {
	// Namespace is the temporary namespace the run used.
	Namespace string
	// Results has one entry per node, in the order the nodes were given.
	Results []R
	// CleanupErr is set when the namespace could not be deleted.
	CleanupErr error
}

// Outcome is what one verify run found.
type Outcome = ProbeOutcome[NodeResult]

// verifyProbe is verify's probe: the kubens probe script, its report
// classified, and Unknown for a node without one. Every pod of a run runs
// the same command, so each is given units, the wrapped units of all the
// nodes; byNode says which of them each node's own config wraps.
type verifyProbe struct {
	units  []string
	byNode map[string][]string
}

func (p verifyProbe) Command() []string { return ProbeCommand(p.units...) }

func (p verifyProbe) Read(node string, pod *corev1.Pod) (NodeResult, bool) {
	return classifyPod(node, pod, p.units, p.byNode[node])
}

func (verifyProbe) Failed(node, reason, message string) NodeResult {
	return NodeResult{Node: node, State: StateUnknown, Reason: reason, Message: message}
}

// verifyRun keeps the names verify has always used (oc-kubens-verify-*
// namespaces, verify-<node> pods): the README shows them and users may
// look for them.
var verifyRun = RunOptions{Purpose: "verify"}

// maxPurpose keeps "oc-kubens-<purpose>-" plus the 5 random characters
// of generateName, and "<purpose>-" in front of a node name, short.
const maxPurpose = 20

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, format+"\n", args...)
	}
}

func (e *Engine) parallelism(n int) int {
	p := e.Parallelism
	if p <= 0 {
		p = AutoParallelism(n)
	}
	return max(min(p, n), 1)
}

func (e *Engine) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

// PodDeadline is the activeDeadlineSeconds a probe pod gets for a timeout.
func PodDeadline(timeout time.Duration) time.Duration { return timeout + deadlineSlack }

// Run probes every node. It returns an error only when verify could not run
// at all (the namespace could not be made, the watch could not start); a
// node that could not be probed is a NodeResult in state Unknown. When ctx
// is cancelled (Ctrl-C) it stops, marks the nodes still open as
// Unknown(Interrupted), cleans up and returns the partial outcome together
// with ctx.Err().
func (e *Engine) Run(ctx context.Context, nodes []corev1.Node) (*Outcome, error) {
	return e.RunWithUnits(ctx, nodes, nil)
}

// RunWithUnits is Run that also checks the wrapped units: wrapped maps a
// node name to the units its config runs through kubensenter (see
// ExpectedResolver.WrappedFor). Every pod probes the union of the names that
// ValidUnitName accepts, and each node's result covers its own units (the
// Wrapped list and the WrappedUnits check). More than MaxWrappedUnits
// distinct names is an error, before anything is created: the report must
// fit in a termination message.
func (e *Engine) RunWithUnits(ctx context.Context, nodes []corev1.Node, wrapped map[string][]string) (*Outcome, error) {
	units, err := probedUnits(wrapped)
	if err != nil {
		return nil, err
	}
	return RunProbe[NodeResult](ctx, e, nodes, verifyRun, verifyProbe{units: units, byNode: wrapped})
}

// probedUnits is the sorted union of the valid unit names in wrapped.
func probedUnits(wrapped map[string][]string) ([]string, error) {
	var units []string
	for _, list := range wrapped {
		for _, u := range list {
			if ValidUnitName(u) {
				units = append(units, u)
			}
		}
	}
	slices.Sort(units)
	units = slices.Compact(units)
	if len(units) > MaxWrappedUnits {
		return nil, &TooManyUnitsError{Units: len(units), Max: MaxWrappedUnits}
	}
	return units, nil
}

// RunProbe runs p on every node through e, as Run does for verify (Run is
// RunProbe with verify's probe; it is a function because methods cannot
// have type parameters). Results holds p's Read for each node, or its
// Failed for a node the engine gave up on; on cancellation the open nodes
// get Failed(ReasonInterrupted) and ctx.Err() is returned with the outcome.
func RunProbe[R any](ctx context.Context, e *Engine, nodes []corev1.Node, o RunOptions, p Probe[R]) (*ProbeOutcome[R], error) {
	if len(o.Purpose) > maxPurpose || len(validation.IsDNS1123Label(o.Purpose)) > 0 {
		return nil, fmt.Errorf("run purpose %q: want a DNS-1123 label of at most %d characters", o.Purpose, maxPurpose)
	}
	if len(nodes) == 0 {
		return &ProbeOutcome[R]{}, nil
	}
	par := e.parallelism(len(nodes))
	timeout := e.timeout()
	budget := timeout + max(o.Window, 0)
	waves := (len(nodes)+par-1)/par + 1
	expires := e.now().Add(time.Duration(waves)*budget + PodDeadline(budget) + time.Minute)

	ns, err := e.Client.CoreV1().Namespaces().Create(ctx,
		NamespaceFor(NamespaceOptions{Prefix: "oc-kubens-" + o.Purpose + "-", Purpose: o.Purpose, Expires: expires}),
		metav1.CreateOptions{})
	if err != nil {
		return nil, explainCreate("create the temporary namespace", o.Purpose, err)
	}
	out := &ProbeOutcome[R]{Namespace: ns.Name, Results: make([]R, len(nodes))}
	e.logf("Probing %d node(s), %d at a time, in temporary namespace %s", len(nodes), par, ns.Name)
	defer func() {
		if e.Keep {
			e.logf("Keeping namespace %s as asked; delete it with: kubectl delete namespace %s", ns.Name, ns.Name)
			return
		}
		out.CleanupErr = DeleteNamespace(e.Client, ns.Name)
		if out.CleanupErr != nil {
			e.logf("warning: could not delete namespace %s: %v; delete it with: kubectl delete namespace %s", ns.Name, out.CleanupErr, ns.Name)
		}
	}()

	r := &run[R]{
		e: e, probe: p, purpose: o.Purpose, ns: ns.Name, nodes: nodes, results: out.Results,
		timeout: timeout, budget: budget,
		have:    make([]bool, len(nodes)),
		byPod:   map[string]*slot{},
		early:   map[string]*corev1.Pod{},
		sem:     make(chan struct{}, par),
		created: make(chan createMsg, par),
	}
	err = r.loop(ctx, ns.ResourceVersion)
	return out, err
}

// DeleteNamespace removes a temporary namespace, with its own short
// deadline so that it still runs after the run's context was cancelled.
//
// Pods that finished go with the namespace at once. A pod that has not
// finished needs its kubelet to confirm the deletion, and a node whose
// kubelet is down never does: the namespace would hang in Terminating until
// the node came back. So those pods are force-deleted first (one write per
// unfinished pod; the kubelet, if alive, kills the container when it sees the
// pod gone, and activeDeadlineSeconds bounds it otherwise).
func DeleteNamespace(client kubernetes.Interface, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An API server that is restarting just then gets the rest of the 30 s.
	var pods *corev1.PodList
	err := retryUnreachable(ctx, func() (err error) {
		pods, err = client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
		return err
	}, nil)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var errs []error
	if pods != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, creators)
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				err := client.CoreV1().Pods(name).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
				if err != nil && !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	err = retryUnreachable(ctx, func() error {
		return client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	}, nil)
	if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SweepStale deletes namespaces left by earlier runs (verify, exec or any
// other RunProbe) that crashed before cleaning up, once they are stale: past their
// ExpiresAnnotation, or a day old when that is missing. It returns the
// names it deleted; failing to list (no permission) is not fatal for the
// caller.
func SweepStale(ctx context.Context, client kubernetes.Interface, now time.Time) ([]string, error) {
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: RunLabel})
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for i := range list.Items {
		ns := &list.Items[i]
		if ns.DeletionTimestamp != nil {
			continue
		}
		exp, ok := ExpiresAt(ns)
		if !ok {
			exp = ns.CreationTimestamp.Add(24 * time.Hour)
		}
		if now.Before(exp) {
			continue
		}
		if err := DeleteNamespace(client, ns.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, ns.Name)
	}
	return deleted, errors.Join(errs...)
}

type slot struct {
	idx      int
	deadline time.Time
	last     *corev1.Pod
	done     bool
}

type createMsg struct {
	idx int
	pod string
	at  time.Time
	err error
}

// run is the state of one RunProbe. Only loop's goroutine touches the
// maps; the creators talk to it through created.
type run[R any] struct {
	e       *Engine
	probe   Probe[R]
	purpose string
	ns      string
	nodes   []corev1.Node
	results []R
	have    []bool // per node: results holds its result
	timeout time.Duration
	budget  time.Duration // timeout plus the probe's window: each pod's wait

	ready   []bool // per node: Ready at the start, so its pod takes a slot
	byPod   map[string]*slot
	early   map[string]*corev1.Pod // pod events seen before their create returned
	sem     chan struct{}
	created chan createMsg
	open    int

	// Per node, as the node watch (watchNodes) last saw it: Ready now,
	// deleted during the run; nodeIdx finds a node's index by name.
	readyNow, gone []bool
	nodeIdx        map[string]int
	outage         outage // of the API server, for createPod
}

func (r *run[R]) loop(ctx context.Context, rv string) error {
	r.open = len(r.nodes)
	r.ready = make([]bool, len(r.nodes))
	for i := range r.nodes {
		r.ready[i] = nodeReady(&r.nodes[i])
	}
	r.readyNow, r.gone = slices.Clone(r.ready), make([]bool, len(r.nodes))
	r.nodeIdx = make(map[string]int, len(r.nodes))
	for i := range r.nodes {
		r.nodeIdx[r.nodes[i].Name] = i
	}
	var nodeEvents <-chan watch.Event
	if nw := r.watchNodes(ctx); nw != nil {
		defer nw.Stop()
		nodeEvents = nw.ResultChan()
	}
	w, err := r.watch(ctx, rv)
	if err != nil {
		return fmt.Errorf("watch the probe pods: %w", err)
	}
	defer func() { w.Stop() }()

	cctx, cancelCreators := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancelCreators()
		// Drain so no creator blocks on a full channel, then wait: no pod
		// creation may still be in flight when cleanup starts.
		go func() {
			for range r.created {
			}
		}()
		wg.Wait()
		close(r.created)
	}()
	queue := make(chan int)
	go func() {
		defer close(queue)
		for i := range r.nodes {
			select {
			case queue <- i:
			case <-cctx.Done():
				return
			}
		}
	}()
	for range min(creators, cap(r.sem)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range queue {
				if r.ready[idx] {
					select {
					case r.sem <- struct{}{}:
					case <-cctx.Done():
						return
					}
				}
				r.create(cctx, idx)
			}
		}()
	}

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for r.open > 0 {
		select {
		case <-ctx.Done():
			r.finishOpen(ReasonInterrupted, r.purpose+" was interrupted before this node's probe finished")
			return ctx.Err()
		case m := <-r.created:
			r.onCreated(m)
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				// The watch ended (for example its resourceVersion
				// expired): list to catch up, then watch from there.
				w.Stop()
				nw, err := r.relist(ctx)
				if err != nil {
					if ctx.Err() != nil {
						r.finishOpen(ReasonInterrupted, r.purpose+" was interrupted before this node's probe finished")
						return ctx.Err()
					}
					return fmt.Errorf("watch the probe pods: %w", err)
				}
				w = nw
				continue
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok {
				r.onPod(pod)
				if ev.Type == watch.Deleted {
					r.onDeleted(pod)
				}
			}
		case ev, ok := <-nodeEvents:
			if !ok {
				nodeEvents = nil // the timeouts still bound every node
				continue
			}
			r.onNode(ev)
		case <-tick.C:
			r.checkDeadlines()
		}
	}
	return nil
}

func (r *run[R]) watch(ctx context.Context, rv string) (watch.Interface, error) {
	return watchtools.NewRetryWatcherWithContext(quiet(ctx), rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return r.e.Client.CoreV1().Pods(r.ns).Watch(ctx, o)
		},
	})
}

func (r *run[R]) relist(ctx context.Context) (watch.Interface, error) {
	list, err := r.e.Client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		r.onPod(&list.Items[i])
	}
	return r.watch(ctx, list.ResourceVersion)
}

func (r *run[R]) create(ctx context.Context, idx int) {
	node := r.nodes[idx].Name
	name := PodName(r.purpose+"-", node)
	pod := PodFor(name, node, PodOptions{
		Image: r.e.Image, PullPolicy: r.e.PullPolicy,
		Deadline: PodDeadline(r.budget), Command: r.probe.Command(),
	})
	err := r.createPod(ctx, pod)
	select {
	case r.created <- createMsg{idx: idx, pod: name, at: r.e.now(), err: err}:
	case <-ctx.Done():
	}
}

func (r *run[R]) onCreated(m createMsg) {
	if r.gone[m.idx] {
		r.finish(m.idx, r.nodeDeleted(m.idx))
		return
	}
	if m.err != nil {
		reason := ReasonCreateFailed
		if apierrors.IsForbidden(m.err) {
			reason = ReasonForbidden
		}
		r.finish(m.idx, r.probe.Failed(r.nodes[m.idx].Name, reason,
			"could not create the probe pod: "+firstLine(m.err.Error())))
		return
	}
	s := &slot{idx: m.idx, deadline: m.at.Add(r.budget)}
	r.byPod[m.pod] = s
	if p, ok := r.early[m.pod]; ok {
		delete(r.early, m.pod)
		r.onPod(p)
	}
}

func (r *run[R]) onPod(pod *corev1.Pod) {
	s, ok := r.byPod[pod.Name]
	if !ok {
		r.early[pod.Name] = pod
		return
	}
	if s.done {
		return
	}
	s.last = pod
	if res, done := r.probe.Read(r.nodes[s.idx].Name, pod); done {
		// The pod is only needed for a timeout's message: dropping it
		// keeps a run at one pod per node in flight, not one per node
		// (5000 pods with the probe script in each are tens of MB).
		s.done, s.last = true, nil
		r.finish(s.idx, res)
	}
}

// onDeleted ends the wait for a pod someone deleted (or whose namespace
// was deleted) before it produced a result.
func (r *run[R]) onDeleted(pod *corev1.Pod) {
	s, ok := r.byPod[pod.Name]
	if !ok || s.done {
		return
	}
	s.done, s.last = true, nil
	r.finish(s.idx, r.probe.Failed(r.nodes[s.idx].Name, ReasonPodDeleted,
		"the probe pod was deleted before it finished (was the namespace "+r.ns+" deleted?)"))
}

func (r *run[R]) checkDeadlines() {
	now := r.e.now()
	for _, s := range r.byPod {
		if s.done || now.Before(s.deadline) {
			continue
		}
		s.done = true
		node := &r.nodes[s.idx]
		reason := ReasonTimeout
		if !r.readyNow[s.idx] {
			reason = ReasonNodeNotReady
		}
		within := "the " + deadlineSeconds(r.timeout) + " timeout"
		if r.budget > r.timeout {
			within += " plus the " + deadlineSeconds(r.budget-r.timeout) + " window"
		}
		r.finish(s.idx, r.probe.Failed(node.Name, reason,
			fmt.Sprintf("no result within %s: %s", within, PendingDetail(s.last))))
		s.last = nil
	}
}

// finish records a node's result and frees its parallelism slot.
func (r *run[R]) finish(idx int, res R) {
	r.results[idx] = res
	r.have[idx] = true
	r.open--
	if r.ready[idx] {
		<-r.sem
	}
	r.nodeDone(res)
}

// nodeDone tells the caller (Engine.OnNodeDone) that a node has its result.
func (r *run[R]) nodeDone(res R) {
	if r.e.OnNodeDone != nil {
		r.e.OnNodeDone(res)
	}
}

// finishOpen marks every node without a result (created or not).
func (r *run[R]) finishOpen(reason, msg string) {
	for i := range r.results {
		if !r.have[i] {
			r.results[i] = r.probe.Failed(r.nodes[i].Name, reason, msg)
			r.have[i] = true
			r.nodeDone(r.results[i])
		}
	}
	r.open = 0
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// explainCreate turns an API error from creating our objects into advice.
func explainCreate(what, purpose string, err error) error {
	if apierrors.IsForbidden(err) {
		who := purpose + " needs"
		if purpose == verifyRun.Purpose {
			// verify's users read this advice for exec too (same rights).
			who = "verify and exec need"
		}
		return fmt.Errorf("%s: %w; %s cluster-admin (privileged pods in a namespace of their own)", what, err, who)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// TooManyUnitsError: the nodes' configs wrap more distinct units than one
// run can check (the report must fit in a termination message).
type TooManyUnitsError struct{ Units, Max int }

func (e *TooManyUnitsError) Error() string {
	return fmt.Sprintf("the nodes' configs wrap %d distinct units, more than the %d one verify run can check", e.Units, e.Max)
}
