package mcosim_test

import (
	"context"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// TestRealNodesRollIntoEncapsulation drives real kubelets: the simulator
// reboots each worker through the harness into the mode its new rendered
// config asks for, waits for the kubelet to come back Ready, and a hostPID
// pod on each node then sees what the config says.
func TestRealNodesRollIntoEncapsulation(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := harness.Up(ctx, harness.Options{Kind: harness.ContainerdNodes, Masters: 1, Workers: 2, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	// A cleanup, not a defer: cleanups run last-in first-out, so the
	// simulator (registered by e.start) stops before the cluster goes down.
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	cfg := c.RESTConfig()
	e := &env{t: t, ctx: ctx, cfg: cfg, kube: kubernetes.NewForConfigOrDie(cfg), mcfg: mcfgclient.NewForConfigOrDie(cfg)}
	e.start(c, fast)
	if ok, line := e.poolDone("worker", 2)(); !ok {
		t.Fatalf("after Start: %s", line)
	}

	probe := func(want map[string]node.Mode) {
		t.Helper()
		for name, mode := range want {
			r, err := harness.ProbeNamespaces(ctx, c.Client, c.Node(name).Name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if r.Mode() != mode {
				t.Errorf("%s: %s (%+v), want %s", name, r.Mode(), r, mode)
			}
		}
	}
	probe(map[string]node.Mode{"master-0": node.Plain, "worker-0": node.Plain, "worker-1": node.Plain})

	start := time.Now()
	e.createMC("99-kubens-worker", "worker", enableKubens)
	e.eventually(3*time.Minute, "workers encapsulated", func() (bool, string) {
		p := e.pool("worker")
		ok, line := poolDoneOf(p, 2)
		return ok && contains(sourceNames(p), "99-kubens-worker"), line
	})
	t.Logf("enable rolled out on 2 real workers in %s", time.Since(start).Round(time.Millisecond))
	probe(map[string]node.Mode{"master-0": node.Plain, "worker-0": node.Encapsulated, "worker-1": node.Encapsulated})
	for _, n := range []string{"worker-0", "worker-1"} {
		got := e.node(c.Node(n).Name)
		if got.Spec.Unschedulable || readyStatus(got) != corev1.ConditionTrue {
			t.Errorf("%s after the update: unschedulable=%v ready=%s", n, got.Spec.Unschedulable, readyStatus(got))
		}
	}

	start = time.Now()
	if err := e.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, "99-kubens-worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(3*time.Minute, "workers plain again", func() (bool, string) {
		p := e.pool("worker")
		ok, line := poolDoneOf(p, 2)
		return ok && !contains(sourceNames(p), "99-kubens-worker"), line
	})
	t.Logf("disable rolled out on 2 real workers in %s", time.Since(start).Round(time.Millisecond))
	probe(map[string]node.Mode{"master-0": node.Plain, "worker-0": node.Plain, "worker-1": node.Plain})
	if p := e.pool("master"); p.Status.Configuration.Name != p.Spec.Configuration.Name ||
		cond(p, mcfgv1.MachineConfigPoolUpdated).Status != corev1.ConditionTrue {
		t.Errorf("master pool: %s", poolLine(p))
	}
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return "Missing"
}
