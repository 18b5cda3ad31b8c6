package mcp

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// PoolClient is the slice of the MachineConfigPool client the watch needs
// (satisfied by the generated typed client and its fake).
type PoolClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*mcfgv1.MachineConfigPoolList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// NodeClient is the slice of the Node client the node watch needs
// (satisfied by the typed client and its fake).
type NodeClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// WatchOptions tunes WatchPools and WatchNodes; the zero value is what the
// commands use.
type WatchOptions struct {
	// Backoff bounds the retry delay after a failed list or watch
	// (defaults 200ms, doubling up to 2s: an API that comes back after a
	// single-node reboot is picked up within two seconds).
	MinBackoff, MaxBackoff time.Duration
	// OnError hears about failed lists and watches, and error events in a
	// watch, while the watch retries by itself (may be nil). A watch that
	// merely expired (410 Gone) is re-listed without a word.
	OnError func(error)
}

// WatchPools sends the full sorted pool list after every change. A
// client-go Reflector does the listing and watching: it resumes a dropped
// watch from the last resourceVersion, re-lists after an expired one, and
// retries failed lists and watches with backoff through API outages, never
// ending: the channel closes only when ctx ends. A connection that died
// without a word (a rebooted node sends no RST) is found by the HTTP/2
// health check of client-go's transport, within a minute. After a failure
// the list is sent again as soon as the API answers. Snapshots are
// coalesced: a slow reader gets the latest state, not a backlog.
func WatchPools(ctx context.Context, c PoolClient, o WatchOptions) <-chan []mcfgv1.MachineConfigPool {
	return follow[mcfgv1.MachineConfigPool](ctx, "mcp.WatchPools", c.List, c.Watch, o, nil)
}

// WatchNodes sends the sorted node list after every change, each node cut
// down to what Wait reads (name, labels, the MCO annotations, the Ready
// condition) before it is kept. Its cost does not grow with the node count
// beyond the objects themselves: one list, served from the API server's
// watch cache (resourceVersion 0), then one watch, resumed from the last
// resourceVersion (bookmarks keep it fresh) when it times out; no request is
// made per node. Errors, retries and coalescing are as in WatchPools.
func WatchNodes(ctx context.Context, c NodeClient, o WatchOptions) <-chan []corev1.Node {
	return follow(ctx, "mcp.WatchNodes", c.List, c.Watch, o, func(n *corev1.Node) { *n = lightNode(n) })
}

// follow runs a Reflector over list and watch into an UndeltaStore, which
// hands over the whole store after every change, and sends each state,
// sorted by name and coalesced, until ctx ends. trim (may be nil) cuts each
// object down before it is kept. follow also reports errors (which the
// Reflector only logs) and re-sends the state once a watch opens after an
// error.
func follow[T any, PT interface {
	*T
	metav1.Object
	runtime.Object
}, L runtime.Object](ctx context.Context, name string,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
	o WatchOptions, trim func(PT)) <-chan []T {
	minB, maxB := o.MinBackoff, o.MaxBackoff
	if minB <= 0 {
		minB = 200 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 2 * time.Second
	}
	maxB = max(maxB, minB)

	out := make(chan []T, 1)
	var mu sync.Mutex // keeps sends off a closed channel
	closed := false
	// push runs on the Reflector's goroutine only, so snapshots go out
	// in order.
	push := func(objs []any) {
		snap := make([]T, 0, len(objs))
		for _, obj := range objs {
			p, ok := obj.(PT)
			switch {
			case !ok:
			case trim != nil:
				// trim made each object a new one that only the store
				// holds, and the store replaces objects, never changes
				// them: the snapshot shares their labels and annotations
				// instead of deep-copying thousands of nodes per change.
				snap = append(snap, *p)
			default:
				snap = append(snap, *p.DeepCopyObject().(PT))
			}
		}
		slices.SortFunc(snap, func(a, b T) int { return cmp.Compare(PT(&a).GetName(), PT(&b).GetName()) })
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select { // replace an unread snapshot with the newer one
		case <-out:
		default:
		}
		out <- snap // cannot block: the buffer is empty and only push sends
	}
	store := cache.NewUndeltaStore(push, cache.MetaNamespaceKeyFunc)

	// failing: an error was reported and no list or watch has worked
	// since. Lists run on a goroutine of the Reflector's, error events
	// arrive on the watch proxy's.
	var failing atomic.Bool
	report := func(err error) {
		if ctx.Err() != nil || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return
		}
		failing.Store(true)
		if o.OnError != nil {
			o.OnError(err)
		}
	}
	lw := &plainListWatch{&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			l, err := list(ctx, opts)
			if err != nil {
				report(err)
				return nil, err
			}
			failing.Store(false) // the Reflector's Replace sends the list
			if trim != nil {
				err = meta.EachListItem(l, func(obj runtime.Object) error {
					if p, ok := obj.(PT); ok {
						trim(p)
					}
					return nil
				})
			}
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, opts)
			if err != nil {
				report(err)
				return nil, err
			}
			if failing.Swap(false) { // the API is back, and the watch resumes without a list
				push(store.List())
			}
			return newProxyWatch(w, func(ev watch.Event) {
				switch ev.Type {
				case watch.Error:
					report(apierrors.FromObject(ev.Object))
				case watch.Added, watch.Modified, watch.Deleted:
					if p, ok := ev.Object.(PT); ok && trim != nil {
						trim(p)
					}
				}
			}), nil
		},
	}}
	r := cache.NewReflectorWithOptions(lw, PT(new(T)), store, cache.ReflectorOptions{
		Name:    name,
		Backoff: &wait.Backoff{Duration: minB, Factor: 2, Cap: maxB, Steps: math.MaxInt32},
	})
	go func() {
		// The Reflector logs each failure through klog; OnError is how
		// they reach the user, so its own lines are dropped.
		r.RunWithContext(klog.NewContext(ctx, logr.Discard()))
		mu.Lock()
		closed = true
		close(out)
		mu.Unlock()
	}()
	return out
}

// plainListWatch keeps the Reflector on list and watch rather than a
// watch-list stream, which saves the server nothing for a few pools or
// cut-down nodes, and which fake clients do not speak.
type plainListWatch struct{ *cache.ListWatch }

func (plainListWatch) IsWatchListSemanticsUnSupported() bool { return true }

// proxyWatch hands on the events of a watch after passing each to see,
// until the watch ends or is stopped (unlike watch.Filter, it does not
// block forever on an event nobody reads after Stop).
type proxyWatch struct {
	in   watch.Interface
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func newProxyWatch(in watch.Interface, see func(watch.Event)) watch.Interface {
	p := &proxyWatch{in: in, out: make(chan watch.Event), stop: make(chan struct{})}
	go func() {
		defer close(p.out)
		for ev := range in.ResultChan() {
			see(ev)
			select {
			case p.out <- ev:
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *proxyWatch) ResultChan() <-chan watch.Event { return p.out }

func (p *proxyWatch) Stop() {
	p.once.Do(func() {
		close(p.stop)
		p.in.Stop()
	})
}
