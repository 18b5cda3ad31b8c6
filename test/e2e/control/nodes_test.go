package control

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

var imageFlags = []string{"--image", images.ToolsImage, "--image-pull-policy", "Never"}

// The main flow on the default local cluster: 3 RHCOS-like nodes (systemd as
// PID 1, CRI-O and kubelet as units, kubens.service shipped disabled).
// enable --wait makes the simulated MCD write the new rendered config into
// each node and reboot it, and the units alone put kubelet and CRI-O into the
// kubens namespace: verify -o json shows CRI-O, kubens.service enabled and
// active, KUBENSMNT for both, /run/netns a mount point and container mounts
// hidden from systemd; `exec NODE -- findmnt` lists what kubensenter lists on
// the node itself. disable --wait turns every node back.
func TestEnableDisableOnRealNodes(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := rhcosCluster(ctx, t)
	kc := c.KubeconfigPath()

	expectAll := func(want node.Mode) {
		t.Helper()
		for _, n := range c.Machines {
			r, err := harness.ProbeNamespaces(ctx, c.Client, n.Name)
			if err != nil {
				t.Fatalf("probe %s: %v", n.Name, err)
			}
			t.Logf("node %s: %s (%+v)", n.Name, r.Mode(), r)
			if r.Mode() != want || r.RuntimeName != "crio" {
				t.Errorf("node %s is %s with %s, want %s with crio (%+v)", n.Name, r.Mode(), r.RuntimeName, want, r)
			}
			// The probe pod's own mounts: systemd sees them only when plain.
			if r.KubeletContainerMounts == 0 || (want == node.Encapsulated) != (r.PID1ContainerMounts == 0) {
				t.Errorf("node %s: container mounts seen by PID 1 %d, by kubelet %d; want PID 1 to see none only when encapsulated", n.Name, r.PID1ContainerMounts, r.KubeletContainerMounts)
			}
		}
	}
	expectAll(node.Plain)
	// measure before: the baseline for after.
	measureFlags := append([]string{"measure", "--all-nodes", "--duration", "3s"}, imageFlags...)
	mr := runBinary(t, kc, append(measureFlags, "-o", "json")...)
	if mr.code != 0 {
		t.Fatalf("measure: %s", mr)
	}
	baseline := filepath.Join(t.TempDir(), "before.json")
	if err := os.WriteFile(baseline, []byte(mr.stdout), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	r := runBinary(t, kc, "enable", "--yes", "--wait", "--timeout", "5m")
	if r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	t.Logf("enable --wait on 3 RHCOS nodes took %s", time.Since(start).Round(time.Second))
	mustContain(t, "enable", r.stdout, "machineconfig.machineconfiguration.openshift.io/99-kubens-master created",
		"machineconfig.machineconfiguration.openshift.io/99-kubens-worker created", "All pools updated: master, worker")

	st := run(t, kc, "status", "-o", "wide")
	if st.code != 0 {
		t.Fatalf("status: %s", st)
	}
	for _, n := range c.Machines {
		mustContain(t, "status -o wide", st.stdout, n.Name)
	}
	if strings.Contains(st.stdout, "disabled") || strings.Contains(st.stdout, "unknown") {
		t.Errorf("status after enable should show every pool and node enabled:\n%s", st.stdout)
	}
	expectAll(node.Encapsulated)

	// What the units did, as verify reads it on each node.
	vr := runBinary(t, kc, append([]string{"verify", "--all-nodes", "-o", "json"}, imageFlags...)...)
	if vr.code != 0 {
		t.Fatalf("verify: %s", vr)
	}
	var rep vfy.VerifyReport
	if err := json.Unmarshal([]byte(vr.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Nodes) != 3 {
		t.Fatalf("verify reported %d nodes, want 3", len(rep.Nodes))
	}
	for _, n := range rep.Nodes {
		if n.State != vfy.Encapsulated || n.Mechanism != vfy.MechanismKubens || n.Runtime != "crio" {
			t.Errorf("%s: %s by %q with %q, want Encapsulated by kubens.service with crio", n.Node, n.State, n.Mechanism, n.Runtime)
		}
		if n.Mounts == nil || n.Mounts.Hidden <= 0 {
			t.Errorf("%s: mounts %+v, want some hidden from systemd", n.Node, n.Mounts)
		}
		passed := map[string]bool{}
		for _, ch := range n.Checks {
			if ch.Status == vfy.CheckPass {
				passed[ch.Name] = true
			}
		}
		for _, name := range []string{"Unit", "KUBENSMNT", vfy.CheckNetnsName, "PinnedNamespace"} {
			if !passed[name] {
				t.Errorf("%s: check %s did not pass: %+v", n.Node, name, n.Checks)
			}
		}
	}
	for _, m := range c.Machines {
		for q, want := range map[string]string{"is-enabled": "enabled", "is-active": "active"} {
			if out, err := m.Systemctl(ctx, q, "kubens.service"); err != nil || strings.TrimSpace(out) != want {
				t.Errorf("%s: systemctl %s kubens.service: %q %v, want %s", m.Name, q, out, err, want)
			}
		}
	}

	t.Run("measure against the baseline: systemd sees fewer mounts", func(t *testing.T) {
		mr := runBinary(t, kc, append(measureFlags, "--baseline", baseline, "-o", "json")...)
		if mr.code != 0 {
			t.Fatalf("measure --baseline: %s", mr)
		}
		var cmp struct {
			Kind  string                   `json:"kind"`
			Nodes []measure.NodeComparison `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(mr.stdout), &cmp); err != nil {
			t.Fatal(err)
		}
		if cmp.Kind != "MeasureComparison" || len(cmp.Nodes) != 3 {
			t.Fatalf("kind %q with %d nodes, want MeasureComparison of 3", cmp.Kind, len(cmp.Nodes))
		}
		maxCPU := 100 * float64(runtime.NumCPU())
		for _, n := range cmp.Nodes {
			if n.Presence != measure.Both || n.PID1MountsBefore == nil || n.PID1MountsAfter == nil || n.HiddenAfter == nil || n.CPUBefore == nil || n.CPUAfter == nil {
				t.Errorf("%s: incomplete comparison %+v", n.Node, n)
				continue
			}
			// The measure pod's own mounts (namespace pins, shm, its
			// volumes) are in PID 1's table only while it is plain.
			if *n.PID1MountsBefore <= *n.PID1MountsAfter || *n.HiddenAfter <= 0 {
				t.Errorf("%s: PID 1 saw %d mounts plain and %d encapsulated, %d hidden: want fewer once encapsulated, some hidden",
					n.Node, *n.PID1MountsBefore, *n.PID1MountsAfter, *n.HiddenAfter)
			}
			for _, cpu := range []float64{*n.CPUBefore, *n.CPUAfter} {
				if cpu < 0 || cpu > maxCPU {
					t.Errorf("%s: systemd CPU %.2f%%, want between 0 and %.0f%%", n.Node, cpu, maxCPU)
				}
			}
			t.Logf("%s: systemd CPU %.2f%% -> %.2f%%, PID 1 mounts %d -> %d, hidden %d", n.Node, *n.CPUBefore, *n.CPUAfter, *n.PID1MountsBefore, *n.PID1MountsAfter, *n.HiddenAfter)
		}
	})

	t.Run("exec lists what kubensenter lists on the node", func(t *testing.T) {
		m := c.Machine("worker-0")
		findmnt := []string{"findmnt", "-rn", "-o", "TARGET,FSTYPE"}
		viaExec := mountLines(t, runExec(t, kc, m.Name, findmnt...))
		// kubensenter says on stderr which namespace it found; stdout only.
		cmd, err := m.Command(ctx, "kubensenter", findmnt...)
		if err != nil {
			t.Fatal(err)
		}
		onNode, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubensenter findmnt on %s: %v", m.Name, err)
		}
		viaKubensenter := mountLines(t, string(onNode))
		hostOut, err := m.Exec(ctx, findmnt[0], findmnt[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		host := mountLines(t, hostOut)
		// The exec pod's own mounts are in the first list only (it is gone
		// when kubensenter runs); every other mount is in both.
		for l := range viaKubensenter {
			if !viaExec[l] {
				t.Errorf("kubensenter on the node lists %q, exec does not", l)
			}
		}
		for l := range viaExec {
			if !viaKubensenter[l] && !containerMount(l) {
				t.Errorf("exec lists %q, kubensenter on the node does not", l)
			}
		}
		hidden := 0
		for l := range viaKubensenter {
			if !host[l] {
				hidden++
			}
		}
		if hidden == 0 {
			t.Errorf("kubensenter sees no mount that the node's PID 1 does not: it did not join kubens")
		}
		t.Logf("exec: %d mounts, kubensenter on the node: %d, PID 1: %d (%d only in the kubens namespace)", len(viaExec), len(viaKubensenter), len(host), hidden)
	})

	r = run(t, kc, "disable", "--yes", "--wait", "--timeout", "5m")
	if r.code != 0 {
		t.Fatalf("disable: %s", r)
	}
	mustContain(t, "disable", r.stdout, "99-kubens-master deleted", "99-kubens-worker deleted", "All pools updated")
	st = run(t, kc, "status", "-o", "wide")
	if strings.Contains(st.stdout, "enabled") {
		t.Errorf("status after disable still shows enabled:\n%s", st.stdout)
	}
	expectAll(node.Plain)
	for _, m := range c.Machines {
		if out, _ := m.Systemctl(ctx, "is-enabled", "kubens.service"); strings.TrimSpace(out) != "disabled" {
			t.Errorf("%s: kubens.service is %q after disable, want disabled", m.Name, strings.TrimSpace(out))
		}
	}
}

// rhcosCluster starts the default local cluster (1 master, 2 workers that
// boot like RHCOS) with the simulated MCO, both stopped at the test's end.
func rhcosCluster(ctx context.Context, t *testing.T) *harness.Cluster {
	t.Helper()
	c, err := harness.Up(ctx, harness.Options{Masters: 1, Workers: 2, Logf: t.Logf})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{RenderDelay: 2 * time.Second, StepDelay: 200 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	t.Cleanup(mco.Stop)
	return c
}

// runExec runs `oc kubens exec NODE -- cmd...` in-process (--kubeconfig
// before the --, which ends the plugin's flags) and returns its stdout.
func runExec(t *testing.T, kubeconfig, nodeName string, cmd ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	args := append(append([]string{"oc-kubens", "exec", "--kubeconfig", kubeconfig, nodeName}, imageFlags...), "--")
	if code := plugin.Execute(append(args, cmd...), streams); code != 0 {
		t.Fatalf("exec %s: exit %d\n%s%s", strings.Join(cmd, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// mountLines is findmnt -rn output as a set of lines.
func mountLines(t *testing.T, out string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			m[l] = true
		}
	}
	if len(m) == 0 {
		t.Fatalf("no mounts in %q", out)
	}
	return m
}

// containerMount: a mount of a pod or container (CRI-O's storage, its
// namespace pins and shm, the kubelet's pod volumes).
func containerMount(line string) bool {
	for _, p := range []string{"/var/lib/kubelet/pods/", "/containers/storage/", "/run/crio/", "/var/run/crio/", "/run/netns/", "/run/ipcns/", "/run/utsns/", "/var/run/netns/"} {
		if strings.Contains(line, p) {
			return true
		}
	}
	return false
}
