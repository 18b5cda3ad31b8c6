package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
)

// TestSystemdNodeClusterDown starts a cluster with one ordinary node and one
// systemd node, checks systemctl works in the systemd node, takes the
// cluster down, and checks that the host's /sys/fs/cgroup (mounts and their
// options, entries, top-level groups, controller table) is exactly as
// before Up and that nothing of the cluster is left (Leftovers compares the
// cgroup snapshot too).
func TestSystemdNodeClusterDown(t *testing.T) {
	requireCluster(t)
	if missing := node.SystemdMissingTools(); len(missing) > 0 {
		ci.SkipOrFail(t, "systemd node tools missing: %v", missing)
	}
	before, err := node.HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Up(ctx, Options{
		Nodes:               []NodeSpec{{Name: "master-0", Role: "master"}},
		SystemdNodes:        []string{"sd-0"},
		NoMachineConfigCRDs: true,
		Logf:                t.Logf,
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
	if len(c.SystemdNodes) != 1 {
		t.Fatalf("%d systemd nodes", len(c.SystemdNodes))
	}
	sn := c.SystemdNodes[0]
	if out, err := sn.Systemctl(ctx, "is-active", node.SystemdBootTarget); err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("%s in %s: %q, %v", node.SystemdBootTarget, sn.Name, out, err)
	}
	t.Logf("systemd node %s booted in %s", sn.Name, sn.BootDuration().Round(time.Millisecond))

	start := time.Now()
	if err := c.Down(ctx); err != nil {
		t.Errorf("Down: %v", err)
	}
	downed = true
	t.Logf("down in %s", time.Since(start).Round(time.Millisecond))
	for _, l := range c.Leftovers() {
		t.Errorf("left behind: %s", l)
	}
	after, err := node.HostCgroupSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d := node.DiffSnapshots(before, after); len(d) > 0 {
		t.Errorf("host cgroup tree changed:\n%s", strings.Join(d, "\n"))
	} else {
		t.Logf("host /sys/fs/cgroup unchanged after Down (%d lines compared)", len(after))
	}
}
