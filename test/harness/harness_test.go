package harness

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

func TestReportMode(t *testing.T) {
	for _, tt := range []struct {
		r    NamespaceReport
		want node.Mode
	}{
		{NamespaceReport{PID1: "mnt:[1]", Kubelet: "mnt:[1]", Runtime: "mnt:[1]"}, node.Plain},
		{NamespaceReport{PID1: "mnt:[1]", Kubelet: "mnt:[2]", Runtime: "mnt:[2]"}, node.Encapsulated},
		{NamespaceReport{PID1: "mnt:[1]", Kubelet: "mnt:[2]", Runtime: "mnt:[1]"}, node.Split},
		{NamespaceReport{PID1: "mnt:[1]", Kubelet: "mnt:[1]", Runtime: "mnt:[2]"}, node.Split},
	} {
		if got := tt.r.Mode(); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.r, got, tt.want)
		}
	}
	if _, err := parseReport("pid1=mnt:[1] kubelet= runtime=mnt:[1]"); err == nil {
		t.Error("a report without the kubelet's namespace parsed")
	}
}

// TestNodesModes starts a cluster with one node in each mode, checks what a
// privileged hostPID pod reports on each, reboots nodes into the other mode
// and checks the report flips, then tears down and checks nothing is left.
func TestNodesModes(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	c, err := Up(ctx, Options{
		Kind:      ContainerdNodes,
		NodeModes: map[string]node.Mode{"master-0": node.Plain, "worker-0": node.Encapsulated, "worker-1": node.Split},
		Logf:      t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	defer func() {
		if !downed {
			c.Down(context.Background())
		}
	}()
	t.Logf("cluster with %d nodes up in %s", len(c.Nodes), c.StartDuration.Round(time.Millisecond))
	for _, n := range c.Nodes {
		t.Logf("node %s: RSS %d MiB (init, containerd, kubelet and their pods)", n.Name, node.NamespaceRSSMiB(n.InitPID()))
		// mk/clusterbin.mk stamps the release into the binaries; unstamped
		// kubelets report v0.0.0-master+$Format:%H$.
		got, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v := got.Status.NodeInfo.KubeletVersion; v != testenv.K8sVersion {
			t.Errorf("node %s: kubelet version %q, want %s (a binary cached before the stamping: rm it, make cluster-bins)", n.Name, v, testenv.K8sVersion)
		}
	}

	check := func(name string, want node.Mode) {
		t.Helper()
		start := time.Now()
		r, err := ProbeNamespaces(ctx, c.Client, c.Node(name).Name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if got := r.Mode(); got != want {
			t.Errorf("%s: probe says %s (%+v), want %s", name, got, r, want)
		}
		checkContainerMounts(t, name, want, r)
		t.Logf("%s: %s %+v (%s)", name, r.Mode(), r, time.Since(start).Round(time.Millisecond))
	}
	check("master-0", node.Plain)
	check("worker-0", node.Encapsulated)
	check("worker-1", node.Split)

	start := time.Now()
	if err := c.Reboot(ctx, "master-0", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Reboot(ctx, "worker-0", false); err != nil {
		t.Fatal(err)
	}
	t.Logf("two reboots: %s", time.Since(start).Round(time.Millisecond))
	check("master-0", node.Encapsulated)
	check("worker-0", node.Plain)

	// A stopped kubelet takes nothing else down, and comes back.
	w1 := c.Node("worker-1")
	if err := w1.StopKubelet(ctx); err != nil {
		t.Fatal(err)
	}
	if pid := w1.InitPID(); pid == 0 {
		t.Fatal("stopping the kubelet stopped the node")
	}
	start = time.Now()
	if err := w1.StartKubelet(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubelet restarted, node Ready in %s", time.Since(start).Round(time.Millisecond))
	check("worker-1", node.Split)

	start = time.Now()
	if err := c.Down(ctx); err != nil {
		t.Errorf("Down: %v", err)
	}
	downed = true
	t.Logf("down in %s", time.Since(start).Round(time.Millisecond))
	for _, l := range c.Leftovers() {
		t.Errorf("left behind: %s", l)
	}
}

// checkContainerMounts: the probe's own root filesystem (an overlay on
// containerd) and its volumes are container mounts: the kubelet always sees
// them; PID 1 (systemd on a real node) only when plain.
func checkContainerMounts(t *testing.T, name string, want node.Mode, r NamespaceReport) {
	t.Helper()
	switch {
	case r.KubeletContainerMounts == 0:
		t.Errorf("%s: the kubelet sees no container mount: %+v", name, r)
	case want == node.Plain && r.PID1ContainerMounts == 0:
		t.Errorf("%s: plain, yet PID 1 sees no container mount: %+v", name, r)
	case want == node.Encapsulated && r.PID1ContainerMounts != 0:
		t.Errorf("%s: encapsulated, yet PID 1 sees %d container mounts: %+v", name, r.PID1ContainerMounts, r)
	}
}

// requireCluster skips (fails in CI) unless a cluster can start here: root,
// the cluster binaries, the node tools.
func requireCluster(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	if missing := append(append(node.MissingTools(), node.SystemdMissingTools()...), node.RHCOSMissingTools()...); len(missing) > 0 {
		msg := fmt.Sprintf("node tools missing (%s): run `make node-deps crio-deps`", strings.Join(missing, ", "))
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
