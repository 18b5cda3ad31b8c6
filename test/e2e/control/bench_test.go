package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
)

// requestCounter counts the HTTP requests a client makes, by method and path.
type requestCounter struct {
	mu    sync.Mutex
	calls []string
}

type countingRT struct {
	rt http.RoundTripper
	c  *requestCounter
}

func (r countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.c.mu.Lock()
	r.c.calls = append(r.c.calls, req.Method+" "+req.URL.Path)
	r.c.mu.Unlock()
	return r.rt.RoundTrip(req)
}

func (c *requestCounter) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	sort.Strings(out)
	return out
}

// statusCommand builds `status` on ConfigFlags whose REST config counts
// every request (WrapConfigFn is the cli-runtime hook for that).
func statusCommand(kubeconfig string, counter *requestCounter, out *bytes.Buffer, args ...string) func() error {
	return func() error {
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
			c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingRT{rt, counter} })
			return c
		}
		out.Reset()
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: out}
		cmd := plugin.NewCmdStatus(flags, streams)
		cmd.SetArgs(args)
		cmd.SetOut(out)
		cmd.SetErr(out)
		return cmd.ExecuteContext(context.Background())
	}
}

// clusterOf returns node roles for n nodes in 3 pools: 3 masters, a tenth
// in a custom infra pool, the rest workers.
func clusterOf(n int) map[string][]string {
	nodes := map[string][]string{}
	for i := 0; i < n; i++ {
		switch {
		case i < 3:
			nodes[fmt.Sprintf("master-%d", i)] = []string{"master"}
		case i < 3+n/10:
			nodes[fmt.Sprintf("infra-%03d", i)] = []string{"worker", "infra"}
		default:
			nodes[fmt.Sprintf("worker-%03d", i)] = []string{"worker"}
		}
	}
	return nodes
}

var infraPool = []controlplane.Pool{{Name: "infra", Roles: []string{"worker", "infra"}}}

// waitBootstrapped waits until the simulator has given every node a config.
func (s *sim) waitBootstrapped(tb testing.TB, n int) {
	tb.Helper()
	// The simulator annotates a few nodes at a time: thousands take minutes.
	deadline := time.Now().Add(3*time.Minute + time.Duration(n)*50*time.Millisecond)
	poll := 500 * time.Millisecond
	if n > 500 {
		poll = 3 * time.Second // a list of thousands of nodes is work for the API server
	}
	for time.Now().Before(deadline) {
		l, err := s.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err == nil {
			done := 0
			for _, nd := range l.Items {
				if nd.Annotations["machineconfiguration.openshift.io/state"] == "Done" {
					done++
				}
			}
			if done == n {
				return
			}
		}
		time.Sleep(poll)
	}
	tb.Fatalf("simulator did not bootstrap %d nodes", n)
}

// The number of API requests status makes does not depend on the node
// count: one discovery request, one list of pools, of nodes and of the input
// MachineConfigs the pools select (their role selectors folded into one),
// one list of ours by label, one GET of MachineConfiguration/cluster (the
// node disruption policy), and one GET per rendered config that pools or
// nodes name (here 3: master, worker and infra, settled). Rendered configs
// are never listed: long-lived clusters keep hundreds of them at 0.5-1 MB.
func TestStatusRequestsDoNotGrowWithNodes(t *testing.T) {
	var counts []int
	for _, n := range []int{3, 40} {
		s := startSim(t, simOptions{Nodes: clusterOf(n), ExtraPools: infraPool})
		s.waitBootstrapped(t, n)
		var counter requestCounter
		var out bytes.Buffer
		if err := statusCommand(s.cp.KubeconfigPath, &counter, &out, "-o", "wide")(); err != nil {
			t.Fatalf("status: %v\n%s", err, out.String())
		}
		calls := counter.reset()
		t.Logf("%d nodes: %d requests: %v", n, len(calls), calls)
		if got := strings.Count(out.String(), "\n"); got < n {
			t.Fatalf("status -o wide printed %d lines for %d nodes", got, n)
		}
		counts = append(counts, len(calls))
	}
	if counts[0] != counts[1] || counts[0] != 9 {
		t.Fatalf("requests for 3 and 40 nodes: %v, want 9 each (discovery + node disruption policy + pools + input MachineConfigs + ours + nodes + 3 rendered configs)", counts)
	}
}

// growingCluster returns node roles for nodes from up to to: 3 masters,
// every tenth node in a custom infra pool (roles worker+infra), the rest
// workers. A node's name and roles do not depend on the final size.
func growingCluster(from, to int) map[string][]string {
	nodes := map[string][]string{}
	for i := from; i < to; i++ {
		switch {
		case i < 3:
			nodes[fmt.Sprintf("master-%d", i)] = []string{"master"}
		case i%10 == 3:
			nodes[fmt.Sprintf("infra-%04d", i)] = []string{"worker", "infra"}
		default:
			nodes[fmt.Sprintf("worker-%04d", i)] = []string{"worker"}
		}
	}
	return nodes
}

// benchCounter counts the requests a client makes and the bytes of the
// response bodies it reads.
type benchCounter struct {
	requests, bytes atomic.Int64
}

type benchRT struct {
	rt http.RoundTripper
	c  *benchCounter
}

func (r benchRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.c.requests.Add(1)
	resp, err := r.rt.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = benchBody{resp.Body, r.c}
	}
	return resp, err
}

type benchBody struct {
	io.ReadCloser
	c *benchCounter
}

func (b benchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.bytes.Add(int64(n))
	return n, err
}

// benchCommand builds a command on ConfigFlags whose REST config counts
// requests and bytes read, uncompressed so the bytes are what the objects
// weigh.
func benchCommand(kubeconfig string, c *benchCounter, streams genericiooptions.IOStreams,
	newCmd func(*genericclioptions.ConfigFlags, genericiooptions.IOStreams) *cobra.Command, args ...string) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		cfg.DisableCompression = true
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return benchRT{rt, c} })
		return cfg
	}
	cmd := newCmd(flags, streams)
	cmd.SetArgs(args)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	return cmd
}

// BenchmarkStatus runs `status` (table and -o wide) against growing
// clusters (50 to 5000 object-only nodes by default, KUBENS_BENCH_NODES) in
// 3 pools on the real API server, then on the largest with 300 old rendered
// configs of 500 KB (KUBENS_BENCH_OLD_RENDERED), reporting wall time, API
// requests and bytes read per run; then how fast `wait` returns after the
// last node of a rollout is updated. `make bench-status` writes
// docs/bench/status.md and the graph from it.
func BenchmarkStatus(b *testing.B) {
	sizes := e2eutil.EnvSizes(b, "KUBENS_BENCH_NODES", []int{50, 500, 2000, 5000})
	old := e2eutil.EnvInt("KUBENS_BENCH_OLD_RENDERED", 300)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			// A cluster per size: the simulator bootstraps the nodes it
			// finds at its start with direct writes, much faster than
			// nodes joining one by one.
			start := time.Now()
			// With the apiserver's watch cache, as on a real cluster: without
			// it every label-selected list of MachineConfigs reads all of
			// them, old rendered configs included, from etcd.
			s := startSim(b, simOptions{Nodes: growingCluster(0, n), ExtraPools: infraPool, WatchCache: true})
			s.waitBootstrapped(b, n)
			b.Logf("%d nodes bootstrapped in %s", n, time.Since(start).Round(time.Second))
			benchStatusRuns(b, s, "old-rendered=0")
			if n != sizes[len(sizes)-1] {
				return
			}
			start = time.Now()
			s.addOldRenderedConfigs(b, 0, old, 500<<10)
			b.Logf("added %d old rendered configs of 500 KB in %s", old, time.Since(start).Round(time.Second))
			benchStatusRuns(b, s, fmt.Sprintf("old-rendered=%d", old))
			// From here on the test plays the MCO, to end a rollout at a
			// chosen moment.
			s.mco.Stop()
			b.Run(fmt.Sprintf("wait/old-rendered=%d", old), func(b *testing.B) {
				var sum, worst time.Duration
				runs := 0
				for b.Loop() {
					r := benchWaitReaction(b, s)
					sum, worst, runs = sum+r, max(worst, r), runs+1
				}
				b.ReportMetric((sum / time.Duration(runs)).Seconds(), "reaction-s")
				b.ReportMetric(worst.Seconds(), "reaction-max-s")
			})
		})
	}
}

func benchStatusRuns(b *testing.B, s *sim, name string) {
	for _, output := range []string{"table", "wide"} {
		b.Run(name+"/output="+output, func(b *testing.B) {
			var args []string
			if output == "wide" {
				args = []string{"-o", "wide"}
			}
			var c benchCounter
			var out bytes.Buffer
			runs := 0
			for b.Loop() {
				out.Reset()
				cmd := benchCommand(s.cp.KubeconfigPath, &c, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, plugin.NewCmdStatus, args...)
				if err := cmd.ExecuteContext(context.Background()); err != nil {
					b.Fatalf("status: %v\n%s", err, out.String())
				}
				runs++
			}
			b.ReportMetric(float64(c.requests.Load())/float64(runs), "requests/op")
			b.ReportMetric(float64(c.bytes.Load())/float64(runs), "read-B/op")
		})
	}
}

// benchWaitReaction puts the worker pool in the last step of a rollout (its
// last node Working, one machine not updated), starts `wait`, and once wait
// follows the rollout, finishes it as the MCO does: the node's state
// annotation to Done, then the pool's status to Updated. It reports the time
// from the node's update to wait's return, and what wait read.
func benchWaitReaction(b *testing.B, s *sim) time.Duration {
	ctx := context.Background()
	pools := s.mcfg.MachineconfigurationV1().MachineConfigPools()
	nodes := s.kube.CoreV1().Nodes()
	done := s.pool(b, "worker")
	l, err := nodes.List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/worker"})
	if err != nil {
		b.Fatal(err)
	}
	last := l.Items[len(l.Items)-1].Name
	setState := func(state string) {
		n, err := nodes.Get(ctx, last, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n.Annotations["machineconfiguration.openshift.io/state"] = state
		if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	setState("Working")
	updating := done.DeepCopy()
	updating.Status.UpdatedMachineCount--
	for i := range updating.Status.Conditions {
		c := &updating.Status.Conditions[i]
		switch c.Type {
		case mcfgv1.MachineConfigPoolUpdated:
			c.Status = corev1.ConditionFalse
		case mcfgv1.MachineConfigPoolUpdating:
			c.Status = corev1.ConditionTrue
		}
	}
	if _, err := pools.UpdateStatus(ctx, updating, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}

	var c benchCounter
	var out syncBuffer
	cmd := benchCommand(s.cp.KubeconfigPath, &c, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
		plugin.NewCmdWait, "--timeout", "5m")
	type exit struct {
		err error
		at  time.Time
	}
	exited := make(chan exit, 1)
	go func() {
		err := cmd.ExecuteContext(ctx)
		exited <- exit{err, time.Now()}
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), "worker: Updating") {
		select {
		case e := <-exited:
			b.Fatalf("wait returned before the rollout ended: %v\n%s", e.err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("wait does not follow the rollout after 3 minutes:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// wait follows the nodes too once a pool has work: let it have read
	// them before the clock starts, as it would have long before the last
	// node of a real rollout.
	time.Sleep(2 * time.Second)
	begin := time.Now()
	setState("Done")
	cur, err := pools.Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	done.ResourceVersion = cur.ResourceVersion
	if _, err := pools.UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
	e := <-exited
	if e.err != nil {
		b.Fatalf("wait: %v\n%s", e.err, out.String())
	}
	reaction := e.at.Sub(begin)
	b.ReportMetric(float64(c.requests.Load()), "requests/op")
	b.ReportMetric(float64(c.bytes.Load()), "read-B/op")
	b.Logf("wait returned %s after the last node's update; %d requests, %d bytes read\n%s",
		reaction.Round(time.Millisecond), c.requests.Load(), c.bytes.Load(), out.String())
	return reaction
}
