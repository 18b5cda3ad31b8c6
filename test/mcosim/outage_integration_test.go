package mcosim_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// cutter is a TCP proxy to the API server that can go away (every
// connection closed, new ones refused) and come back on the same address,
// as the API does when a single-node cluster reboots.
type cutter struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	c := &cutter{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(c.cut)
	return c
}

func (c *cutter) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", c.target)
			if err != nil {
				down.Close()
				continue
			}
			c.mu.Lock()
			c.conns[down], c.conns[up] = true, true
			c.mu.Unlock()
			go func() { io.Copy(up, down); up.Close() }()
			go func() { io.Copy(down, up); down.Close() }()
		}
	}()
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	c.conns = map[net.Conn]bool{}
}

func (c *cutter) restore() {
	c.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the port may linger a moment
	}
	if err != nil {
		c.t.Fatalf("restoring the proxy on %s: %v", c.addr, err)
	}
	c.serve(ln)
}

// slowRecorder reboots for a while, so an outage can fall inside a reboot.
type slowRecorder struct {
	recorder
	d time.Duration
}

func (r *slowRecorder) Reboot(ctx context.Context, node string, encapsulated bool) error {
	time.Sleep(r.d) // the slow reboot under test
	return r.recorder.Reboot(ctx, node, encapsulated)
}

// TestAPIOutageMidRollout cuts the simulator off the API server in the middle
// of a rollout: watches drop, writes fail, and once the API is back the
// rollout finishes with every node rebooted exactly once.
func TestAPIOutageMidRollout(t *testing.T) {
	e := newEnv(t)
	e.nodes(map[string][]string{"w1": {"worker"}, "w2": {"worker"}, "w3": {"worker"}})
	proxy := newCutter(t, strings.TrimPrefix(e.cfg.Host, "https://"))
	cfg := rest.CopyConfig(e.cfg)
	cfg.Host = "https://" + proxy.addr
	cfg.Timeout = 5 * time.Second
	r := &slowRecorder{recorder: recorder{kube: e.kube}, d: 1500 * time.Millisecond}
	o := fast
	o.Logf = func(f string, a ...any) {
		if testing.Verbose() {
			t.Logf(f, a...)
		}
	}
	m, err := mcosim.Start(e.ctx, cfg, r, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)

	e.createMC("99-kubens-worker", "worker", enableKubens)
	e.eventually(10*time.Second, "a node rebooting", func() (bool, string) {
		for _, n := range []string{"w1", "w2", "w3"} {
			if e.node(n).Annotations[mcosim.PostConfigActionAnnotation] == mcosim.StateRebooting {
				return true, ""
			}
		}
		return false, "no node Rebooting"
	})
	proxy.cut()
	t.Log("API cut")
	time.Sleep(3 * time.Second) // the outage under test: its length, not a wait
	proxy.restore()
	t.Log("API back")
	e.eventually(90*time.Second, "rolled out after the outage", e.poolDone("worker", 3))
	calls := r.list()
	if len(calls) != 3 {
		t.Errorf("reboots %v, want each worker exactly once", calls)
	}
}
