package control

import (
	"context"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// Faults on real processes (issue 14): the real kube-apiserver and etcd
// stopped and started again on the same port, a node that degrades and a
// pool paused mid-rollout, two enables at once, and a single-node cluster
// whose reboot takes the API server with it. Each command runs as the
// built binary and either completes correctly or fails fast with one
// "error:" line and exit code 1; the MachineConfigs are applied whole or
// not at all, and nothing is left behind. The time from the daemon being
// back to the command's success is logged as "RECOVERY".

// faultRebooter stands in for the reboot of object-only nodes: the test can
// hold reboots until it has done its damage, and count them.
type faultRebooter struct {
	mu      sync.Mutex
	gate    chan struct{}
	during  func(ctx context.Context, node string) error
	reboots map[string]int
	booting chan string
}

func newFaultRebooter() *faultRebooter {
	return &faultRebooter{reboots: map[string]int{}, booting: make(chan string, 64)}
}

func (r *faultRebooter) Reboot(ctx context.Context, node string, _ bool) error {
	r.mu.Lock()
	gate, during := r.gate, r.during
	r.reboots[node]++
	r.mu.Unlock()
	select {
	case r.booting <- node:
	default:
	}
	if during != nil {
		if err := during(ctx, node); err != nil {
			return err
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// hold keeps every reboot from now on going until release.
func (r *faultRebooter) hold() (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	for len(r.booting) > 0 {
		<-r.booting
	}
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.gate = nil
			r.mu.Unlock()
			close(gate)
		})
	}
}

// nextReboot returns the node whose reboot began next: the MachineConfigs
// are applied, rendered, and that node is in the middle of its update.
func (r *faultRebooter) nextReboot(t *testing.T) string {
	t.Helper()
	select {
	case n := <-r.booting:
		t.Logf("node %s is rebooting", n)
		return n
	case <-time.After(2 * time.Minute):
		t.Fatal("no node began to reboot within 2 minutes")
		return ""
	}
}

func (r *faultRebooter) count(node string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reboots[node]
}

// startFaultSim is startSim with reboots through r.
func startFaultSim(t *testing.T, nodes map[string][]string, r mcosim.Rebooter) *sim {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cp := controlplane.StartForTest(t, controlplane.Options{Logf: t.Logf}, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &sim{cp: cp, cfg: cp.RESTConfig()}
	s.kube = kubernetes.NewForConfigOrDie(s.cfg)
	s.mcfg = mcfgclient.NewForConfigOrDie(s.cfg)
	if err := e2eutil.CreateNodes(ctx, s.cfg, nodes, false); err != nil {
		t.Fatal(err)
	}
	mco, err := mcosim.Start(context.Background(), s.cfg, r, mcosim.Options{
		RenderDelay: 500 * time.Millisecond, StepDelay: 50 * time.Millisecond,
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

// bgCommand is the built binary running while the test breaks things.
type bgCommand struct {
	args        []string
	cmd         *exec.Cmd
	out, errOut syncBuffer
	done        chan struct{}
	code        int
	ended       time.Time
}

// startBinary starts the built binary; it is killed if the test ends first.
func startBinary(t *testing.T, kubeconfig string, args ...string) *bgCommand {
	t.Helper()
	c := &bgCommand{args: args, done: make(chan struct{})}
	c.cmd = exec.Command(pluginBinary(t), append(args, "--kubeconfig", kubeconfig)...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.errOut
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		err := c.cmd.Wait()
		c.ended = time.Now()
		c.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			c.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				c.code = -1
			}
		} else if err != nil {
			c.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// waitOutput returns once the command has printed want on stdout.
func (c *bgCommand) waitOutput(t *testing.T, want string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		if strings.Contains(c.out.String(), want) {
			return true, nil
		}
		select {
		case <-c.done:
			return false, context.Canceled
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("oc-kubens %s did not print %q (%v):\n%s\n%s", strings.Join(c.args, " "), want, err, c.out.String(), c.errOut.String())
	}
}

// result waits for the command to end.
func (c *bgCommand) result(t *testing.T, within time.Duration) result {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		t.Fatalf("oc-kubens %s did not end within %s:\n%s\n%s", strings.Join(c.args, " "), within, c.out.String(), c.errOut.String())
	}
	r := result{stdout: c.out.String(), stderr: c.errOut.String(), code: c.code}
	t.Logf("oc-kubens %s -> %s", strings.Join(c.args, " "), r)
	return r
}

// succeeded: exit 0 and nothing on stderr but API warnings.
func succeeded(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s failed: %s", what, r)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "Warning: ") {
			t.Errorf("%s succeeded but wrote to stderr: %q", what, l)
		}
	}
}

// failedCleanly: exit 1 and exactly one "error: " line on stderr, which
// holds every want.
func failedCleanly(t *testing.T, what string, r result, wants ...string) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("%s: exit %d, want 1: %s", what, r.code, r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("%s: stderr is not one \"error: \" line:\n%s", what, r.stderr)
	}
	mustContain(t, what+" error", r.stderr, wants...)
}

// faultFree checks what a fault may not leave behind: exactly the managed
// MachineConfigs wanted (each written once: generation 1, one field
// manager), one new rendered config per pool at most per change, no
// namespace or pod.
func (s *sim) faultFree(t *testing.T, renderedBefore map[string]int, changes int, wantMCs ...string) {
	t.Helper()
	var names []string
	for _, mc := range s.managedMCs(t) {
		names = append(names, mc.Name)
		if mc.Generation != 1 {
			t.Errorf("%s has generation %d: written more than once", mc.Name, mc.Generation)
		}
		var managers []string
		for _, f := range mc.ManagedFields {
			managers = append(managers, f.Manager+"/"+string(f.Operation))
		}
		if len(managers) != 1 || managers[0] != change.FieldManager+"/Apply" {
			t.Errorf("%s managed by %v, want only %s/Apply", mc.Name, managers, change.FieldManager)
		}
	}
	sort.Strings(names)
	sort.Strings(wantMCs)
	if !slices.Equal(names, wantMCs) {
		t.Errorf("managed MachineConfigs %v, want %v: half a change, or a leak", names, wantMCs)
	}
	for pool, n := range s.renderedCount(t) {
		if n > renderedBefore[pool]+changes {
			t.Errorf("pool %s: %d rendered configs, was %d: more than %d render(s)", pool, n, renderedBefore[pool], changes)
		}
	}
	ns, err := s.kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		if !slices.Contains([]string{"default", "kube-system", "kube-public", "kube-node-lease"}, n.Name) {
			t.Errorf("namespace %s left behind", n.Name)
		}
	}
	pods, err := s.kube.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		t.Errorf("pod %s/%s left behind", p.Namespace, p.Name)
	}
}

// renderedCount counts the rendered configs per pool.
func (s *sim) renderedCount(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range s.renderedNames(t) {
		for _, pool := range []string{"master", "worker"} {
			if strings.HasPrefix(n, "rendered-"+pool+"-") {
				out[pool]++
			}
		}
	}
	return out
}

// rolledOut: the pool is Updated at a config whose source has (or, with
// has false, lacks) mc.
func (s *sim) rolledOut(t *testing.T, pool, mc string, has bool) {
	t.Helper()
	p := s.pool(t, pool)
	if !updated(p) || p.Status.Configuration.Name != p.Spec.Configuration.Name || contains(sourceNames(p), mc) != has {
		t.Errorf("pool %s not rolled out with %s=%v: spec %s status %s source %v", pool, mc, has,
			p.Spec.Configuration.Name, p.Status.Configuration.Name, sourceNames(p))
	}
}

// recovery logs the time from the end of the fault (the daemon healthy
// again, the node repaired, the pool unpaused) to the command's success.
func recovery(t *testing.T, fault string, back time.Time, c *bgCommand) {
	t.Logf("RECOVERY %s: command succeeded %s after the fault ended", fault, c.ended.Sub(back).Round(time.Millisecond))
}

func TestFaultsOnRealProcesses(t *testing.T) {
	r := newFaultRebooter()
	s := startFaultSim(t, defaultNodes, r)
	kc := s.cp.KubeconfigPath
	ctx := context.Background()
	const tmo = "3m"

	t.Run("apiserver restarted during enable --wait, and status meanwhile", func(t *testing.T) {
		before := s.renderedCount(t)
		release := r.hold()
		defer release()
		c := startBinary(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", tmo)
		r.nextReboot(t)
		// Mid-rollout: the whole set is applied before any node moves.
		if mcs := s.managedMCs(t); len(mcs) != 1 || mcs[0].Name != "99-kubens-worker" {
			t.Fatalf("managed MCs mid-rollout: %d", len(mcs))
		}
		if err := s.cp.StopDaemon(controlplane.APIServer, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.waitOutput(t, "Lost the API server")

		// A read-only status does not wait for the API: it fails at once,
		// in one line, and can simply be run again.
		begin := time.Now()
		st := runBinary(t, kc, "status")
		took := time.Since(begin)
		failedCleanly(t, "status with the API server down", st, strings.TrimPrefix(s.cp.APIServerURL, "https://"))
		t.Logf("status with the API server down failed in %s", took.Round(time.Millisecond))
		if took > 30*time.Second {
			t.Errorf("status took %s to fail with the API server down", took)
		}

		if err := s.cp.StartDaemon(ctx, controlplane.APIServer); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		release()
		res := c.result(t, 3*time.Minute)
		succeeded(t, "enable --wait", res)
		mustContain(t, "enable --wait", res.stdout, "99-kubens-worker created", "Lost the API server",
			"Connection to the API server is back", "All pools updated: worker")
		recovery(t, "apiserver restart during enable --wait", back, c)
		succeeded(t, "status after the restart", runBinary(t, kc, "status"))
		s.rolledOut(t, "worker", "99-kubens-worker", true)
		s.faultFree(t, before, 1, "99-kubens-worker")
	})

	t.Run("etcd restarted during wait", func(t *testing.T) {
		before := s.renderedCount(t)
		if res := run(t, kc, "disable", "--yes", "--role", "worker"); res.code != 0 {
			t.Fatal(res)
		}
		release := r.hold()
		defer release()
		c := startBinary(t, kc, "wait", "--timeout", tmo)
		r.nextReboot(t)
		if err := s.cp.StopDaemon(controlplane.Etcd, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		// Down until the API server has noticed: its etcd check fails.
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			return s.kube.Discovery().RESTClient().Get().AbsPath("/readyz/etcd").Do(ctx).Error() != nil, nil
		})
		if err != nil {
			t.Fatalf("the API server did not notice etcd was down: %v", err)
		}
		if err := s.cp.StartDaemon(ctx, controlplane.Etcd); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		release()
		res := c.result(t, 3*time.Minute)
		succeeded(t, "wait", res)
		mustContain(t, "wait", res.stdout, "All pools updated")
		recovery(t, "etcd restart during wait", back, c)
		s.rolledOut(t, "worker", "99-kubens-worker", false)
		s.faultFree(t, before, 1)
	})

	t.Run("apiserver killed during wait", func(t *testing.T) {
		before := s.renderedCount(t)
		if res := run(t, kc, "enable", "--yes", "--role", "worker"); res.code != 0 {
			t.Fatal(res)
		}
		release := r.hold()
		defer release()
		c := startBinary(t, kc, "wait", "--pool", "worker", "--timeout", tmo)
		r.nextReboot(t)
		if err := s.cp.StopDaemon(controlplane.APIServer, 0); err != nil { // a crash
			t.Fatal(err)
		}
		c.waitOutput(t, "Lost the API server")
		if err := s.cp.StartDaemon(ctx, controlplane.APIServer); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		release()
		res := c.result(t, 3*time.Minute)
		succeeded(t, "wait", res)
		mustContain(t, "wait", res.stdout, "Lost the API server", "Connection to the API server is back", "All pools updated: worker")
		recovery(t, "apiserver kill during wait", back, c)
		s.rolledOut(t, "worker", "99-kubens-worker", true)
		s.faultFree(t, before, 1, "99-kubens-worker")
	})

	t.Run("node degraded mid-rollout", func(t *testing.T) {
		before := s.renderedCount(t)
		release := r.hold()
		defer release()
		c := startBinary(t, kc, "disable", "--yes", "--wait", "--role", "worker", "--timeout", tmo)
		first := r.nextReboot(t)
		other := "worker-0"
		if first == other {
			other = "worker-1"
		}
		const reason = "unexpected on-disk state validating against rendered-worker: /etc/kubens.conf"
		s.mco.DegradeNodeOnUpdate(other, reason)
		degraded := time.Now()
		release()
		res := c.result(t, 3*time.Minute)
		failedCleanly(t, "disable --wait with a degraded node", res, "pool worker is degraded",
			other+" (Degraded: "+reason+")", "oc describe mcp worker", "oc kubens wait")
		t.Logf("FAILED FAST node degraded mid-rollout: exit %d %s after the node degraded", res.code, c.ended.Sub(degraded).Round(time.Millisecond))

		s.mco.RepairNode(other)
		repaired := time.Now()
		w := startBinary(t, kc, "wait", "--timeout", tmo)
		succeeded(t, "wait after the repair", w.result(t, 3*time.Minute))
		recovery(t, "degraded node repaired, wait", repaired, w)
		s.rolledOut(t, "worker", "99-kubens-worker", false)
		s.faultFree(t, before, 1)
	})

	t.Run("pool paused mid-rollout", func(t *testing.T) {
		before := s.renderedCount(t)
		release := r.hold()
		defer release()
		c := startBinary(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", tmo)
		first := r.nextReboot(t)
		other := "worker-0"
		if first == other {
			other = "worker-1"
		}
		if err := s.mco.SetPaused(ctx, "worker", true); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		release()
		res := c.result(t, 3*time.Minute)
		failedCleanly(t, "enable --wait on a pool paused mid-rollout", res, "pool worker is paused",
			other, "oc patch mcp worker", "oc kubens wait")
		t.Logf("FAILED FAST pool paused mid-rollout: exit %d %s after the pause", res.code, c.ended.Sub(paused).Round(time.Millisecond))

		if err := s.mco.SetPaused(ctx, "worker", false); err != nil {
			t.Fatal(err)
		}
		unpaused := time.Now()
		w := startBinary(t, kc, "wait", "--timeout", tmo)
		succeeded(t, "wait after unpausing", w.result(t, 3*time.Minute))
		recovery(t, "pool unpaused, wait", unpaused, w)
		s.rolledOut(t, "worker", "99-kubens-worker", true)
		s.faultFree(t, before, 1, "99-kubens-worker")
	})

	t.Run("two enables at once", func(t *testing.T) {
		before := s.renderedCount(t)
		reboots := r.count("master-0")
		args := []string{"enable", "--yes", "--wait", "--role", "master", "--timeout", tmo}
		c1, c2 := startBinary(t, kc, args...), startBinary(t, kc, args...)
		r1, r2 := c1.result(t, 3*time.Minute), c2.result(t, 3*time.Minute)
		succeeded(t, "first enable", r1)
		succeeded(t, "second enable", r2)
		for _, res := range []result{r1, r2} {
			mustContain(t, "enable", res.stdout, "99-kubens-master", "All pools updated: master")
		}
		if n := r.count("master-0") - reboots; n != 1 {
			t.Errorf("master-0 rebooted %d times, want once", n)
		}
		s.rolledOut(t, "master", "99-kubens-master", true)
		s.faultFree(t, before, 1, "99-kubens-master", "99-kubens-worker")
	})
}

// A single-node cluster: the reboot of its only node takes the API server
// down with it (here: the real kube-apiserver killed and started again
// while the node "reboots"). enable --wait rides it out and finishes.
func TestFaultSingleNodeRebootRestartsAPIServer(t *testing.T) {
	r := newFaultRebooter()
	var s *sim
	var mu sync.Mutex
	var back time.Time
	r.during = func(ctx context.Context, node string) error {
		if err := s.cp.StopDaemon(controlplane.APIServer, 0); err != nil {
			return err
		}
		t := time.NewTimer(time.Second) // the machine is down for a while
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := s.cp.StartDaemon(ctx, controlplane.APIServer)
		mu.Lock()
		back = time.Now()
		mu.Unlock()
		return err
	}
	s = startFaultSim(t, map[string][]string{"sno": {"master", "worker"}}, r)
	before := s.renderedCount(t)
	c := startBinary(t, s.cp.KubeconfigPath, "enable", "--yes", "--wait", "--timeout", "3m")
	res := c.result(t, 3*time.Minute)
	succeeded(t, "enable --wait on a single node", res)
	mustContain(t, "enable --wait", res.stdout, "SINGLE-NODE cluster", "Lost the API server",
		"Connection to the API server is back", "All pools updated: master, worker")
	if n := r.count("sno"); n != 1 {
		t.Errorf("sno rebooted %d times, want once", n)
	}
	mu.Lock()
	recovery(t, "single-node reboot (apiserver restart) during enable --wait", back, c)
	mu.Unlock()
	s.rolledOut(t, "master", "99-kubens-master", true)
	s.rolledOut(t, "worker", "99-kubens-worker", true)
	s.faultFree(t, before, 1, "99-kubens-master", "99-kubens-worker")
}
