package control

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// nodeAgent is a host service that must see container mounts, the kind the
// seed's last section is about: every second it records how many mounts it
// sees, how many of them are pod volumes, and its mount namespace; at start
// it records the arguments it got, one per line, so the test can tell that
// systemd parsed the wrapped ExecStart into the very same argv.
const nodeAgent = `#!/bin/sh
state=$1
shift
mkdir -p "${state%/*}"
for a in "$@"; do printf 'arg=%s\n' "$a"; done > "$state.args.tmp" && mv "$state.args.tmp" "$state.args"
while :; do
	n=0
	p=0
	while read -r _ _ _ _ mp _; do
		n=$((n + 1))
		case $mp in /var/lib/kubelet/pods/*/volumes/*) p=$((p + 1)) ;; esac
	done </proc/self/mountinfo
	printf 'mounts=%s podmounts=%s mntns=%s\n' "$n" "$p" "$(readlink /proc/self/ns/mnt)" >"$state.tmp" && mv "$state.tmp" "$state"
	sleep 1
done
`

// The agent's unit: a multi-line ExecStart whose arguments hold what
// systemd's parser treats specially (quotes, a semicolon, a backslash, a
// dollar sign, a specifier), so that the wrap drop-in has to carry them
// exactly.
const nodeAgentUnit = `[Unit]
Description=Node agent that must see container mounts

[Service]
ExecStart=/usr/local/bin/node-agent /var/lib/node-agent/state \
    --label "two words" 'semi;colon' back\\slash \
    cost=$$5 unit=%n
Restart=always

[Install]
WantedBy=multi-user.target
`

// The argv systemd gives the agent for nodeAgentUnit (after the state file).
var nodeAgentArgs = []string{"--label", "two words", "semi;colon", `back\slash`, "cost=$5", "unit=node-agent.service"}

// On the local RHCOS-like nodes: a MachineConfig installs node-agent.service
// on the workers. With encapsulation on, the agent runs in the host mount
// namespace and sees no pod volume. `wrap node-agent.service` reads its
// ExecStart on the nodes, writes 99-kubens-wrap-worker and waits for the
// reboots: the agent then runs inside the kubens namespace with the same
// argv and sees pod volumes; status lists it, verify passes WrappedUnits.
// Refusals (a missing unit, nodes that disagree, a hand-wrapped unit) change
// nothing. unwrap takes it back out and deletes the config.
func TestWrapOnRealNodes(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c := rhcosCluster(ctx, t)
	kc := c.KubeconfigPath()
	mcfg := mcfgclient.NewForConfigOrDie(c.RESTConfig())
	workers := []string{"worker-0", "worker-1"}

	if r := runBinary(t, kc, "enable", "--yes", "--wait", "--timeout", "5m"); r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	installAgent(ctx, t, mcfg)
	if r := run(t, kc, "wait", "--timeout", "5m"); r.code != 0 {
		t.Fatalf("wait for the agent's MachineConfig: %s", r)
	}
	ns := podNamespace(ctx, t, c)
	agentPod(ctx, t, c, ns, "before", workers)
	for _, w := range workers {
		st := agentState(ctx, t, c, w, false)
		t.Logf("%s before wrap: %+v", w, st)
		if st.podMounts != 0 {
			t.Errorf("%s: the agent sees %d pod volume mounts in the host namespace of an encapsulated node, want 0", w, st.podMounts)
		}
		checkArgs(t, c, w)
	}

	t.Run("refusals change nothing", func(t *testing.T) {
		before := renderedOf(t, mcfg, "worker")
		r := run(t, kc, append([]string{"wrap", "no-such.service", "--role", "worker", "--yes"}, imageFlags...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "no-such.service is not installed on") {
			t.Errorf("wrap of a missing unit: %s", r)
		}
		// worker-1 gets a local drop-in that changes the command.
		w1 := c.Machine("worker-1")
		dir, err := w1.HostPath("/etc/systemd/system/node-agent.service.d")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		local := dir + "/20-local.conf"
		if err := os.WriteFile(local, []byte("[Service]\nExecStart=\nExecStart=/usr/local/bin/node-agent /var/lib/node-agent/state --local\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		daemonReload(ctx, t, w1)
		r = run(t, kc, append([]string{"wrap", "node-agent.service", "--role", "worker", "--yes"}, imageFlags...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "disagree on node-agent.service's ExecStart") || !strings.Contains(r.stderr, "--local") {
			t.Errorf("wrap with disagreeing nodes: %s", r)
		}
		// A hand-made wrapper drop-in, as mkWrapperDropin writes.
		if err := os.WriteFile(local, []byte("[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /usr/local/bin/node-agent /var/lib/node-agent/state\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		daemonReload(ctx, t, w1)
		r = run(t, kc, append([]string{"wrap", "node-agent.service", "--role", "worker", "--yes"}, imageFlags...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "node-agent.service on node "+w1.Name+" is already wrapped") {
			t.Errorf("wrap of a unit wrapped by hand: %s", r)
		}
		if err := os.Remove(local); err != nil {
			t.Fatal(err)
		}
		daemonReload(ctx, t, w1)
		if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, "99-kubens-wrap-worker", metav1.GetOptions{}); err == nil {
			t.Errorf("a refused wrap created 99-kubens-wrap-worker")
		}
		if after := renderedOf(t, mcfg, "worker"); after != before {
			t.Errorf("a refused wrap changed the worker pool's config: %s -> %s", before, after)
		}
	})

	r := run(t, kc, append([]string{"wrap", "node-agent.service", "--role", "worker", "--yes", "--wait", "--timeout", "5m"}, imageFlags...)...)
	if r.code != 0 {
		t.Fatalf("wrap: %s", r)
	}
	mustContain(t, "wrap", r.stdout, "machineconfig.machineconfiguration.openshift.io/99-kubens-wrap-worker created",
		"wrap      node-agent.service on role worker: ExecStart=/usr/bin/kubensenter /usr/local/bin/node-agent", "nodes REBOOT", "All pools updated: worker")
	again := run(t, kc, append([]string{"wrap", "node-agent.service", "--role", "worker", "--yes"}, imageFlags...)...)
	if again.code != 0 || !strings.Contains(again.stdout, "Nothing to change") {
		t.Errorf("a second wrap should change nothing: %s", again)
	}

	agentPod(ctx, t, c, ns, "after", workers)
	for _, w := range workers {
		st := agentState(ctx, t, c, w, true)
		t.Logf("%s after wrap: %+v", w, st)
		checkArgs(t, c, w)
	}
	st := run(t, kc, "status", "-o", "json")
	var rep mcp.Report
	if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil || st.code != 0 {
		t.Fatalf("status: %v %s", err, st)
	}
	for _, p := range rep.Pools {
		want := p.Name == "worker"
		if got := slices.Contains(p.Wrapped, "node-agent.service"); got != want {
			t.Errorf("status: pool %s wrapped %v, want node-agent.service listed: %v", p.Name, p.Wrapped, want)
		}
	}
	checkVerifyWrapped(t, kc, vfy.CheckPass)

	r = run(t, kc, "unwrap", "node-agent.service", "--yes", "--wait", "--timeout", "5m")
	if r.code != 0 {
		t.Fatalf("unwrap: %s", r)
	}
	mustContain(t, "unwrap", r.stdout, "99-kubens-wrap-worker deleted", "All pools updated: worker")
	agentPod(ctx, t, c, ns, "unwrapped", workers)
	for _, w := range workers {
		st := agentState(ctx, t, c, w, false)
		t.Logf("%s after unwrap: %+v", w, st)
		if st.podMounts != 0 {
			t.Errorf("%s: after unwrap the agent still sees %d pod volume mounts", w, st.podMounts)
		}
		checkArgs(t, c, w)
	}
	checkVerifyWrapped(t, kc, vfy.CheckSkip)
}

// installAgent applies the MachineConfig that installs node-agent on the
// workers, as a site would.
func installAgent(ctx context.Context, t *testing.T, mcfg mcfgclient.Interface) {
	t.Helper()
	cfg := map[string]any{
		"ignition": map[string]any{"version": "3.2.0"},
		"storage": map[string]any{"files": []any{map[string]any{
			"path": "/usr/local/bin/node-agent", "mode": 0o755, "overwrite": true,
			"contents": map[string]any{"source": "data:," + urlEscape(nodeAgent)},
		}}},
		"systemd": map[string]any{"units": []any{map[string]any{
			"name": "node-agent.service", "enabled": true, "contents": nodeAgentUnit,
		}}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc := &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "50-node-agent", Labels: map[string]string{mcosim.RoleLabel: "worker"}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}
	if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// urlEscape percent-encodes everything but unreserved characters, for a
// data: URL.
func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func renderedOf(t *testing.T, mcfg mcfgclient.Interface, pool string) string {
	t.Helper()
	p, err := mcfg.MachineconfigurationV1().MachineConfigPools().Get(context.Background(), pool, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Spec.Configuration.Name
}

// podNamespace makes a namespace with a secret for the volume pods.
func podNamespace(ctx context.Context, t *testing.T, c *harness.Cluster) string {
	t.Helper()
	ns := "wrap-e2e"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "agent-sees-me"},
		StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return ns
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no default ServiceAccount in %s", ns)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// agentPod runs a pod with a secret volume (a tmpfs mount made by the
// kubelet) on each node and waits until it runs.
func agentPod(ctx context.Context, t *testing.T, c *harness.Cluster, ns, name string, nodes []string) {
	t.Helper()
	for _, n := range nodes {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-" + n},
			Spec: corev1.PodSpec{
				NodeName: c.Machine(n).Name, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
				AutomountServiceAccountToken: ptr.To(false), TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers: []corev1.Container{{
					Name: "sleep", Image: images.ToolsImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "secret", MountPath: "/vol/secret", ReadOnly: true}},
				}},
				Volumes: []corev1.Volume{{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "agent-sees-me"}}}},
			},
		}
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, n := range nodes {
		for {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name+"-"+n, metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod %s-%s not running: %v %+v", name, n, err, p.Status)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

type agentSeen struct {
	mounts, podMounts int
	mntns             string
	// pid1ns and kubeletNS are the node's namespaces, for comparison.
	pid1NS, kubeletNS string
}

// agentState reads what the agent last recorded on a node, waiting (up to a
// minute) until it sees pod volume mounts when wantPods, and in any case
// until its record is newer than the call.
func agentState(ctx context.Context, t *testing.T, c *harness.Cluster, node string, wantPods bool) agentSeen {
	t.Helper()
	m := c.Machine(node)
	path, err := m.HostPath("/var/lib/node-agent/state")
	if err != nil {
		t.Fatal(err)
	}
	r, err := harness.ProbeNamespaces(ctx, c.Client, m.Name)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(time.Minute)
	var seen agentSeen
	for {
		fi, statErr := os.Stat(path)
		b, err := os.ReadFile(path)
		if err == nil && statErr == nil && fi.ModTime().After(start) {
			seen = parseAgentState(t, string(b))
			seen.pid1NS, seen.kubeletNS = r.PID1, r.Kubelet
			if !wantPods || seen.podMounts > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: agent state %q (err %v), want a fresh record%s", node, b, err, map[bool]string{true: " with pod mounts", false: ""}[wantPods])
		}
		time.Sleep(300 * time.Millisecond)
	}
	if seen.pid1NS == seen.kubeletNS {
		t.Fatalf("%s is not encapsulated: %+v", node, r)
	}
	if wantPods && seen.mntns != seen.kubeletNS {
		t.Errorf("%s: the wrapped agent runs in %s, want kubelet's %s", node, seen.mntns, seen.kubeletNS)
	}
	if !wantPods && seen.mntns != seen.pid1NS {
		t.Errorf("%s: the agent runs in %s, want PID 1's %s", node, seen.mntns, seen.pid1NS)
	}
	return seen
}

func parseAgentState(t *testing.T, s string) agentSeen {
	t.Helper()
	var a agentSeen
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "mounts":
			a.mounts, _ = strconv.Atoi(v)
		case "podmounts":
			a.podMounts, _ = strconv.Atoi(v)
		case "mntns":
			a.mntns = v
		}
	}
	if a.mounts == 0 || a.mntns == "" {
		t.Fatalf("agent state %q", s)
	}
	return a
}

// checkArgs: the agent got exactly nodeAgentArgs from systemd.
func checkArgs(t *testing.T, c *harness.Cluster, node string) {
	t.Helper()
	path, err := c.Machine(node).HostPath("/var/lib/node-agent/state.args")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		got = append(got, strings.TrimPrefix(l, "arg="))
	}
	if strings.Join(got, "\x00") != strings.Join(nodeAgentArgs, "\x00") {
		t.Errorf("%s: the agent's argv %q, want %q", node, got, nodeAgentArgs)
	}
}

// checkVerifyWrapped runs verify and checks the WrappedUnits check on the
// workers (want) and the master (Skip: nothing wrapped there).
func checkVerifyWrapped(t *testing.T, kc string, want vfy.CheckStatus) {
	t.Helper()
	vr := runBinary(t, kc, append([]string{"verify", "--all-nodes", "-o", "json"}, imageFlags...)...)
	var rep vfy.VerifyReport
	if err := json.Unmarshal([]byte(vr.stdout), &rep); err != nil || vr.code != 0 {
		t.Fatalf("verify: %v %s", err, vr)
	}
	for _, n := range rep.Nodes {
		w := want
		if strings.Contains(n.Node, "master") {
			w = vfy.CheckSkip
		}
		found := false
		for _, ch := range n.Checks {
			if ch.Name == vfy.CheckWrappedUnits {
				found = true
				if ch.Status != w {
					t.Errorf("%s: %s is %s (%s), want %s", n.Node, ch.Name, ch.Status, ch.Detail, w)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %s check in %+v", n.Node, vfy.CheckWrappedUnits, n.Checks)
		}
	}
}

// daemonReload makes the node's systemd read a drop-in written behind its
// back, so that systemctl cat lists it.
func daemonReload(ctx context.Context, t *testing.T, m interface {
	Systemctl(context.Context, ...string) (string, error)
}) {
	t.Helper()
	if out, err := m.Systemctl(ctx, "daemon-reload"); err != nil {
		t.Fatalf("daemon-reload: %v %s", err, out)
	}
}
