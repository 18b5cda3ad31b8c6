package control

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// startSlowRebootSim is startSim with Ready object-only nodes whose reboot
// takes reboot: long enough to make a node NotReady in the middle of it.
func startSlowRebootSim(t *testing.T, nodes map[string][]string, reboot time.Duration) *sim {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cp := controlplane.StartForTest(t, controlplane.Options{}, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &sim{cp: cp, cfg: cp.RESTConfig()}
	s.kube = kubernetes.NewForConfigOrDie(s.cfg)
	if err := e2eutil.CreateNodes(ctx, s.cfg, nodes, true); err != nil {
		t.Fatal(err)
	}
	mco, err := mcosim.Start(context.Background(), s.cfg, nil, mcosim.Options{
		RenderDelay: time.Second, StepDelay: 100 * time.Millisecond, RebootDuration: reboot,
		ResyncPeriod: 5 * time.Second, Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	s.mco = mco
	t.Cleanup(mco.Stop)
	s.waitBootstrapped(t, len(nodes))
	return s
}

// setReady writes the node's Ready condition through the status
// subresource, as the node lifecycle controller (Unknown) or the kubelet
// (True) would.
func (s *sim) setReady(t *testing.T, name string, status corev1.ConditionStatus, reason string) {
	t.Helper()
	for try := 0; ; try++ {
		n, err := s.kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: reason,
			LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = s.kube.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{})
		if err == nil {
			t.Logf("node %s Ready=%s", name, status)
			return
		}
		if try > 20 {
			t.Fatalf("setting node %s Ready=%s: %v", name, status, err)
		}
	}
}

// breakOnUpdate sets the node NotReady as soon as the node controller hands
// it a new config, as a node that does not come back from its reboot.
func (s *sim) breakOnUpdate(t *testing.T, name string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			n, err := s.kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if err == nil {
				cur, des := n.Annotations["machineconfiguration.openshift.io/currentConfig"], n.Annotations["machineconfiguration.openshift.io/desiredConfig"]
				if des != "" && des != cur {
					s.setReady(t, name, corev1.ConditionUnknown, "NodeStatusUnknown")
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("node %s was never handed a new config", name)
	}()
	return done
}

// syncBuffer is an output stream read while the command runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const stuckWarning = "Warning: node worker-0 has been NotReady for"

// A node that does not come back from its MachineConfig reboot stays
// Working and NotReady, and its pool Updating: `enable --wait` names it once
// it has been NotReady longer than --stuck-after, says what to check, and
// its timeout names it again; `wait` then finishes once the node is Ready.
func TestStuckNodeIsNamed(t *testing.T) {
	s := startSlowRebootSim(t, map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}}, 45*time.Second)
	kc := s.cp.KubeconfigPath
	broken := s.breakOnUpdate(t, "worker-0")

	r := run(t, kc, "enable", "--yes", "--role", "worker", "--wait", "--stuck-after", "2s", "--timeout", "15s")
	<-broken
	if r.code != 1 {
		t.Fatalf("enable --wait should time out while worker-0 is NotReady: %s", r)
	}
	mustContain(t, "enable --wait output", r.stdout, stuckWarning, "while updating to rendered-worker-",
		"daemon state Working", "pool worker stays Updating", "console or BMC", "`oc describe node worker-0`",
		"machine-config-daemon", "spec.nodeName=worker-0", "NotReady while updating: worker-0")
	if n := strings.Count(r.stdout, stuckWarning); n != 1 {
		t.Errorf("warned %d times about worker-0, want once:\n%s", n, r.stdout)
	}
	mustContain(t, "enable --wait error", r.stderr, "timed out after", "stuck in their update: worker-0 (NotReady for",
		"`oc describe node worker-0`")
	if !strings.Contains(s.nodeAnnotations(t)["worker-0"], "/Working") {
		t.Errorf("worker-0 should still be Working: %v", s.nodeAnnotations(t))
	}

	// Wait again: the node is named at once; it comes back; the wait ends.
	var out, errOut syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- plugin.Execute([]string{"oc-kubens", "wait", "--pool", "worker", "--stuck-after", "2s", "--timeout", "2m", "--kubeconfig", kc},
			genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), stuckWarning) {
		if time.Now().After(deadline) {
			t.Fatalf("wait did not name worker-0:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.setReady(t, "worker-0", corev1.ConditionTrue, "KubeletReady")
	select {
	case c := <-code:
		t.Logf("oc kubens wait -> exit %d\n--- stdout:\n%s--- stderr:\n%s", c, out.String(), errOut.String())
		if c != 0 {
			t.Fatalf("wait failed after the node came back")
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("wait did not end:\n%s", out.String())
	}
	mustContain(t, "wait output", out.String(), "All pools updated: worker")
	if n := strings.Count(out.String(), stuckWarning); n != 1 {
		t.Errorf("warned %d times about worker-0, want once:\n%s", n, out.String())
	}
}

// countedCommand runs a plugin command on ConfigFlags whose REST config
// counts every request, with the query's watch flag.
func countedCommand(t *testing.T, kubeconfig string, counter *requestCounter,
	newCmd func(*genericclioptions.ConfigFlags, genericiooptions.IOStreams) *cobra.Command, args ...string) (string, error) {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return watchCountingRT{rt, counter} })
		return c
	}
	var out bytes.Buffer
	cmd := newCmd(flags, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

type watchCountingRT struct {
	rt http.RoundTripper
	c  *requestCounter
}

func (r watchCountingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	call := req.Method + " " + req.URL.Path
	if req.URL.Query().Get("watch") == "true" {
		call = "WATCH " + req.URL.Path
	}
	r.c.mu.Lock()
	r.c.calls = append(r.c.calls, call)
	r.c.mu.Unlock()
	return r.rt.RoundTrip(req)
}

// What following the nodes costs a wait: one list and one watch of all
// nodes, whatever their number, and never a request per node.
func TestStuckWaitNodeRequestsDoNotGrowWithNodes(t *testing.T) {
	var nodeCalls []int
	for _, n := range []int{6, 40} { // 3 masters, the rest workers (and a tenth infra)
		s := startSim(t, simOptions{Nodes: clusterOf(n), ExtraPools: infraPool})
		s.waitBootstrapped(t, n)
		var counter requestCounter
		start := time.Now()
		out, err := countedCommand(t, s.cp.KubeconfigPath, &counter, plugin.NewCmdEnable,
			"--yes", "--role", "worker", "--wait", "--timeout", "4m")
		if err != nil {
			t.Fatalf("enable --wait on %d nodes: %v\n%s", n, err, out)
		}
		calls := counter.reset()
		var nodes []string
		for _, c := range calls {
			if strings.Contains(c, "/api/v1/nodes") {
				nodes = append(nodes, c)
				if !strings.HasSuffix(c, "/api/v1/nodes") {
					t.Errorf("a request for one node: %s", c)
				}
			}
		}
		t.Logf("%d nodes: enable --wait took %s, %d requests, node requests %v; all: %v",
			n, time.Since(start).Round(time.Second), len(calls), nodes, calls)
		nodeCalls = append(nodeCalls, len(nodes))
	}
	if nodeCalls[0] != nodeCalls[1] || nodeCalls[0] > 3 {
		t.Fatalf("node requests for 6 and 40 nodes: %v, want the same few (a list and a watch)", nodeCalls)
	}
}
