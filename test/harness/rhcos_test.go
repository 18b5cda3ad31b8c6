package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// TestRHCOSNodes starts the default cluster (1 master, 2 workers, RHCOS-like:
// systemd as PID 1, CRI-O and kubelet as units, the pool's base config
// written at first boot) and checks what a real node would show: kubelet
// and CRI-O active, kubens.service shipped disabled, every node plain with
// CRI-O as the runtime; a reboot brings the node back Ready; and after Down
// nothing of a node is left (processes, mounts, cgroups, the host's cgroup
// tmpfs unchanged).
func TestRHCOSNodes(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Up(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	defer func() {
		if !downed {
			c.Down(context.Background())
		}
	}()
	if len(c.Machines) != 3 || len(c.Nodes) != 0 {
		t.Fatalf("%d RHCOS nodes and %d containerd nodes, want 3 and 0", len(c.Machines), len(c.Nodes))
	}
	t.Logf("cluster of 3 RHCOS nodes up in %s", c.StartDuration.Round(time.Millisecond))
	for _, m := range c.Machines {
		t.Logf("node %s: RSS %d MiB (systemd, crio, kubelet and their pods), boot %s", m.Name, node.NamespaceRSSMiB(m.InitPID()), m.BootDuration().Round(time.Millisecond))
		got, err := c.Client.CoreV1().Nodes().Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v := got.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(v, "cri-o://1.34.0") {
			t.Errorf("node %s: runtime %q, want cri-o://1.34.0", m.Name, v)
		}
		if v := got.Status.NodeInfo.KubeletVersion; v != testenv.K8sVersion {
			t.Errorf("node %s: kubelet version %q, want %s", m.Name, v, testenv.K8sVersion)
		}
		for unit, want := range map[string]string{"kubelet.service": "active", "crio.service": "active", "kubens.service": "inactive"} {
			if out, _ := m.Systemctl(ctx, "is-active", unit); strings.TrimSpace(out) != want {
				t.Errorf("node %s: %s is %q, want %s", m.Name, unit, strings.TrimSpace(out), want)
			}
		}
		if out, _ := m.Systemctl(ctx, "is-enabled", "kubens.service"); strings.TrimSpace(out) != "disabled" {
			t.Errorf("node %s: kubens.service is %q, want disabled as shipped", m.Name, strings.TrimSpace(out))
		}
	}
	check := func(name string) {
		t.Helper()
		r, err := ProbeNamespaces(ctx, c.Client, c.Machine(name).Name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Mode() != node.Plain || r.RuntimeName != "crio" {
			t.Errorf("%s: %s with runtime %s, want plain with crio: %+v", name, r.Mode(), r.RuntimeName, r)
		}
		checkContainerMounts(t, name, node.Plain, r)
	}
	for _, name := range []string{"master-0", "worker-0", "worker-1"} {
		check(name)
	}

	w := c.Machine("worker-0")
	start := time.Now()
	if err := w.RebootReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("worker-0 rebooted and Ready again in %s (systemd booted in %s)", time.Since(start).Round(time.Millisecond), w.BootDuration().Round(time.Millisecond))
	check("worker-0")

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
