package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// benchReport is what the simulated agent writes for every node: an
// encapsulated CRI-O node of a busy cluster, as the real probe reports it.
func benchReport() string {
	r := &vfy.Report{
		PID1NS: "4026531841", KubeletPID: 2345, KubeletNS: "4026533000",
		Runtime: "crio", RuntimePID: 1800, RuntimeNS: "4026533000",
		KubensPin: "4026533000", ZTPPin: vfy.NSNone,
		KubeletKubensMnt: vfy.Yes, RuntimeKubensMnt: vfy.Yes,
		KubensEnabled: "enabled", KubensActive: "active", ZTPEnabled: "not-found", ZTPActive: "inactive",
		NetnsMountPoint: vfy.Yes, PID1Mounts: 62, KubeletMounts: 471,
	}
	return r.Format()
}

// startAgent plays every node's kubelet for the debug pods (see
// e2eutil.StartAgent), each pod taking the delay in delayNS and reporting an
// encapsulated CRI-O node.
func startAgent(ctx context.Context, tb testing.TB, cfg *rest.Config, delayNS *atomic.Int64) {
	msg := benchReport()
	e2eutil.StartAgent(ctx, tb, cfg, e2eutil.AgentOptions{
		Delay:  func() time.Duration { return time.Duration(delayNS.Load()) },
		Report: func(context.Context, string) string { return msg },
	})
}

type countingRT struct {
	rt             http.RoundTripper
	writes, others *atomic.Int64
}

func (c countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		c.writes.Add(1)
	default:
		c.others.Add(1)
	}
	return c.rt.RoundTrip(req)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkVerify runs verify against a simulated fleet (Node objects on the
// real API server, no kubelets; the agent above completes the debug pods),
// and in the same run the seed's procedure node by node (one debug
// namespace and one pod per node in turn) on a sample of the nodes. `make
// bench-verify` writes docs/bench/verify.md from its metrics.
func BenchmarkVerify(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireBinaries(b)
	n := envInt("KUBENS_BENCH_NODES", 500)
	sample := envInt("KUBENS_BENCH_SERIAL_SAMPLE", 20)
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	defer cp.Stop(context.Background())
	defer cancel() // the agent first, then the control plane
	nodes := map[string][]string{}
	for i := range n {
		nodes[fmt.Sprintf("node-%03d", i)] = []string{"worker"}
	}
	// Ready, as a live kubelet reports it: verify counts only Ready
	// nodes' pods against --parallelism.
	if err := e2eutil.CreateNodes(ctx, cp.RESTConfig(), nodes, true); err != nil {
		b.Fatal(err)
	}
	var delayNS atomic.Int64
	startAgent(ctx, b, cp.RESTConfig(), &delayNS)
	bin := pluginBinary(b)
	args := []string{"verify", "--all-nodes", "--image", "registry.example.com/tools:latest", "-o", "json"}

	// pod=1s is the realistic case: a debug pod on a real node takes about
	// that long from creation to its report (measured on the harness's real
	// kubelets: 0.9-1.4 s for a whole one-node verify). pod=0s shows the
	// plugin's and the API server's own cost.
	for _, podMS := range []int{1000, 0} {
		b.Run(fmt.Sprintf("nodes=%d/pod=%s", n, time.Duration(podMS)*time.Millisecond), func(b *testing.B) {
			delayNS.Store(int64(podMS) * int64(time.Millisecond))
			benchVerifyOnce(ctx, b, cp, bin, args, n, sample)
		})
	}
}

func benchVerifyOnce(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, bin string, args []string, n, sample int) {
	for b.Loop() {
		// 1. The built binary as a child: wall time and peak RSS.
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, append(args, "--kubeconfig", cp.KubeconfigPath)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("verify: %v\n%s", err, stderr.String())
		}
		wall := time.Since(start)
		rssKB := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		var rep vfy.VerifyReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Summary.Encapsulated != n {
			b.Fatalf("verify did not find %d encapsulated nodes (%v): %+v\n%s", n, err, rep.Summary, stderr.String())
		}

		// 2. The same command in-process, with every request counted.
		var writes, others atomic.Int64
		flags := genericclioptions.NewConfigFlags(false)
		kc := cp.KubeconfigPath
		flags.KubeConfig = &kc
		flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
			c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingRT{rt, &writes, &others} })
			return c
		}
		var out, errOut bytes.Buffer
		vc := plugin.NewCmdVerify(flags, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		vc.SetArgs(args[1:])
		inStart := time.Now()
		if err := vc.ExecuteContext(ctx); err != nil {
			b.Fatalf("verify in-process: %v\n%s", err, errOut.String())
		}
		inWall := time.Since(inStart)

		// 3. The seed's procedure, node by node, on a sample.
		serial := serialSample(ctx, b, cp.RESTConfig(), sample)
		perNode := serial / time.Duration(sample)
		estimate := perNode * time.Duration(n)

		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(rssKB)/1024, "peak-rss-MiB")
		b.ReportMetric(inWall.Seconds(), "inproc-wall-s")
		b.ReportMetric(float64(writes.Load())/float64(n), "writes/node")
		b.ReportMetric(float64(writes.Load()+others.Load())/float64(n), "requests/node")
		b.ReportMetric(perNode.Seconds(), "serial-s/node")
		b.ReportMetric(estimate.Seconds(), "serial-est-s")
		b.ReportMetric(estimate.Seconds()/wall.Seconds(), "speedup-x")
		b.Logf("nodes=%d: verify %s (in-process %s), peak RSS %d KiB, %d writes + %d reads; node by node %s per node (sample of %d) -> %s for all",
			n, wall.Round(time.Millisecond), inWall.Round(time.Millisecond), rssKB, writes.Load(), others.Load(),
			perNode.Round(time.Millisecond), sample, estimate.Round(time.Second))
	}
}

// serialSample does what the seed asks an admin to do for each node, one
// node after the other, the way `oc debug node/NAME` does it: a temporary
// debug namespace, one pod, wait for its result, delete the namespace.
// It returns the time for sample nodes.
func serialSample(ctx context.Context, tb testing.TB, cfg *rest.Config, sample int) time.Duration {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	kube := kubernetes.NewForConfigOrDie(cfg)
	start := time.Now()
	for i := range sample {
		node := fmt.Sprintf("node-%03d", i)
		ns, err := kube.CoreV1().Namespaces().Create(ctx, vfy.NamespaceFor(vfy.NamespaceOptions{
			Prefix: "openshift-debug-", Purpose: "serial-bench", Expires: time.Now().Add(time.Hour)}), metav1.CreateOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		pod := vfy.PodFor(node+"-debug", node, vfy.PodOptions{Image: "registry.example.com/tools:latest",
			Deadline: time.Minute, Command: vfy.ProbeCommand()})
		created, err := kube.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = watchtools.Until(wctx, created.ResourceVersion, &cache.ListWatch{
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = "metadata.name=" + created.Name
				return kube.CoreV1().Pods(ns.Name).Watch(ctx, o)
			},
		}, func(ev watch.Event) (bool, error) {
			p, ok := ev.Object.(*corev1.Pod)
			return ok && p.Status.Phase == corev1.PodSucceeded, nil
		})
		cancel()
		if err != nil {
			tb.Fatalf("node by node: %s: %v", node, err)
		}
		if err := kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}
