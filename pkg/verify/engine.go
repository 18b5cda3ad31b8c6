package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// DefaultParallelism bounds how many probe pods are in flight at once. At
// about 5 s per pod a 1000-node cluster takes well under two minutes, while
// the apiserver sees at most this many pods of ours at a time and image
// pulls from one registry stay bounded.
const DefaultParallelism = 100

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
	// Parallelism bounds the probe pods in flight (DefaultParallelism if 0).
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
}

// Outcome is what one run found.
type Outcome struct {
	// Namespace is the temporary namespace the run used.
	Namespace string
	// Results has one entry per node, in the order the nodes were given.
	Results []NodeResult
	// CleanupErr is set when the namespace could not be deleted.
	CleanupErr error
}

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
		p = DefaultParallelism
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
	if len(nodes) == 0 {
		return &Outcome{}, nil
	}
	par := e.parallelism(len(nodes))
	timeout := e.timeout()
	waves := (len(nodes)+par-1)/par + 1
	expires := e.now().Add(time.Duration(waves)*timeout + PodDeadline(timeout) + time.Minute)

	ns, err := e.Client.CoreV1().Namespaces().Create(ctx,
		NamespaceFor(NamespaceOptions{Prefix: "oc-kubens-verify-", Purpose: "verify", Expires: expires}),
		metav1.CreateOptions{})
	if err != nil {
		return nil, explainCreate("create the temporary namespace", err)
	}
	out := &Outcome{Namespace: ns.Name, Results: make([]NodeResult, len(nodes))}
	e.logf("Probing %d node(s), %d at a time, in temporary namespace %s", len(nodes), par, ns.Name)
	defer func() {
		if e.Keep {
			e.logf("Keeping namespace %s (--keep); delete it with: kubectl delete namespace %s", ns.Name, ns.Name)
			return
		}
		out.CleanupErr = DeleteNamespace(e.Client, ns.Name)
		if out.CleanupErr != nil {
			e.logf("warning: could not delete namespace %s: %v; delete it with: kubectl delete namespace %s", ns.Name, out.CleanupErr, ns.Name)
		}
	}()

	r := &run{
		e: e, ns: ns.Name, nodes: nodes, results: out.Results, timeout: timeout,
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
	pods, err := client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
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
				err := client.CoreV1().Pods(name).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))})
				if err != nil && !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	err = client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SweepStale deletes namespaces left by earlier runs (verify or exec) that
// crashed before cleaning up, once they are stale: past their
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

// run is the state of one Engine.Run. Only loop's goroutine touches the
// maps; the creators talk to it through created.
type run struct {
	e       *Engine
	ns      string
	nodes   []corev1.Node
	results []NodeResult
	timeout time.Duration

	ready   []bool // per node: Ready at the start, so its pod takes a slot
	byPod   map[string]*slot
	early   map[string]*corev1.Pod // pod events seen before their create returned
	sem     chan struct{}
	created chan createMsg
	open    int
}

func (r *run) loop(ctx context.Context, rv string) error {
	r.open = len(r.nodes)
	r.ready = make([]bool, len(r.nodes))
	for i := range r.nodes {
		r.ready[i] = nodeReady(&r.nodes[i])
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
			r.finishOpen(ReasonInterrupted, "verify was interrupted before this node's probe finished")
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
						r.finishOpen(ReasonInterrupted, "verify was interrupted before this node's probe finished")
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
		case <-tick.C:
			r.checkDeadlines()
		}
	}
	return nil
}

func (r *run) watch(ctx context.Context, rv string) (watch.Interface, error) {
	return watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return r.e.Client.CoreV1().Pods(r.ns).Watch(ctx, o)
		},
	})
}

func (r *run) relist(ctx context.Context) (watch.Interface, error) {
	list, err := r.e.Client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		r.onPod(&list.Items[i])
	}
	return r.watch(ctx, list.ResourceVersion)
}

func (r *run) create(ctx context.Context, idx int) {
	node := r.nodes[idx].Name
	name := PodName("verify-", node)
	pod := PodFor(name, node, PodOptions{
		Image: r.e.Image, PullPolicy: r.e.PullPolicy,
		Deadline: PodDeadline(r.timeout), Command: ProbeCommand(),
	})
	_, err := r.e.Client.CoreV1().Pods(r.ns).Create(ctx, pod, metav1.CreateOptions{})
	select {
	case r.created <- createMsg{idx: idx, pod: name, at: r.e.now(), err: err}:
	case <-ctx.Done():
	}
}

func (r *run) onCreated(m createMsg) {
	if m.err != nil {
		reason := ReasonCreateFailed
		if apierrors.IsForbidden(m.err) {
			reason = ReasonForbidden
		}
		r.finish(m.idx, NodeResult{Node: r.nodes[m.idx].Name, State: StateUnknown, Reason: reason,
			Message: "could not create the probe pod: " + firstLine(m.err.Error())})
		return
	}
	s := &slot{idx: m.idx, deadline: m.at.Add(r.timeout)}
	r.byPod[m.pod] = s
	if p, ok := r.early[m.pod]; ok {
		delete(r.early, m.pod)
		r.onPod(p)
	}
}

func (r *run) onPod(pod *corev1.Pod) {
	s, ok := r.byPod[pod.Name]
	if !ok {
		r.early[pod.Name] = pod
		return
	}
	if s.done {
		return
	}
	s.last = pod
	if res, done := ClassifyPod(r.nodes[s.idx].Name, pod); done {
		s.done = true
		r.finish(s.idx, res)
	}
}

// onDeleted ends the wait for a pod someone deleted (or whose namespace
// was deleted) before it produced a result.
func (r *run) onDeleted(pod *corev1.Pod) {
	s, ok := r.byPod[pod.Name]
	if !ok || s.done {
		return
	}
	s.done = true
	r.finish(s.idx, NodeResult{Node: r.nodes[s.idx].Name, State: StateUnknown, Reason: ReasonPodDeleted,
		Message: "the probe pod was deleted before it finished (was the namespace " + r.ns + " deleted?)"})
}

func (r *run) checkDeadlines() {
	now := r.e.now()
	for _, s := range r.byPod {
		if s.done || now.Before(s.deadline) {
			continue
		}
		s.done = true
		node := &r.nodes[s.idx]
		res := NodeResult{Node: node.Name, State: StateUnknown, Reason: ReasonTimeout}
		if !nodeReady(node) {
			res.Reason = ReasonNodeNotReady
		}
		res.Message = fmt.Sprintf("no result within --timeout=%s: %s", deadlineSeconds(r.timeout), PendingDetail(s.last))
		r.finish(s.idx, res)
	}
}

// finish records a node's result and frees its parallelism slot.
func (r *run) finish(idx int, res NodeResult) {
	r.results[idx] = res
	r.open--
	if r.ready[idx] {
		<-r.sem
	}
}

// finishOpen marks every node without a result (created or not).
func (r *run) finishOpen(reason, msg string) {
	for i := range r.results {
		if r.results[i].Node == "" {
			r.results[i] = NodeResult{Node: r.nodes[i].Name, State: StateUnknown, Reason: reason, Message: msg}
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
func explainCreate(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s: %w; verify and exec need cluster-admin (privileged pods in a namespace of their own)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
