package control

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
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
	deadline := time.Now().Add(3 * time.Minute)
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
		time.Sleep(500 * time.Millisecond)
	}
	tb.Fatalf("simulator did not bootstrap %d nodes", n)
}

// The number of API requests status makes does not depend on the node
// count: one discovery request, one list of pools, of nodes and of the input
// MachineConfigs the pools select (their role selectors folded into one),
// one list of ours by label, and one GET per rendered config that pools or
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
	if counts[0] != counts[1] || counts[0] != 8 {
		t.Fatalf("requests for 3 and 40 nodes: %v, want 8 each (discovery + pools + input MachineConfigs + ours + nodes + 3 rendered configs)", counts)
	}
}

// BenchmarkStatus runs `status` (table and -o wide) against 500 Node
// objects in 3 pools on the real API server, reporting wall time and API
// requests per run. `make bench-status` writes docs/bench/status.md from it.
func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			s := startSim(b, simOptions{Nodes: clusterOf(n), ExtraPools: infraPool})
			s.waitBootstrapped(b, n)
			for _, output := range []string{"table", "wide"} {
				b.Run("output="+output, func(b *testing.B) {
					var args []string
					if output == "wide" {
						args = []string{"-o", "wide"}
					}
					var counter requestCounter
					var out bytes.Buffer
					run := statusCommand(s.cp.KubeconfigPath, &counter, &out, args...)
					runs := 0
					for b.Loop() {
						if err := run(); err != nil {
							b.Fatalf("status: %v\n%s", err, out.String())
						}
						runs++
					}
					calls := counter.reset()
					b.ReportMetric(float64(len(calls))/float64(runs), "requests/op")
					if output == "wide" && strings.Count(out.String(), "\n") < n {
						b.Fatalf("status -o wide printed fewer lines than nodes:\n%s", out.String())
					}
				})
			}
		})
	}
}
