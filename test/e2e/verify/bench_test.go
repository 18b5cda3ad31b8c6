package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
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

// BenchmarkVerify runs verify against simulated fleets of growing size
// (Node objects on the real API server, no kubelets; the agent completes
// the debug pods), measure on the largest, and the seed's procedure node
// by node (one debug namespace and one pod per node in turn) on a sample of
// the nodes. `make bench-verify` writes docs/bench/verify.md and the graph
// from its metrics.
func BenchmarkVerify(b *testing.B) {
	sizes := e2eutil.EnvSizes(b, "KUBENS_BENCH_NODES", []int{50, 500, 2000, 5000})
	sample := e2eutil.EnvInt("KUBENS_BENCH_SERIAL_SAMPLE", 20)
	window := time.Duration(e2eutil.EnvInt("KUBENS_BENCH_MEASURE_WINDOW_S", 10)) * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the agent first, then the control plane (a Cleanup)
	f := startFleet(ctx, b)
	bin := pluginBinary(b)

	// pod=1s is the realistic case: a debug pod on a real node takes about
	// that long from creation to its report (measured on the harness's real
	// kubelets: 0.9-1.4 s for a whole one-node verify).
	const pod = time.Second
	f.delayNS.Store(int64(pod))
	if os.Getenv("KUBENS_BENCH_MEASURE_ONLY") != "" {
		// Only measure on the largest fleet (a rerun of that part).
		sizes = sizes[len(sizes)-1:]
		f.grow(ctx, b, sizes[0])
		benchMeasure(ctx, b, f, bin, window)
		return
	}
	f.grow(ctx, b, max(sample, sizes[0]))
	// Node by node costs the same per node whatever the cluster's size:
	// measured once, on a sample, and scaled to each size.
	perNode := serialSample(ctx, b, f.cp.RESTConfig(), sample) / time.Duration(sample)
	for _, n := range sizes {
		f.grow(ctx, b, n)
		b.Run(fmt.Sprintf("nodes=%d/pod=%s", n, pod), func(b *testing.B) {
			for b.Loop() {
				// 1. The built binary as a child: wall time and peak RSS.
				f.setReport(benchReport())
				wall, rssKB := runChild(ctx, b, f, bin, "verify", func(out []byte) error {
					var rep vfy.VerifyReport
					if err := json.Unmarshal(out, &rep); err != nil || rep.Summary.Encapsulated != n {
						return fmt.Errorf("verify did not find %d encapsulated nodes (%v): %+v", n, err, rep.Summary)
					}
					return nil
				}, "--all-nodes", "-o", "json")
				waitNamespacesGone(ctx, b, f)
				// 2. The same command in-process, with every request counted.
				inStart := time.Now()
				reqs := f.verifyCounted(ctx, b)
				inWall := time.Since(inStart)
				waitNamespacesGone(ctx, b, f)

				estimate := perNode * time.Duration(n)
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(float64(rssKB)/1024, "peak-rss-MiB")
				b.ReportMetric(float64(vfy.AutoParallelism(n)), "parallelism")
				b.ReportMetric(inWall.Seconds(), "inproc-wall-s")
				b.ReportMetric(float64(len(reqs.all)), "requests")
				b.ReportMetric(float64(reqs.writes)/float64(n), "writes/node")
				b.ReportMetric(float64(len(reqs.all))/float64(n), "requests/node")
				b.ReportMetric(perNode.Seconds(), "serial-s/node")
				b.ReportMetric(estimate.Seconds(), "serial-est-s")
				b.ReportMetric(estimate.Seconds()/wall.Seconds(), "speedup-x")
				b.Logf("nodes=%d: verify %s (in-process %s), peak RSS %d KiB, %d requests of which %d writes; node by node %s per node (sample of %d) -> %s for all",
					n, wall.Round(time.Millisecond), inWall.Round(time.Millisecond), rssKB, len(reqs.all), reqs.writes,
					perNode.Round(time.Millisecond), sample, estimate.Round(time.Second))
			}
		})
	}

	benchMeasure(ctx, b, f, bin, window)
}

// benchMeasure runs measure on the whole fleet: each pod takes its window
// plus the second a pod takes to start.
func benchMeasure(ctx context.Context, b *testing.B, f *fleet, bin string, window time.Duration) {
	const pod = time.Second
	n := f.nodes
	b.Run(fmt.Sprintf("measure/nodes=%d/window=%s", n, window), func(b *testing.B) {
		for b.Loop() {
			f.delayNS.Store(int64(window + pod))
			f.setReport(measureReport(int(window.Seconds())))
			wall, rssKB := runChild(ctx, b, f, bin, "measure", func(out []byte) error {
				var rep measure.MeasureReport
				if err := json.Unmarshal(out, &rep); err != nil || rep.Summary.Measured != n {
					return fmt.Errorf("measure did not measure %d nodes (%v): %+v", n, err, rep.Summary)
				}
				return nil
			}, "--all-nodes", "--duration", window.String(), "-o", "json")
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(rssKB)/1024, "peak-rss-MiB")
			b.ReportMetric(float64(vfy.AutoParallelism(n)), "parallelism")
			b.Logf("measure on %d nodes over %s: %s, peak RSS %d KiB", n, window, wall.Round(time.Millisecond), rssKB)
		}
	})
}

// runChild runs the built binary as `oc kubens cmd args...` on the fleet
// and returns its wall time from exec to exit and its peak RSS (KiB), after
// check accepted its stdout.
func runChild(ctx context.Context, b *testing.B, f *fleet, bin, cmdName string, check func([]byte) error, args ...string) (time.Duration, int64) {
	b.Helper()
	var stdout, stderr bytes.Buffer
	full := append(append([]string{cmdName, "--kubeconfig", f.cp.KubeconfigPath}, benchImage...), args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", cmdName, err, stderr.String())
	}
	wall := time.Since(start)
	if err := check(stdout.Bytes()); err != nil {
		b.Fatalf("%v\n%s", err, stderr.String())
	}
	return wall, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

// waitNamespacesGone deletes the runs' pods and waits until their
// namespaces are gone, so the next run does not share the API server with
// that work. The namespace controller alone deleted a 5000-pod namespace at
// about 20 pods a second on the loaded benchmark machine; one delete of the
// whole collection per namespace does it faster (a timed-out one has still
// deleted part, and the next round goes on).
func waitNamespacesGone(ctx context.Context, tb testing.TB, f *fleet) {
	tb.Helper()
	kube := kubernetes.NewForConfigOrDie(f.cp.RESTConfig())
	deadline := time.Now().Add(20 * time.Minute)
	for {
		nss, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: vfy.RunLabel})
		if err != nil {
			tb.Fatal(err)
		}
		if len(nss.Items) == 0 {
			return
		}
		for _, ns := range nss.Items {
			_ = kube.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}, metav1.ListOptions{})
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d namespaces of the runs still there after 20 minutes", len(nss.Items))
		}
		time.Sleep(time.Second)
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
		node := fleetNode(i)
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
