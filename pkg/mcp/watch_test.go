package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// scriptedClient fails its first lists and watches as told, then serves
// pools; every Watch returns a fake watcher the test drives and can drop.
type scriptedClient struct {
	mu        sync.Mutex
	failList  int
	failWatch int
	pools     []mcfgv1.MachineConfigPool
	lists     int
	watchers  chan *watch.FakeWatcher
}

func (c *scriptedClient) List(ctx context.Context, _ metav1.ListOptions) (*mcfgv1.MachineConfigPoolList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists++
	if c.failList > 0 {
		c.failList--
		return nil, errors.New("list: connection refused")
	}
	return &mcfgv1.MachineConfigPoolList{Items: append([]mcfgv1.MachineConfigPool(nil), c.pools...)}, nil
}

func (c *scriptedClient) Watch(ctx context.Context, _ metav1.ListOptions) (watch.Interface, error) {
	c.mu.Lock()
	if c.failWatch > 0 {
		c.failWatch--
		c.mu.Unlock()
		return nil, fmt.Errorf("dial tcp 127.0.0.1:6443: connect: %w", syscall.ECONNREFUSED)
	}
	c.mu.Unlock()
	w := watch.NewFake()
	c.watchers <- w
	return w, nil
}

func (c *scriptedClient) set(f func(*scriptedClient)) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
	return c.lists
}

// recv reads ch, failing the test instead of hanging when nothing comes.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
	}
	panic("unreachable")
}

func configs(snap []mcfgv1.MachineConfigPool) string {
	var parts []string
	for _, p := range snap {
		parts = append(parts, p.Name+"="+p.Spec.Configuration.Name)
	}
	return strings.Join(parts, ",")
}

// WatchPools goes on through failed lists, dropped watches, refused
// re-watches and error events, reports them (but not a plain expiry), sends
// the whole sorted list after each change and again when the API is back,
// and closes its channel only when ctx ends.
func TestWatchPoolsSurvivesOutages(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	worker := mkPool("worker", []string{"worker"}, withSpec("r1"))
	c := &scriptedClient{failList: 2, pools: []mcfgv1.MachineConfigPool{worker}, watchers: make(chan *watch.FakeWatcher, 4)}
	var mu sync.Mutex
	var errs []string
	reported := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
	snaps := WatchPools(ctx, c, WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnError: func(err error) { mu.Lock(); errs = append(errs, err.Error()); mu.Unlock() }})

	if got := configs(recv(t, snaps, "first snapshot")); got != "worker=r1" {
		t.Fatalf("first snapshot %s", got)
	}
	if got := reported(); len(got) != 2 || !strings.Contains(got[0], "list: connection refused") {
		t.Fatalf("errors after two failed lists: %q", got)
	}
	w := recv(t, c.watchers, "first watch")
	w.Add(ptr(mkPool("master", []string{"master"}, withSpec("m1"))))
	if got := configs(recv(t, snaps, "after add")); got != "master=m1,worker=r1" {
		t.Fatalf("after add %s", got)
	}
	w.Modify(ptr(mkPool("worker", []string{"worker"}, withSpec("r2"))))
	if got := configs(recv(t, snaps, "after modify")); got != "master=m1,worker=r2" {
		t.Fatalf("after modify %s", got)
	}

	// The API goes away: the watch drops and two re-watches are refused.
	// Once one works, the state is sent again (the printer says the
	// connection is back) without a new list.
	lists := c.set(func(c *scriptedClient) { c.failWatch = 2 })
	w.Stop()
	w = recv(t, c.watchers, "watch after the outage")
	if got := configs(recv(t, snaps, "after the outage")); got != "master=m1,worker=r2" {
		t.Fatalf("after the outage %s", got)
	}
	if got := reported(); len(got) != 4 || !strings.Contains(got[3], "connection refused") {
		t.Fatalf("errors after two refused watches: %q", got)
	}
	if now := c.set(func(*scriptedClient) {}); now != lists {
		t.Errorf("%d lists after a refused re-watch, want none: the watch resumes", now-lists)
	}

	// An error event is reported and leads to a new list.
	c.set(func(c *scriptedClient) {
		c.pools = []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r3"))}
	})
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Message: "etcdserver: leader changed"})
	if got := configs(recv(t, snaps, "after the re-list")); got != "worker=r3" {
		t.Fatalf("after the re-list %s", got)
	}
	if got := reported(); len(got) != 5 || !strings.Contains(got[4], "leader changed") {
		t.Fatalf("errors after an error event: %q", got)
	}

	// An expired watch (410) is re-listed quietly.
	w = recv(t, c.watchers, "watch after the re-list")
	lists = c.set(func(*scriptedClient) {})
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
	recv(t, snaps, "after the expiry")
	recv(t, c.watchers, "watch after the expiry")
	if now := c.set(func(*scriptedClient) {}); now != lists+1 {
		t.Errorf("%d lists after an expired watch, want 1", now-lists)
	}
	if got := reported(); len(got) != 5 {
		t.Errorf("an expired watch was reported: %q", got[5:])
	}

	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-snaps:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel did not close after ctx ended")
		}
	}
}

// A reader that does not keep up gets the latest state, not a backlog, and
// does not hold the watch up.
func TestWatchPoolsCoalesces(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &scriptedClient{pools: []mcfgv1.MachineConfigPool{mkPool("worker", []string{"worker"}, withSpec("r0"))},
		watchers: make(chan *watch.FakeWatcher, 1)}
	snaps := WatchPools(ctx, c, WatchOptions{})
	w := recv(t, c.watchers, "watch")
	// Each Modify returns once the watch took the event before it; a
	// watch blocked on the unread channel would hang here.
	const n = 50
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 1; i <= n; i++ {
			w.Modify(ptr(mkPool("worker", []string{"worker"}, withSpec(fmt.Sprintf("r%d", i)))))
		}
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch stopped taking events while nobody read the snapshots")
	}
	// At most the last two events were still on their way when the last
	// Modify returned: the latest state comes within three reads.
	want := fmt.Sprintf("worker=r%d", n)
	var seen []string
	for len(seen) < 3 {
		got := configs(recv(t, snaps, "snapshot"))
		seen = append(seen, got)
		if got == want {
			return
		}
	}
	t.Fatalf("read %v, want %s within three reads", seen, want)
}

func ptr[T any](v T) *T { return &v }
