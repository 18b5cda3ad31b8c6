package verify

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"

	"github.com/oc-kubens/oc-kubens/internal/apiretry"
)

// ReasonNodeDeleted: the node was deleted while its probe was open; no
// kubelet will ever report on it.
const ReasonNodeDeleted = "NodeDeleted"

// How a pod creation is tried again while the API server cannot be
// reached: from createRetryFirst, doubling up to createRetryMax.
const (
	createRetryFirst = 200 * time.Millisecond
	createRetryMax   = 5 * time.Second
)

// createPod creates a probe pod, trying again while the API server is
// unreachable. Without this a restart of the API server in the middle of a
// run (an upgrade, a certificate rotation) turned every node still waiting
// for its pod into Unknown(PodCreateFailed) within a second, as each failed
// creation freed the slot for the next. A try that reached the server
// although its answer was lost shows up as AlreadyExists on the next: the
// pod is there. The creators share one outage clock: once the API server
// has been unreachable for the timeout, every creation fails at its first
// try, so a server gone for good ends the run after one timeout, not one
// per node.
func (r *run[R]) createPod(ctx context.Context, pod *corev1.Pod) error {
	tried := false
	return retryUnreachable(ctx, func() error {
		_, err := r.e.Client.CoreV1().Pods(r.ns).Create(ctx, pod, metav1.CreateOptions{})
		if tried && apierrors.IsAlreadyExists(err) {
			err = nil
		}
		tried = true
		if err == nil || !apiretry.Transient(err) {
			r.outage.end()
		}
		return err
	}, func(next time.Duration) bool { return r.outage.begin(time.Now())+next > r.timeout })
}

// outage is since when the API server has been unreachable for a run's pod
// creations, shared by its creators.
type outage struct{ since atomic.Int64 } // unix nanoseconds; 0 while reachable

// begin records a failed try at now and returns how long the outage has lasted.
func (o *outage) begin(now time.Time) time.Duration {
	if o.since.CompareAndSwap(0, now.UnixNano()) {
		return 0
	}
	if since := o.since.Load(); since != 0 { // 0: another creator got an answer
		return now.Sub(time.Unix(0, since))
	}
	return 0
}

// end records an answer from the API server.
func (o *outage) end() { o.since.Store(0) }

// retryUnreachable calls fn until it returns nil or an error other than
// apiretry.Transient, or ctx ends, or giveUp (if set) says no to waiting
// next before the following try; then it returns fn's last error.
func retryUnreachable(ctx context.Context, fn func() error, giveUp func(next time.Duration) bool) error {
	wait := createRetryFirst
	for {
		err := fn()
		if err == nil || !apiretry.Transient(err) {
			return err
		}
		if giveUp != nil && giveUp(wait) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, createRetryMax)
	}
}

// watchNodes follows the nodes of the run: a node deleted mid-run ends its
// probe at once (no kubelet will ever report it), instead of at the
// timeout, and a node that goes NotReady mid-run makes its timeout say
// NodeNotReady. It returns nil when the nodes cannot be watched (no right
// to list them, a fake client): the timeout still bounds every node.
func (r *run[R]) watchNodes(ctx context.Context) watch.Interface {
	nodes := r.e.Client.CoreV1().Nodes()
	// One item is enough: the list is only read for the resourceVersion
	// the watch starts from.
	list, err := nodes.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return nil
	}
	w, err := watchtools.NewRetryWatcherWithContext(quiet(ctx), list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return nodes.Watch(ctx, o)
		},
	})
	if err != nil {
		return nil
	}
	return w
}

// quiet drops what client-go logs through ctx: a RetryWatcher logs every
// failed try ("Watch failed ... connection refused", once a second while
// the API server restarts), and those raw klog lines reached the user's
// stderr. The watch tries again by itself, and a node it cannot wait for
// ends with its own reason, so the lines say nothing the report does not.
func quiet(ctx context.Context) context.Context {
	return klog.NewContext(ctx, logr.Discard())
}

// onNode takes a node event of watchNodes.
func (r *run[R]) onNode(ev watch.Event) {
	n, ok := ev.Object.(*corev1.Node)
	if !ok {
		return
	}
	idx, ok := r.nodeIdx[n.Name]
	if !ok {
		return
	}
	if ev.Type != watch.Deleted {
		r.readyNow[idx] = nodeReady(n)
		return
	}
	r.gone[idx] = true
	// A node whose pod is still being created ends in onCreated.
	if s := r.byPod[PodName(r.purpose+"-", n.Name)]; s != nil && !s.done {
		s.done, s.last = true, nil
		r.finish(idx, r.nodeDeleted(idx))
	}
}

func (r *run[R]) nodeDeleted(idx int) R {
	return r.probe.Failed(r.nodes[idx].Name, ReasonNodeDeleted,
		"the node was deleted while "+r.purpose+" was probing it")
}
