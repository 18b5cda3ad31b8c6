// Package benefit shows what mount namespace encapsulation buys on one node
// under one workload: the same RHCOS-like worker runs the same pod churn
// first as booted (plain), then after `oc kubens enable` has made the
// simulated Machine Config Operator roll kubens.service out to it
// (encapsulated), and systemd's CPU, the mounts it sees, the mount units it
// tracks and the churn of its mount table are sampled from the host in
// both states. `make bench-benefit` runs it and it writes
// docs/bench/benefit.md and docs/bench/benefit.png.
//
// It is a report, not a test of the plugin: it asserts only that the node
// was in the state each phase is named after, never a figure.
package benefit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// gateEnv must be 1 for the report to run: it takes minutes, reboots a node
// and rewrites files under docs/, so `make integration` (go test ./test/...)
// must skip it.
const gateEnv = "KUBENS_BENCH_BENEFIT"

const workloadNS = "kubens-benefit"

var pluginBin = e2eutil.PluginBinary{TempPrefix: "oc-kubens-benefit-"}

// config is the run's knobs, from the environment (make passes them).
type config struct {
	window, warmup, podSleep, measureWindow time.Duration
	inFlight, unitSamples                   int
	report                                  string // docs/bench/benefit.md; the PNG goes beside it
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func loadConfig(t *testing.T) config {
	c := config{
		window:        envDuration(t, "KUBENS_BENEFIT_WINDOW", 60*time.Second),
		warmup:        envDuration(t, "KUBENS_BENEFIT_WARMUP", 20*time.Second),
		podSleep:      envDuration(t, "KUBENS_BENEFIT_POD_SLEEP", 5*time.Second),
		measureWindow: envDuration(t, "KUBENS_BENEFIT_MEASURE_WINDOW", 20*time.Second),
		inFlight:      envInt(t, "KUBENS_BENEFIT_PODS", 40),
		unitSamples:   5,
		report:        os.Getenv("KUBENS_BENEFIT_REPORT"),
	}
	if c.report == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		c.report = filepath.Join(root, "docs", "bench", "benefit.md")
	}
	return c
}

// TestBenefitReport runs the workload on worker-0 plain, turns encapsulation
// on with the plugin, runs it again encapsulated, and writes the report.
func TestBenefitReport(t *testing.T) {
	if os.Getenv(gateEnv) != "1" {
		t.Skipf("a report, not a test: `make bench-benefit` runs it (%s=1)", gateEnv)
	}
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cfg := loadConfig(t)
	bin := pluginBin.Path(t)
	clk, err := clockTick()
	if err != nil {
		t.Fatal(err)
	}
	r := &run{
		Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(), GoVersion: runtime.Version(),
		CPUs: runtime.NumCPU(), Arch: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadavg(),
		Node: "worker-0", InFlight: cfg.inFlight, PodSleep: cfg.podSleep, Warmup: cfg.warmup, ClockTick: clk,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	c, err := harness.Up(ctx, harness.Options{Masters: 1, Workers: 1, Logf: t.Logf})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	// The same paces as the e2e suites: the rollout's own waits are not
	// what this measures.
	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{RenderDelay: time.Second, StepDelay: 100 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	t.Cleanup(mco.Stop)
	m := c.Machine("worker-0")
	if err := setupNamespace(ctx, c.Client, workloadNS); err != nil {
		t.Fatal(err)
	}
	withMeasure := measureAvailable(bin)
	if withMeasure {
		r.MeasureCmd = fmt.Sprintf("oc kubens measure worker-0 --duration %s -o json --image %s --image-pull-policy Never", cfg.measureWindow, images.ToolsImage)
	}
	ph := phaseRunner{t: t, c: c, m: m, cfg: cfg, clk: clk, bin: bin, withMeasure: withMeasure}

	r.Plain = ph.run(ctx, "plain")
	if r.Plain.KubeletMntNS != r.Plain.PID1MntNS {
		t.Fatalf("plain phase: kubelet is in %s, not in PID 1's %s: the node was not plain", r.Plain.KubeletMntNS, r.Plain.PID1MntNS)
	}

	oldPID := m.InitPID()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "enable", "--yes", "--wait", "--role", "worker", "--timeout", "5m", "--kubeconfig", c.KubeconfigPath())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oc kubens enable: %v\n%s", err, out)
	}
	r.EnableTook = time.Since(start)
	t.Logf("enable --wait took %s:\n%s", r.EnableTook.Round(time.Second), out)
	if m.InitPID() == oldPID {
		t.Fatalf("worker-0's systemd is still PID %d after enable --wait: the node did not reboot", oldPID)
	}

	r.Encap = ph.run(ctx, "encapsulated")
	if r.Encap.KubeletMntNS == r.Encap.PID1MntNS {
		t.Fatalf("encapsulated phase: kubelet shares PID 1's mount namespace %s: the node was not encapsulated", r.Encap.PID1MntNS)
	}
	r.LoadEnd = loadavg()

	if err := os.MkdirAll(filepath.Dir(cfg.report), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.report, []byte(r.markdown()), 0o644); err != nil {
		t.Fatal(err)
	}
	png := strings.TrimSuffix(cfg.report, filepath.Ext(cfg.report)) + ".png"
	if err := plotCPU(r, png); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and %s", cfg.report, png)
	pc, ec := r.Plain.cpu(), r.Encap.cpu()
	t.Logf("systemd CPU mean %.1f%% plain, %.1f%% encapsulated; mount units %.0f / %.0f; PID 1 mounts %.0f / %.0f",
		pc.Mean, ec.Mean, r.Plain.units().Mean, r.Encap.units().Mean, r.Plain.pid1Mounts().Mean, r.Encap.pid1Mounts().Mean)
}

// phaseRunner runs the workload and samples the node in its current state.
type phaseRunner struct {
	t           *testing.T
	c           *harness.Cluster
	m           *node.RHCOSNode
	cfg         config
	clk         int64
	bin         string
	withMeasure bool
}

func (pr phaseRunner) run(ctx context.Context, name string) *phase {
	t, m, cfg := pr.t, pr.m, pr.cfg
	t.Helper()
	ph := &phase{Name: name, Window: cfg.window}
	initPID := m.InitPID()
	kubelet, err := waitKubelet(ctx, initPID)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if ph.PID1MntNS, err = nsLink(initPID, "mnt"); err != nil {
		t.Fatal(err)
	}
	if ph.KubeletMntNS, err = nsLink(kubelet, "mnt"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: systemd is PID %d (%s), kubelet PID %d (%s)", name, initPID, ph.PID1MntNS, kubelet, ph.KubeletMntNS)

	ch := &churn{kube: pr.c.Client, ns: workloadNS, node: m.Name, inFlight: cfg.inFlight, sleep: cfg.podSleep, logf: t.Logf}
	if err := ch.start(ctx); err != nil {
		t.Fatalf("%s: workload: %v", name, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = ch.stop(context.Background(), func(context.Context) error { return nil })
		}
	}()
	time.Sleep(cfg.warmup)
	t.Logf("%s: warmed up for %s: %d pods in flight, %+v", name, cfg.warmup, ch.live.Load(), ch.counters())

	ph.LoadFrom = loadavg()
	busy0, total0, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	before := ch.counters()
	ph.Samples, err = sampleWindow(ctx, initPID, kubelet, pr.clk, cfg.window, func() int { return int(ch.live.Load()) })
	if err != nil {
		t.Fatalf("%s: sampling: %v", name, err)
	}
	ph.Work = ch.counters().sub(before)
	busy1, total1, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if total1 > total0 {
		ph.MachineBusy = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	ph.LoadTo = loadavg()
	t.Logf("%s: window done: systemd CPU %+v, workload %+v, load %s -> %s", name, ph.cpu(), ph.Work, ph.LoadFrom, ph.LoadTo)

	// After the window, while the workload goes on: each listing is
	// work for PID 1, kept out of the CPU measured.
	for i := range cfg.unitSamples {
		if i > 0 {
			time.Sleep(time.Second)
		}
		out, err := m.Systemctl(ctx, "list-units", "--type=mount", "--all", "--no-legend", "--plain")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ph.MountUnits = append(ph.MountUnits, countLines(out))
	}

	if pr.withMeasure {
		nm, err := runMeasure(ctx, pr.bin, pr.c.KubeconfigPath(), m.Name, cfg.measureWindow)
		if err != nil {
			// Another engineer's new command: its failure is reported,
			// not fatal to the figures sampled from the host.
			t.Errorf("%s: oc kubens measure: %v", name, err)
			ph.MeasureNote = fmt.Sprintf("`oc kubens measure` failed in the %s phase: %v", name, err)
		} else {
			ph.Measure = nm
			t.Logf("%s: measure: %+v", name, *nm)
		}
	} else {
		ph.MeasureNote = "`oc kubens measure` was not in the plugin binary this run used (`oc kubens --help` " +
			"listed no measure command), so only the host-side figures above are reported. The run calls it " +
			"in each phase as soon as the binary has it; `make bench-benefit` then adds its figures here."
	}

	stopped = true
	if err := ch.stop(ctx, func(ctx context.Context) error { return podsGone(ctx, kubelet) }); err != nil {
		t.Logf("%s: stopping the workload: %v", name, err)
	}
	return ph
}

// waitKubelet waits for the node's kubelet to be there (it may still be
// starting after a reboot).
func waitKubelet(ctx context.Context, initPID int) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		pid, err := findKubelet(initPID)
		if err == nil || time.Now().After(deadline) {
			return pid, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podsGone waits until the kubelet has torn every pod down (its pods
// folder, seen through its own root, is empty), so that the next phase
// starts from a node at rest. A minute is plenty; after it the next phase
// starts anyway (the reboot or the cluster's end clears the rest).
func podsGone(ctx context.Context, kubelet int) error {
	dir := fmt.Sprintf("/proc/%d/root/var/lib/kubelet/pods", kubelet)
	deadline := time.Now().Add(time.Minute)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pod folders still in %s after a minute", len(entries), dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// measureAvailable says whether the plugin binary has a measure command:
// root --help lists it under "Available Commands:". (An unknown subcommand's
// --help prints the root help and exits 0, so that alone tells nothing.)
func measureAvailable(bin string) bool {
	out, err := exec.Command(bin, "--help").Output()
	if err != nil {
		return false
	}
	_, cmds, ok := strings.Cut(string(out), "Available Commands:")
	if !ok {
		return false
	}
	for _, l := range strings.Split(cmds, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "measure" {
			return true
		}
		if l != "" && !strings.HasPrefix(l, " ") {
			break // the next section
		}
	}
	return false
}

// runMeasure runs `oc kubens measure NODE -o json` and returns the node's
// measurement. Its exit status is not trusted alone: a node measured as
// Unknown may exit non-zero and still print the document.
func runMeasure(ctx context.Context, bin, kubeconfig, nodeName string, window time.Duration) (*measure.NodeMeasurement, error) {
	cmd := exec.CommandContext(ctx, bin, "measure", nodeName, "--duration", window.String(), "-o", "json",
		"--image", images.ToolsImage, "--image-pull-policy", "Never", "--kubeconfig", kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep measure.MeasureReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("exit %v, output not a MeasureReport (%v): %s%s", runErr, err, stdout.String(), stderr.String())
	}
	for i := range rep.Nodes {
		if rep.Nodes[i].Node == nodeName {
			return &rep.Nodes[i], nil
		}
	}
	return nil, fmt.Errorf("exit %v, no node %s in the report: %s", runErr, nodeName, stdout.String())
}

// gitCommit is the commit the report is made at: make passes it (git may
// refuse a repository owned by another user to root), else git says.
func gitCommit() string {
	if c := os.Getenv("KUBENS_BENEFIT_COMMIT"); c != "" {
		return c
	}
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
