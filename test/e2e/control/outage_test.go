package control

import (
	"context"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
)

// cutProxy forwards TCP to the API server and can cut it: every open
// connection is closed and new ones are refused, as when a single-node
// cluster reboots and takes the API server with it.
type cutProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes the listener and every connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// restore listens again on the same address.
func (p *cutProxy) restore(t *testing.T) {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		// A retry of the listen, not a wait for something: the port can
		// linger briefly after the close.
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy listen again: %v", err)
	}
	p.serve(ln)
}

// wait keeps going through an API outage: the watch drops, lists fail, and
// once the API is back it re-lists or resumes its watch, and still waits
// for the full rollout, which went on while it was blind. Each step waits
// for what shows the one before has happened: wait's output, the pool.
func TestWaitSurvivesAPIOutage(t *testing.T) {
	s := startSim(t, simOptions{})
	u, err := url.Parse(s.cp.APIServerURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	cfg, err := clientcmd.LoadFromFile(s.cp.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = "https://" + proxy.addr // the serving cert covers 127.0.0.1
	}
	kc := filepath.Join(t.TempDir(), "via-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kc); err != nil {
		t.Fatal(err)
	}

	// The render waits until wait is blind, so the whole rollout falls in
	// the outage.
	release := s.mco.HoldRender("worker")
	defer release()
	if r := run(t, s.cp.KubeconfigPath, "enable", "--yes", "--role", "worker"); r.code != 0 {
		t.Fatal(r)
	}
	w := startWait(t, kc, nil, "--timeout", "2m")
	w.waitOutput(t, "worker: Rendering") // listed, and watching
	proxy.cut()
	t.Log("API cut")
	w.waitOutput(t, "Lost the API server")
	release()
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		p := s.pool(t, "worker")
		return updated(p) && p.Status.Configuration.Name == p.Spec.Configuration.Name && contains(sourceNames(p), "99-kubens-worker"), nil
	})
	if err != nil {
		t.Fatalf("the rollout did not finish during the outage: %v", err)
	}
	if !w.running() {
		t.Fatalf("wait returned during the outage: %v\n%s", w.err, w.out.String())
	}
	proxy.restore(t)
	t.Log("API back")
	if err := w.result(t, 90*time.Second); err != nil {
		t.Fatalf("wait: %v", err)
	}
	mustContain(t, "wait output", w.out.String(), "Lost the API server", "Connection to the API server is back", "worker: Updated", "All pools updated")
	if strings.Index(w.out.String(), "Connection to the API server is back") > strings.Index(w.out.String(), "worker: Updated") {
		t.Errorf("wait saw the pool Updated before the API was back:\n%s", w.out.String())
	}
}
