package control

// End-to-end cases of issue 9 on the local control plane with the simulated
// MCO: configs as real clusters have them (Ignition 2.2, ZTP without
// enabled, the manual procedure without our label), a render failure left
// over from before the change, and the bytes status reads on a cluster with
// many old rendered configs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// createRealworldMC creates the MachineConfig of a one-document fixture in
// test/testdata/realworld, as `oc create -f` would.
func (s *sim) createRealworldMC(t *testing.T, file string) *mcfgv1.MachineConfig {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "test", "testdata", "realworld", file))
	if err != nil {
		t.Fatal(err)
	}
	var mc mcfgv1.MachineConfig
	if err := yaml.UnmarshalStrict(raw, &mc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	got, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(context.Background(), &mc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s: %v", file, err)
	}
	return got
}

// statusReport runs `status -o json`.
func statusReport(t *testing.T, kc string) mcp.Report {
	t.Helper()
	r := run(t, kc, "status", "-o", "json")
	var rep mcp.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r)
	}
	return rep
}

func poolStatus(t *testing.T, rep mcp.Report, name string) mcp.PoolStatus {
	t.Helper()
	for _, p := range rep.Pools {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no pool %s in %+v", name, rep)
	return mcp.PoolStatus{}
}

// rolledOutWith fails unless the pool runs a config built from source.
func (s *sim) rolledOutWith(t *testing.T, what, pool string, source ...string) *mcfgv1.MachineConfigPool {
	t.Helper()
	p := s.pool(t, pool)
	for _, n := range source {
		if !contains(sourceNames(p), n) {
			t.Errorf("%s: pool %s source %v lacks %s", what, pool, sourceNames(p), n)
		}
	}
	if p.Status.Configuration.Name != p.Spec.Configuration.Name || !updated(p) || p.Status.UpdatedMachineCount != p.Status.MachineCount {
		t.Errorf("%s: pool %s not rolled out: spec %s status %s updated=%v %d/%d", what, pool, p.Spec.Configuration.Name,
			p.Status.Configuration.Name, updated(p), p.Status.UpdatedMachineCount, p.Status.MachineCount)
	}
	return p
}

// Item 1: one Ignition 2.2.0 MachineConfig in a pool (ZTP's
// load-sctp-module) made the expected unit state unknown, and wait hung
// until --timeout. Both the standalone wait and enable --wait must end, and
// a 2.2.0 config that enables kubens.service shows under ENABLED BY.
func TestWaitWithIgnition22Config(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	s.createRealworldMC(t, "ign22-load-sctp-module-worker.yaml")
	r := run(t, kc, "wait", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("wait with a 2.2.0 config in the pool: %s", r)
	}
	s.rolledOutWith(t, "wait", "worker", "load-sctp-module-worker")

	r = run(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("enable --wait with a 2.2.0 config in the pool: %s", r)
	}
	mustContain(t, "enable", r.stdout, "worker: Updated", "All pools updated")
	s.rolledOutWith(t, "enable --wait", "worker", "load-sctp-module-worker", "99-kubens-worker")

	// A 2.2.0 config that enables kubens.service by itself.
	if r := run(t, kc, "disable", "--yes", "--wait", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("disable: %s", r)
	}
	s.createRealworldMC(t, "ci-99-custom-enable-kubens-worker.yaml")
	if r := run(t, kc, "wait", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("wait after a 2.2.0 config enabling kubens: %s", r)
	}
	s.rolledOutWith(t, "wait", "worker", "99-custom-enable-kubens-worker")
	ps := poolStatus(t, statusReport(t, kc), "worker")
	if ps.Kubens != mcp.UnitEnabled || !contains(ps.EnabledBy, "99-custom-enable-kubens-worker") {
		t.Errorf("status: worker kubens %s enabled by %v, want enabled by 99-custom-enable-kubens-worker", ps.Kubens, ps.EnabledBy)
	}
	st := run(t, kc, "status")
	mustContain(t, "status", st.stdout, "99-custom-enable-kubens-worker")
}

// Item 4: ZTP configs since 2023 do not set enabled on
// container-mount-namespace.service; status finds the mechanism by presence.
func TestStatusZTPWithoutEnabledFlag(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	s.createRealworldMC(t, "ztp-container-mount-namespace-worker-noenabled.yaml")
	if r := run(t, kc, "wait", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	rep := statusReport(t, kc)
	if !poolStatus(t, rep, "worker").ZTP || poolStatus(t, rep, "master").ZTP {
		t.Errorf("ZTP flags: worker %v master %v, want true/false", poolStatus(t, rep, "worker").ZTP, poolStatus(t, rep, "master").ZTP)
	}
	r := run(t, kc, "status")
	mustContain(t, "status", r.stdout, "Note: pool worker encapsulates through the ZTP container-mount-namespace.service.")
	if strings.Contains(r.stdout, "pool master encapsulates") {
		t.Errorf("status notes ZTP on master:\n%s", r.stdout)
	}
}

// Item 7: the seed procedure is a plain `kubectl apply` of 99-kubens-*
// without the oc-kubens label. Right after it the pool still says
// Updated=True for the old config; the standalone wait returned there
// ("All pools updated (in 0s)"), 5 s before the render.
func TestWaitAfterManualApplyOfUnlabelledConfig(t *testing.T) {
	s := startSim(t, simOptions{RenderDelay: 5 * time.Second})
	kc := s.cp.KubeconfigPath
	oldConfig := s.pool(t, "worker").Spec.Configuration.Name
	mcs, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	mc := mcs[0]
	delete(mc.Labels, manifests.ManagedByLabel)
	if manifests.IsManaged(mc) {
		t.Fatalf("config still reads as ours: %v", mc.Labels)
	}
	if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(context.Background(), mc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := s.pool(t, "worker"); !updated(p) || p.Spec.Configuration.Name != oldConfig {
		t.Fatalf("race precondition not met: pool should still be Updated=True at %s: %+v", oldConfig, p.Status)
	}
	r := run(t, kc, "wait", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	// The moment wait returns, the pool must have rendered the new config
	// (its source names the hand-applied config) and rolled it out. No
	// timing bound: a render the simulator had already scheduled may pick
	// the config up sooner than RenderDelay after the apply, as the MCO's
	// delayed queue does.
	p := s.rolledOutWith(t, "wait", "worker", "99-kubens-worker")
	if p.Status.Configuration.Name == oldConfig {
		t.Errorf("wait returned at the old config %s", oldConfig)
	}
	// Nor a "worker: Rendering" line: when that early render lands before
	// wait's first read (seen in CI under load), wait starts at Updating.
	mustContain(t, "wait", r.stdout, "worker: Updated", "All pools updated")
	if ps := poolStatus(t, statusReport(t, kc), "worker"); ps.Kubens != mcp.UnitEnabled || len(ps.Managed) != 0 {
		t.Errorf("status after wait: kubens %s managed %v", ps.Kubens, ps.Managed)
	}
}

// Item 14: a render failed; the offending config is deleted and
// `disable --yes --wait` runs at once. The RenderDegraded condition is from
// before the change and the operator is about to render again: the wait
// must not fail on it.
func TestDisableAfterFailedRenderIgnoresStaleCondition(t *testing.T) {
	s := startSim(t, simOptions{RenderDelay: 3 * time.Second})
	kc := s.cp.KubeconfigPath
	ctx := context.Background()
	if r := run(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	// The offending config, and the simulator told to fail the render as
	// the MCO would for it.
	bad := &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "99-worker-offending", Labels: map[string]string{manifests.RoleLabel: "worker"}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"}}`)}},
	}
	s.mco.FailRender("worker", "could not generate rendered MachineConfig: parsing 99-worker-offending failed")
	if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !renderDegraded(s.pool(t, "worker")) {
		if time.Now().After(deadline) {
			t.Fatal("the pool never went RenderDegraded")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Fix: delete the offending config (the operator renders again
	// RenderDelay later), then disable and wait at once.
	if err := s.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, bad.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.mco.FailRender("worker", "")
	start := time.Now()
	r := run(t, kc, "disable", "--yes", "--wait", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("disable --wait failed on the condition from before the change (after %s): %s", time.Since(start).Round(time.Millisecond), r)
	}
	mustContain(t, "disable", r.stdout, "RenderDegraded", "from before the change", "All pools updated")
	p := s.rolledOutWith(t, "disable --wait", "worker")
	if contains(sourceNames(p), "99-kubens-worker") || contains(sourceNames(p), bad.Name) || renderDegraded(p) {
		t.Errorf("pool after disable: source %v, RenderDegraded %v", sourceNames(p), renderDegraded(p))
	}

	// A render failure that happens during the wait still fails it at once.
	s.mco.FailRender("worker", "could not generate rendered MachineConfig: a new failure")
	start = time.Now()
	r = run(t, kc, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "1m")
	if r.code != 1 {
		t.Fatalf("enable --wait with a failing render succeeded: %s", r)
	}
	mustContain(t, "stderr", r.stderr, "pool worker cannot render its configuration (RenderDegraded)", "a new failure")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a fresh render failure took %s to fail the wait", d)
	}
}

func renderDegraded(p *mcfgv1.MachineConfigPool) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == mcfgv1.MachineConfigPoolRenderDegraded {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// byteCounter counts the response body bytes a client reads.
type byteCounter struct{ n atomic.Int64 }

type countingBody struct {
	io.ReadCloser
	c *byteCounter
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.n.Add(int64(n))
	return n, err
}

type bodyCountingRT struct {
	rt http.RoundTripper
	c  *byteCounter
}

func (r bodyCountingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = countingBody{resp.Body, r.c}
	}
	return resp, err
}

// bytesRead runs a command (status or wait) on ConfigFlags whose client
// counts the response bytes, and returns them.
func bytesRead(t *testing.T, kubeconfig string, newCmd func(*genericclioptions.ConfigFlags, genericiooptions.IOStreams) *cobra.Command, args ...string) int64 {
	t.Helper()
	var c byteCounter
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		// Uncompressed, so the count is what the objects weigh.
		cfg.DisableCompression = true
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return bodyCountingRT{rt, &c} })
		return cfg
	}
	var out bytes.Buffer
	cmd := newCmd(flags, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	return c.n.Load()
}

// addOldRenderedConfigs creates n rendered configs of the worker pool of
// about size bytes each (a big file in storage), as a long-lived cluster
// keeps them after every change.
func (s *sim) addOldRenderedConfigs(t testing.TB, from, n, size int) {
	t.Helper()
	ctx := context.Background()
	worker := s.pool(t, "worker")
	payload := strings.Repeat("A", size)
	raw, err := json.Marshal(map[string]any{
		"ignition": map[string]string{"version": "3.4.0"},
		"storage":  map[string]any{"files": []any{map[string]any{"path": "/etc/old-payload", "contents": map[string]string{"source": "data:," + payload}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mc := &mcfgv1.MachineConfig{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rendered-worker-old%04d", i),
					OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(worker, mcfgv1.GroupVersion.WithKind("MachineConfigPool"))}},
				Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
			}
			if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Item 12: long-lived clusters keep hundreds of old rendered configs at
// 0.5-1 MB each, and status read them all (one full list). The bytes status
// and wait read must not grow with their number. OC_KUBENS_OLD_RENDERED=300
// adds a measurement at 300 (slow: 150 MB into etcd).
func TestStatusBytesDoNotGrowWithOldRenderedConfigs(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	const size = 500 << 10
	counts := []int{10, 100}
	if v, err := strconv.Atoi(os.Getenv("OC_KUBENS_OLD_RENDERED")); err == nil && v > 100 {
		counts = append(counts, v)
	}
	type sample struct{ old, status, wide, wait, fullList int64 }
	var samples []sample
	have := 0
	for _, n := range counts {
		s.addOldRenderedConfigs(t, have, n-have, size)
		have = n
		var full byteCounter
		cfg := rest.CopyConfig(s.cfg)
		cfg.DisableCompression = true
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return bodyCountingRT{rt, &full} })
		// What the snapshot read before: one list of every MachineConfig.
		if _, err := mcfgclient.NewForConfigOrDie(cfg).MachineconfigurationV1().MachineConfigs().List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		smp := sample{
			old:      int64(n),
			status:   bytesRead(t, kc, plugin.NewCmdStatus),
			wide:     bytesRead(t, kc, plugin.NewCmdStatus, "-o", "wide"),
			wait:     bytesRead(t, kc, plugin.NewCmdWait, "--timeout", "1m"),
			fullList: full.n.Load(),
		}
		t.Logf("%d old rendered configs of %d KB: status %d B, status -o wide %d B, wait %d B; a full MachineConfig list is %d B",
			n, size>>10, smp.status, smp.wide, smp.wait, smp.fullList)
		samples = append(samples, smp)
	}
	first := samples[0]
	for _, smp := range samples[1:] {
		for _, c := range []struct {
			what      string
			was, more int64
		}{{"status", first.status, smp.status}, {"status -o wide", first.wide, smp.wide}, {"wait", first.wait, smp.wait}} {
			// Resource versions and timestamps vary a little; a single
			// old rendered config would add 500 KB.
			if c.more > c.was+16<<10 {
				t.Errorf("%s read %d B with %d old rendered configs, %d B with %d", c.what, c.more, smp.old, c.was, first.old)
			}
		}
	}
}
