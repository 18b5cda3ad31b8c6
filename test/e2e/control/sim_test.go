package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// A second enable changes nothing: same resourceVersions, no new rendered
// config, no node touched.
func TestSecondEnableIsNoOp(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	if r := run(t, kc, "enable", "--yes", "--wait", "--timeout", "2m"); r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	before := map[string]string{}
	for _, mc := range s.managedMCs(t) {
		before[mc.Name] = mc.ResourceVersion
	}
	if len(before) != 2 {
		t.Fatalf("want 2 managed MCs, got %v", before)
	}
	rendered, nodes := s.renderedNames(t), s.nodeAnnotations(t)

	r := run(t, kc, "enable", "--yes", "--wait")
	if r.code != 0 {
		t.Fatalf("second enable: %s", r)
	}
	mustContain(t, "second enable", r.stdout, "Nothing to change", "unchanged 99-kubens-master", "unchanged 99-kubens-worker", "All pools updated")
	if strings.Contains(r.stdout, "REBOOT") {
		t.Errorf("second enable warns about reboots:\n%s", r.stdout)
	}
	// Nothing may move, even once the simulator has looked at every pool
	// again.
	s.lookedAgain(t, "master", "worker")
	for _, mc := range s.managedMCs(t) {
		if before[mc.Name] != mc.ResourceVersion {
			t.Errorf("%s resourceVersion %s -> %s", mc.Name, before[mc.Name], mc.ResourceVersion)
		}
	}
	if got := s.renderedNames(t); strings.Join(got, ",") != strings.Join(rendered, ",") {
		t.Errorf("rendered configs changed: %v -> %v", rendered, got)
	}
	if got := s.nodeAnnotations(t); !equalMaps(got, nodes) {
		t.Errorf("nodes changed: %v -> %v", nodes, got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The early-return race: right after apply the pool still says Updated=True
// for the old config. `oc wait --for=condition=Updated` returns there; our
// wait must not return until the new config has rolled out. The worker
// render is held until wait has shown the stale state, so the race is
// there every run, whatever the machine's speed.
func TestWaitDoesNotReturnEarly(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	oldConfig := s.pool(t, "worker").Spec.Configuration.Name
	release := s.mco.HoldRender("worker")
	defer release()

	if r := run(t, kc, "enable", "--yes", "--role", "worker"); r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	p := s.pool(t, "worker")
	if !updated(p) || p.Status.Configuration.Name != oldConfig || contains(sourceNames(p), "99-kubens-worker") {
		t.Fatalf("race precondition not met: with the render held the pool should still be Updated=True at %s, got %+v", oldConfig, p.Status)
	}
	var requests requestLog
	w := startWait(t, kc, &requests, "--timeout", "2m")
	// wait has seen Updated=True at the old config, and keeps waiting.
	w.waitOutput(t, "worker: Rendering")
	if !w.running() {
		t.Fatalf("wait returned on the stale Updated=True:\n%s", w.out.String())
	}
	release()
	if err := w.result(t, 2*time.Minute); err != nil {
		t.Fatalf("wait: %v", err)
	}
	// When wait returns, the new config has rolled out everywhere.
	p = s.pool(t, "worker")
	if p.Status.Configuration.Name == oldConfig || p.Status.Configuration.Name != p.Spec.Configuration.Name ||
		!contains(sourceNames(p), "99-kubens-worker") || !updated(p) || p.Status.UpdatedMachineCount != p.Status.MachineCount {
		t.Fatalf("wait returned before the rollout finished: %+v", p.Status)
	}
	for name, ann := range s.nodeAnnotations(t) {
		if strings.HasPrefix(name, "worker") && ann != p.Spec.Configuration.Name+"/Done" {
			t.Errorf("node %s at %s, want %s/Done", name, ann, p.Spec.Configuration.Name)
		}
	}
	// Updating may not show: a wait that is busy gets the latest state,
	// not each one in between.
	mustContain(t, "wait output", w.out.String(), "worker: Rendering", "worker: Updated", "All pools updated")
	// Watch-driven, not polling: once it watches the pools, wait lists
	// them no more.
	if lists, watches := requests.count("machineconfigpools"); lists != 0 || watches != 1 {
		t.Errorf("after its first watch of the pools wait listed them %d times and watched them %d times, want no list and one watch:\n%s",
			lists, watches, strings.Join(requests.all(), "\n"))
	}
	t.Logf("config %s -> %s", oldConfig, p.Status.Configuration.Name)

	// status agrees: enabled, rolled out.
	st := run(t, kc, "status", "-o", "json")
	var rep mcp.Report
	if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil {
		t.Fatalf("status json: %v\n%s", err, st)
	}
	for _, ps := range rep.Pools {
		want := mcp.UnitDisabled
		if ps.Name == "worker" {
			want = mcp.UnitEnabled
		}
		if ps.Kubens != want || ps.PendingChange {
			t.Errorf("pool %s: kubens %s pending %v, want %s", ps.Name, ps.Kubens, ps.PendingChange, want)
		}
	}
}

// A custom infra pool selecting the worker role is found, shown in the plan
// and waited on.
func TestCustomInfraPool(t *testing.T) {
	s := startSim(t, simOptions{
		ExtraPools: []controlplane.Pool{{Name: "infra", Roles: []string{"worker", "infra"}}},
		Nodes:      map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}, "infra-0": {"worker", "infra"}},
	})
	r := run(t, s.cp.KubeconfigPath, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	mustContain(t, "plan", r.stdout, "infra      1 node, maxUnavailable 1, via 99-kubens-worker", "worker     1 node", "infra: Updated", "All pools updated: infra, worker")
	p := s.pool(t, "infra")
	if !contains(sourceNames(p), "99-kubens-worker") || p.Status.Configuration.Name != p.Spec.Configuration.Name || !updated(p) {
		t.Fatalf("infra pool not rolled out: %+v / %+v", p.Spec.Configuration, p.Status)
	}
	st := run(t, s.cp.KubeconfigPath, "status", "-o", "wide")
	if !hasRow(st.stdout, "infra-0", "infra", "enabled") {
		t.Fatalf("status -o wide has no row \"infra-0 infra enabled\":\n%s", st.stdout)
	}
}

// A paused pool is reported with a clear message and a non-zero exit
// instead of a hang.
func TestPausedPool(t *testing.T) {
	s := startSim(t, simOptions{})
	if err := s.mco.SetPaused(context.Background(), "worker", true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := run(t, s.cp.KubeconfigPath, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "2m")
	if r.code != 1 {
		t.Fatalf("enable --wait on a paused pool succeeded: %s", r)
	}
	mustContain(t, "stderr", r.stderr, "pool worker is paused", "oc patch mcp worker")
	mustContain(t, "plan", r.stdout, "PAUSED")
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: should fail fast", d)
	}
	if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines != 0 {
		t.Errorf("error is %d lines, want one", lines+1)
	}
}

// A node that degrades during the rollout fails the wait fast, naming the
// node and its reason.
func TestDegradedNodeFailsFast(t *testing.T) {
	s := startSim(t, simOptions{})
	s.mco.DegradeNodeOnUpdate("worker-0", "unexpected on-disk state validating against rendered-worker: /etc/foo")
	start := time.Now()
	r := run(t, s.cp.KubeconfigPath, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "2m")
	if r.code != 1 {
		t.Fatalf("enable --wait with a degraded node succeeded: %s", r)
	}
	mustContain(t, "stderr", r.stderr, "pool worker is degraded", "worker-0", "unexpected on-disk state")
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %s: should fail fast", d)
	}
	st := run(t, s.cp.KubeconfigPath, "status", "-o", "wide")
	mustContain(t, "status -o wide", st.stdout, "Degraded", "unexpected on-disk state")
}

// A render failure fails the wait in phase 1 with the operator's message.
func TestRenderFailure(t *testing.T) {
	s := startSim(t, simOptions{})
	s.mco.FailRender("worker", "Failed to render configuration for pool worker: parsing Ignition config failed")
	r := run(t, s.cp.KubeconfigPath, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "2m")
	if r.code != 1 {
		t.Fatalf("enable --wait with a failing render succeeded: %s", r)
	}
	mustContain(t, "stderr", r.stderr, "pool worker cannot render its configuration (RenderDegraded)", "parsing Ignition config failed")
}

// Without --yes and without a terminal nothing is applied, in-process and
// through the binary (stdin /dev/null).
func TestNoTerminalRefused(t *testing.T) {
	s := startSim(t, simOptions{NoMCO: false})
	for _, r := range []result{
		run(t, s.cp.KubeconfigPath, "enable"),
		runBinary(t, s.cp.KubeconfigPath, "enable"),
	} {
		if r.code != 1 {
			t.Fatalf("enable without --yes succeeded: %s", r)
		}
		mustContain(t, "stderr", r.stderr, "refusing to enable without confirmation: stdin is not a terminal", "--yes")
		mustContain(t, "stdout", r.stdout, "Plan to enable", "REBOOT")
	}
	if mcs := s.managedMCs(t); len(mcs) != 0 {
		t.Fatalf("MachineConfigs were created: %d", len(mcs))
	}
	// Dry runs apply nothing either, and need no --yes.
	for _, mode := range []string{"client", "server"} {
		if r := run(t, s.cp.KubeconfigPath, "enable", "--dry-run="+mode); r.code != 0 {
			t.Fatalf("dry run %s: %s", mode, r)
		}
	}
	if mcs := s.managedMCs(t); len(mcs) != 0 {
		t.Fatalf("dry run created MachineConfigs: %d", len(mcs))
	}
	// disable refuses the same way, and leaves the MCs.
	if r := run(t, s.cp.KubeconfigPath, "enable", "--yes"); r.code != 0 {
		t.Fatal(r)
	}
	r := runBinary(t, s.cp.KubeconfigPath, "disable")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to disable") {
		t.Fatalf("disable without --yes: %s", r)
	}
	r = run(t, s.cp.KubeconfigPath, "disable", "--dry-run=server")
	if r.code != 0 || !strings.Contains(r.stdout, "99-kubens-worker deleted (server dry run)") {
		t.Fatalf("disable --dry-run=server: %s", r)
	}
	if mcs := s.managedMCs(t); len(mcs) != 2 {
		t.Fatalf("disable without --yes removed MachineConfigs: %d left", len(mcs))
	}
}

// A real user without rights on MachineConfigs gets a one-line error and
// nothing is created.
func TestRBACUserCannotEnable(t *testing.T) {
	s := startSim(t, simOptions{})
	ctx := context.Background()
	// alice may read pools and MachineConfigs (so she sees the plan), but
	// not create or patch them.
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "mc-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{mcfgv1.GroupName}, Resources: []string{"machineconfigs", "machineconfigpools"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := s.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-mc-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mc-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "alice"}},
	}
	if _, err := s.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alice, err := s.cp.UserKubeconfig("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.cp.UserKubeconfig("bob", nil) // no rights at all
	if err != nil {
		t.Fatal(err)
	}
	// RBAC caches take a moment to see the new binding.
	deadline := time.Now().Add(10 * time.Second)
	var r result
	for {
		r = run(t, alice, "enable", "--yes")
		if strings.Contains(r.stderr, "not allowed to create/patch") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 1 {
		t.Fatalf("alice enabled: %s", r)
	}
	mustContain(t, "alice", r.stderr, "error: you are not allowed to create/patch MachineConfigs", "nothing was changed", "cluster administrator")
	rb := runBinary(t, bob, "enable", "--yes")
	if rb.code != 1 {
		t.Fatalf("bob enabled: %s", rb)
	}
	mustContain(t, "bob", rb.stderr, "error: not allowed to list MachineConfigPools", "cluster administrator")
	for _, x := range []result{r, rb} {
		if n := strings.Count(strings.TrimSpace(x.stderr), "\n"); n != 0 {
			t.Errorf("error is %d lines, want one:\n%s", n+1, x.stderr)
		}
	}
	if mcs := s.managedMCs(t); len(mcs) != 0 {
		t.Fatalf("MachineConfigs were created: %d", len(mcs))
	}
}

// Plain Kubernetes (no MachineConfig API): every control command says so.
func TestNoMachineConfigAPI(t *testing.T) {
	s := startSim(t, simOptions{NoMCO: true})
	for _, args := range [][]string{{"status"}, {"enable", "--yes"}, {"disable", "--yes"}, {"wait"}} {
		r := run(t, s.cp.KubeconfigPath, args...)
		if r.code != 1 {
			t.Fatalf("%v succeeded: %s", args, r)
		}
		mustContain(t, strings.Join(args, " "), r.stderr, "this cluster has no MachineConfig API", "HyperShift")
	}
}

// status -o json|yaml carries the versioned envelope, and -o wide lists
// every node.
func TestStatusOutputs(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	r := run(t, kc, "status")
	mustContain(t, "status", r.stdout, "POOL", "master", "worker", "disabled")
	r = run(t, kc, "status", "-o", "json")
	var rep mcp.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.APIVersion != mcp.ReportAPIVersion || rep.Kind != mcp.ReportKind || len(rep.Pools) != 2 || len(rep.Nodes) != 3 {
		t.Fatalf("report %+v", rep)
	}
	r = run(t, kc, "status", "-o", "yaml")
	mustContain(t, "yaml", r.stdout, "apiVersion: oc-kubens.io/v1alpha1", "kind: KubensStatus")
	r = run(t, kc, "status", "-o", "wide")
	mustContain(t, "wide", r.stdout, "NODE", "master-0", "worker-0", "worker-1", "Done")
}

// A single-node cluster gets the stronger warning; a role no pool selects is
// an error naming the pools, and nothing is created.
func TestSingleNodeAndUnknownRole(t *testing.T) {
	s := startSim(t, simOptions{Nodes: map[string][]string{"sno": {"master", "worker"}}})
	kc := s.cp.KubeconfigPath
	r := run(t, kc, "enable", "--dry-run=client")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, "plan", r.stdout, "SINGLE-NODE cluster", "API server itself are down", "master     1 node", "worker     0 nodes")
	r = run(t, kc, "enable", "--yes", "--role", "arbiter")
	if r.code != 1 {
		t.Fatalf("enable --role arbiter without an arbiter pool succeeded: %s", r)
	}
	mustContain(t, "stderr", r.stderr, `no MachineConfigPool selects MachineConfig 99-kubens-arbiter (role "arbiter"); pools on this cluster: master, worker. Drop that role from --role`)
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("%d MachineConfigs created", n)
	}
}

// An MC that already exists under our name but says enabled: false (as
// `render --disabled | oc apply -f -` leaves it) is already in the pool's
// source: only the unit in the new rendered config shows the render has
// happened. Neither enable --wait nor a standalone wait may return early.
func TestWaitAfterChangingAnExistingMC(t *testing.T) {
	s := startSim(t, simOptions{RenderDelay: 2 * time.Second})
	kc := s.cp.KubeconfigPath
	ctx := context.Background()
	mcs := s.mcfg.MachineconfigurationV1().MachineConfigs()
	off, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mcs.Create(ctx, off[0], metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, kc, "wait", "--timeout", "2m"); r.code != 0 {
		t.Fatalf("wait for the disabled MC: %s", r)
	}
	offConfig := s.pool(t, "worker").Status.Configuration.Name

	checkEnabled := func(what string) {
		t.Helper()
		p := s.pool(t, "worker")
		if p.Status.Configuration.Name == offConfig || p.Status.Configuration.Name != p.Spec.Configuration.Name || !updated(p) {
			t.Fatalf("%s returned before the rollout: spec %s status %s (config before %s)", what, p.Spec.Configuration.Name, p.Status.Configuration.Name, offConfig)
		}
		st := run(t, kc, "status", "-o", "json")
		var rep mcp.Report
		if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		for _, ps := range rep.Pools {
			if ps.Name == "worker" && ps.Kubens != mcp.UnitEnabled {
				t.Fatalf("%s: worker pool kubens %s after the wait", what, ps.Kubens)
			}
		}
	}

	r := run(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	mustContain(t, "plan", r.stdout, "update    99-kubens-worker", "worker: Rendering")
	checkEnabled("enable --wait")

	// Back to disabled by hand, then the standalone wait right away.
	onConfig := s.pool(t, "worker").Status.Configuration.Name
	mc, err := mcs.Get(ctx, "99-kubens-worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mc.Spec.Config = off[0].Spec.Config
	if _, err := mcs.Update(ctx, mc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, kc, "wait", "--timeout", "2m"); r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	p := s.pool(t, "worker")
	if p.Status.Configuration.Name == onConfig || p.Status.Configuration.Name != p.Spec.Configuration.Name || !updated(p) {
		t.Fatalf("standalone wait returned before the rollout: spec %s status %s (config before %s)", p.Spec.Configuration.Name, p.Status.Configuration.Name, onConfig)
	}
}

// lookedAgain returns once the simulator's render and node controllers
// have each finished a sync of every pool named that began after the call:
// a check that nothing moved then comes after the simulator had its chance
// to move it.
func (s *sim) lookedAgain(t *testing.T, pools ...string) {
	t.Helper()
	mark := s.mco.Mark()
	s.mco.Resync()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, p := range pools {
			for _, c := range []string{mcosim.RenderController, mcosim.NodeController} {
				if !s.mco.SyncedSince(c, p, mark) {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the simulator did not sync pools %v again: %v", pools, err)
	}
}

// bgWait is `oc kubens wait` running in-process while the test reads its
// output (stdout and stderr together).
type bgWait struct {
	out  syncBuffer
	done chan struct{}
	err  error
}

// startWait starts `oc kubens wait args...`; requests, when not nil, sees
// every API request it makes. The wait is cancelled when the test ends.
func startWait(t *testing.T, kubeconfig string, requests *requestLog, args ...string) *bgWait {
	t.Helper()
	w := &bgWait{done: make(chan struct{})}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	if requests != nil {
		flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
			c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return loggingRT{rt, requests} })
			return c
		}
	}
	cmd := plugin.NewCmdWait(flags, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &w.out, ErrOut: &w.out})
	cmd.SetArgs(args)
	cmd.SetOut(&w.out)
	cmd.SetErr(&w.out)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	go func() {
		defer close(w.done)
		w.err = cmd.ExecuteContext(ctx)
	}()
	return w
}

// waitOutput returns once wait has printed want; it fails the test when
// wait ends first, or after a minute.
func (w *bgWait) waitOutput(t *testing.T, want string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		if strings.Contains(w.out.String(), want) {
			return true, nil
		}
		if !w.running() {
			return false, fmt.Errorf("wait ended first: %v", w.err)
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for wait to print %q: %v\n%s", want, err, w.out.String())
	}
}

func (w *bgWait) running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// result waits for wait to end and returns its error.
func (w *bgWait) result(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-w.done:
		t.Logf("oc kubens wait -> %v\n%s", w.err, w.out.String())
		return w.err
	case <-time.After(within):
		t.Fatalf("wait did not end within %s:\n%s", within, w.out.String())
		return nil
	}
}

// requestLog records the API requests a client makes: method, path, and
// whether it was a watch.
type requestLog struct {
	mu    sync.Mutex
	calls []string
}

type loggingRT struct {
	rt  http.RoundTripper
	log *requestLog
}

func (r loggingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	call := req.Method + " " + req.URL.Path
	if req.URL.Query().Get("watch") == "true" {
		call += " (watch)"
	}
	r.log.mu.Lock()
	r.log.calls = append(r.log.calls, call)
	r.log.mu.Unlock()
	return r.rt.RoundTrip(req)
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// count returns the lists and the watches of resource (a collection, not
// one object) from its first watch on.
func (l *requestLog) count(resource string) (lists, watches int) {
	for _, c := range l.all() {
		switch {
		case strings.HasSuffix(c, "/"+resource+" (watch)"):
			watches++
		case watches > 0 && strings.HasPrefix(c, "GET ") && strings.HasSuffix(c, "/"+resource):
			lists++
		}
	}
	return lists, watches
}

// hasRow tells whether a table line starts with these cells, whatever the
// padding.
func hasRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= len(cells) && slices.Equal(f[:len(cells)], cells) {
			return true
		}
	}
	return false
}
