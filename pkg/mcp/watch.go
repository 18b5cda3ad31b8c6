package mcp

import (
	"context"
	"sort"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// PoolClient is the slice of the MachineConfigPool client the watch needs
// (satisfied by the generated typed client and its fake).
type PoolClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*mcfgv1.MachineConfigPoolList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// WatchOptions tunes WatchPools; the zero value is what the commands use.
type WatchOptions struct {
	// Backoff bounds the retry delay after a failed list or watch
	// (defaults 200ms, doubling up to 2s: an API that comes back after a
	// single-node reboot is picked up within two seconds).
	MinBackoff, MaxBackoff time.Duration
	// WatchTimeout makes the server end each watch after this long, so a
	// connection that died silently (no RST, as in a node reboot) is
	// replaced by a fresh list (default 60s).
	WatchTimeout time.Duration
	// OnError hears about lost connections and retries (may be nil).
	OnError func(error)
}

// WatchPools lists the pools, then watches them, and sends the full sorted
// pool list after every change. Watch drops and API outages lead to a
// re-list and a new watch with backoff, never to an end: the channel closes
// only when ctx ends. Snapshots are coalesced: a slow reader gets the
// latest state, not a backlog.
func WatchPools(ctx context.Context, c PoolClient, o WatchOptions) <-chan []mcfgv1.MachineConfigPool {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.WatchTimeout <= 0 {
		o.WatchTimeout = 60 * time.Second
	}
	out := make(chan []mcfgv1.MachineConfigPool, 1)
	emit := func(state map[string]mcfgv1.MachineConfigPool) {
		snap := make([]mcfgv1.MachineConfigPool, 0, len(state))
		for _, p := range state {
			snap = append(snap, *p.DeepCopy())
		}
		sortPools(snap)
		// Replace an unread snapshot with the newer one.
		select {
		case <-out:
		default:
		}
		select {
		case out <- snap:
		case <-ctx.Done():
		}
	}
	report := func(err error) {
		if o.OnError != nil && ctx.Err() == nil {
			o.OnError(err)
		}
	}
	go func() {
		defer close(out)
		backoff := o.MinBackoff
		sleep := func() bool {
			t := time.NewTimer(backoff)
			defer t.Stop()
			backoff *= 2
			if backoff > o.MaxBackoff {
				backoff = o.MaxBackoff
			}
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			list, err := c.List(ctx, metav1.ListOptions{})
			if err != nil {
				report(err)
				if !sleep() {
					return
				}
				continue
			}
			state := map[string]mcfgv1.MachineConfigPool{}
			for _, p := range list.Items {
				state[p.Name] = p
			}
			emit(state)
			timeout := int64(o.WatchTimeout / time.Second)
			w, err := c.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, TimeoutSeconds: &timeout})
			if err != nil {
				report(err)
				if !sleep() {
					return
				}
				continue
			}
			began := time.Now()
			// A watch that delivered events or lived a while was a healthy
			// connection: retry at once with a fresh backoff.
			if consume(ctx, w, state, emit, report) || time.Since(began) > o.MaxBackoff {
				backoff = o.MinBackoff
			} else if !sleep() {
				return
			}
		}
	}()
	return out
}

// consume applies watch events to state until the watch ends. It returns
// true when the watch delivered at least one event (a healthy connection).
func consume(ctx context.Context, w watch.Interface, state map[string]mcfgv1.MachineConfigPool,
	emit func(map[string]mcfgv1.MachineConfigPool), report func(error)) bool {
	defer w.Stop()
	healthy := false
	for {
		select {
		case <-ctx.Done():
			return healthy
		case ev, ok := <-w.ResultChan():
			if !ok {
				return healthy
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if p, ok := ev.Object.(*mcfgv1.MachineConfigPool); ok {
					state[p.Name] = *p
					healthy = true
					emit(state)
				}
			case watch.Deleted:
				if p, ok := ev.Object.(*mcfgv1.MachineConfigPool); ok {
					delete(state, p.Name)
					healthy = true
					emit(state)
				}
			case watch.Error:
				// Usually 410 Gone (resourceVersion too old): re-list.
				report(errorFromEvent(ev.Object))
				return healthy
			}
		}
	}
}

type watchError struct{ msg string }

func (e watchError) Error() string { return "watch error: " + e.msg }

func errorFromEvent(obj runtime.Object) error {
	if s, ok := obj.(*metav1.Status); ok {
		return watchError{s.Message}
	}
	return watchError{"unknown"}
}

// NodeClient is the slice of the Node client the node watch needs
// (satisfied by the typed client and its fake).
type NodeClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// WatchNodes lists the nodes once, then watches them, and sends the sorted
// node list after every change, each node cut down to what Wait reads (name,
// labels, the MCO annotations, the Ready condition). Its cost does not grow
// with the node count beyond the objects themselves: no request is made per
// node. The list is served from the API server's watch cache
// (resourceVersion 0); a watch that ends by its timeout is resumed from the
// last resourceVersion seen (bookmarks keep it fresh), so the node list is
// sent again only after an error (410 Gone, an outage), with backoff as in
// WatchPools. Snapshots are coalesced; the channel closes when ctx ends.
func WatchNodes(ctx context.Context, c NodeClient, o WatchOptions) <-chan []corev1.Node {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.WatchTimeout <= 0 {
		o.WatchTimeout = 5 * time.Minute
	}
	out := make(chan []corev1.Node, 1)
	state := map[string]corev1.Node{}
	emit := func() {
		snap := make([]corev1.Node, 0, len(state))
		for _, n := range state {
			snap = append(snap, n)
		}
		sort.Slice(snap, func(i, j int) bool { return snap[i].Name < snap[j].Name })
		select {
		case <-out:
		default:
		}
		select {
		case out <- snap:
		case <-ctx.Done():
		}
	}
	report := func(err error) {
		if o.OnError != nil && ctx.Err() == nil {
			o.OnError(err)
		}
	}
	go func() {
		defer close(out)
		backoff := o.MinBackoff
		sleep := func() bool {
			t := time.NewTimer(backoff)
			defer t.Stop()
			backoff = min(2*backoff, o.MaxBackoff)
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
		rv := "" // "" means: list first
		for ctx.Err() == nil {
			if rv == "" {
				list, err := c.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
				if err != nil {
					report(err)
					if !sleep() {
						return
					}
					continue
				}
				clear(state)
				for i := range list.Items {
					state[list.Items[i].Name] = lightNode(&list.Items[i])
				}
				rv = list.ResourceVersion
				emit()
			}
			timeout := int64(o.WatchTimeout / time.Second)
			w, err := c.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &timeout, AllowWatchBookmarks: true})
			if err != nil {
				report(err)
				rv = ""
				if !sleep() {
					return
				}
				continue
			}
			began := time.Now()
			var clean bool
			rv, clean = consumeNodes(ctx, w, rv, state, emit, report)
			switch {
			case !clean:
				rv = ""
				if !sleep() {
					return
				}
			case time.Since(began) > o.MaxBackoff:
				backoff = o.MinBackoff
			case !sleep(): // a watch that ends at once: do not spin
				return
			}
		}
	}()
	return out
}

// consumeNodes applies node watch events to state until the watch ends. It
// returns the last resourceVersion seen and whether the watch ended cleanly
// (closed by the server: resume from there) rather than with an error event
// (re-list).
func consumeNodes(ctx context.Context, w watch.Interface, rv string, state map[string]corev1.Node,
	emit func(), report func(error)) (string, bool) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, true
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, true
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if n, ok := ev.Object.(*corev1.Node); ok {
					state[n.Name] = lightNode(n)
					rv = n.ResourceVersion
					emit()
				}
			case watch.Deleted:
				if n, ok := ev.Object.(*corev1.Node); ok {
					delete(state, n.Name)
					rv = n.ResourceVersion
					emit()
				}
			case watch.Bookmark:
				if n, ok := ev.Object.(*corev1.Node); ok {
					rv = n.ResourceVersion
				}
			case watch.Error:
				report(errorFromEvent(ev.Object))
				return rv, false
			}
		}
	}
}
