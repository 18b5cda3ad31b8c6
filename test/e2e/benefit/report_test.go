package benefit

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
)

// phase is what one state of the node gave.
type phase struct {
	Name    string // "plain" or "encapsulated"
	Samples []sample
	// MountUnits are the mount units systemd listed, sampled after the
	// window (listing them is work PID 1 does).
	MountUnits []int
	// Namespaces of the node's systemd and kubelet.
	PID1MntNS, KubeletMntNS string
	// The workload over the window.
	Work     counters
	Window   time.Duration
	LoadFrom string // /proc/loadavg at the window's start and end
	LoadTo   string
	// MachineBusy is the whole machine's CPU use over the window, in % of
	// all cores.
	MachineBusy float64
	// Measure is `oc kubens measure`'s finding for the node, when the
	// command exists (MeasureNote says why not otherwise).
	Measure     *measure.NodeMeasurement
	MeasureNote string
}

// stats are the summary figures of one series.
type stats struct{ Mean, P50, P95, Max float64 }

func summarize(v []float64) stats {
	if len(v) == 0 {
		return stats{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return stats{Mean: sum / float64(len(s)), P50: percentile(s, 50), P95: percentile(s, 95), Max: s[len(s)-1]}
}

// percentile of sorted values, nearest rank: a value that was measured,
// never one interpolated between two seconds.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func series[T int | float64](ss []sample, f func(sample) T) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = float64(f(s))
	}
	return out
}

func ints(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func (p *phase) cpu() stats {
	return summarize(series(p.Samples, func(s sample) float64 { return s.CPUPercent }))
}
func (p *phase) pid1Mounts() stats {
	return summarize(series(p.Samples, func(s sample) int { return s.PID1Mounts }))
}
func (p *phase) kubeletMounts() stats {
	return summarize(series(p.Samples, func(s sample) int { return s.KubeletMounts }))
}
func (p *phase) churn() stats {
	return summarize(series(p.Samples, func(s sample) int { return s.Churn }))
}
func (p *phase) inFlight() stats {
	return summarize(series(p.Samples, func(s sample) int { return s.InFlight }))
}
func (p *phase) units() stats { return summarize(ints(p.MountUnits)) }

// ratio is plain over encapsulated, as a factor; a zero below it has no
// finite ratio.
func ratio(plain, encap float64) string {
	switch {
	case math.IsNaN(plain) || math.IsNaN(encap):
		return "-"
	case encap == 0 && plain == 0:
		return "1x"
	case encap == 0:
		return "∞ (0 encapsulated)"
	}
	return fmt.Sprintf("%.1fx", plain/encap)
}

// run describes the whole run for the report.
type run struct {
	Date, Commit, GoVersion string
	CPUs                    int
	Arch                    string
	LoadStart, LoadEnd      string
	Node                    string
	InFlight                int
	PodSleep, Warmup        time.Duration
	ClockTick               int64
	EnableTook              time.Duration
	Plain, Encap            *phase
	MeasureCmd              string // the command line, empty when measure did not run
}

// markdown writes docs/bench/benefit.md.
func (r *run) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p, e := r.Plain, r.Encap
	pc, ec := p.cpu(), e.cpu()
	w("# Benchmark: the benefit of encapsulation")
	w("")
	w("Written by `make bench-benefit` (%s, commit %s): one run of `TestBenefitReport` in", r.Date, r.Commit)
	w("test/e2e/benefit. The numbers are what came out on this machine at its load then (below);")
	w("another run, another machine or another load gives other numbers.")
	w("")
	w("![systemd CPU over time, plain and encapsulated](benefit.png)")
	w("")
	w("Same node, same workload, first as booted (plain), then encapsulated by `oc kubens enable`:")
	w("")
	w("| worker-0 under pod churn | plain | encapsulated | plain / encapsulated |")
	w("|---|---:|---:|---:|")
	row := func(name, unit string, a, b float64) {
		w("| %s | %s | %s | %s |", name, fmtNum(a, unit), fmtNum(b, unit), ratio(a, b))
	}
	// For figures encapsulation is meant to raise, or not to change, a
	// ratio would read as a loss or mean nothing.
	plainRow := func(name string, a, b float64) {
		w("| %s | %s | %s | - |", name, fmtNum(a, ""), fmtNum(b, ""))
	}
	row("systemd CPU, mean", "%", pc.Mean, ec.Mean)
	row("systemd CPU, p50", "%", pc.P50, ec.P50)
	row("systemd CPU, p95", "%", pc.P95, ec.P95)
	row("systemd CPU, max", "%", pc.Max, ec.Max)
	row("mount units systemd tracks (mean)", "", p.units().Mean, e.units().Mean)
	row("mount units systemd tracks (max)", "", p.units().Max, e.units().Max)
	row("mounts visible to PID 1 (mean)", "", p.pid1Mounts().Mean, e.pid1Mounts().Mean)
	row("mounts visible to PID 1 (max)", "", p.pid1Mounts().Max, e.pid1Mounts().Max)
	plainRow("mounts visible to kubelet (mean)", p.kubeletMounts().Mean, e.kubeletMounts().Mean)
	plainRow("mounts visible to kubelet (max)", p.kubeletMounts().Max, e.kubeletMounts().Max)
	row("PID 1 mount table churn, changes/s (mean)", "", p.churn().Mean, e.churn().Mean)
	row("PID 1 mount table churn, changes/s (p95)", "", p.churn().P95, e.churn().P95)
	w("")
	w("CPU is in percent of one core, each value over one second (%d one-second samples per", len(p.Samples))
	w("state); the host's clock tick is %d Hz, so one sample resolves %.0f%%.", r.ClockTick, 100/float64(r.ClockTick))
	w("")
	w("## What the workload sustained")
	w("")
	w("| | plain | encapsulated |")
	w("|---|---:|---:|")
	for _, l := range []struct {
		name string
		f    func(*phase) string
	}{
		{"window", func(x *phase) string { return x.Window.String() }},
		{"churn pods in flight (mean)", func(x *phase) string { return fmt.Sprintf("%.1f", x.inFlight().Mean) }},
		{"pods created per second", func(x *phase) string { return perSec(x.Work.Created, x.Window) }},
		{"pods completed per second", func(x *phase) string { return perSec(x.Work.Succeeded, x.Window) }},
		{"pods failed / create errors", func(x *phase) string { return fmt.Sprintf("%d / %d", x.Work.Failed, x.Work.CreateErrors) }},
		{"pod lifetime, creation to removal (mean)", func(x *phase) string {
			if x.Work.Gone == 0 {
				return "-"
			}
			return (x.Work.Lifetime / time.Duration(x.Work.Gone)).Round(100 * time.Millisecond).String()
		}},
		{"machine CPU busy, all cores", func(x *phase) string { return fmt.Sprintf("%.0f%%", x.MachineBusy) }},
		{"load average at window start", func(x *phase) string { return x.LoadFrom }},
		{"load average at window end", func(x *phase) string { return x.LoadTo }},
		{"kubelet's mount namespace", func(x *phase) string {
			if x.KubeletMntNS == x.PID1MntNS {
				return "PID 1's (" + x.PID1MntNS + ")"
			}
			return x.KubeletMntNS + " (PID 1: " + x.PID1MntNS + ")"
		}},
	} {
		w("| %s | %s | %s |", l.name, l.f(p), l.f(e))
	}
	w("")
	w("The loop keeps %d pods in flight, so the rates are what the node managed with that many:", r.InFlight)
	w("in flight divided by a pod's lifetime (its %s of sleep plus the node's start and teardown).", r.PodSleep)
	if p.MachineBusy >= 90 || e.MachineBusy >= 90 {
		w("The cores were saturated during the windows: pod starts queue up behind everything else,")
		w("and systemd's CPU is what it got to use under that contention, not what it would use alone.")
	}
	w("")
	w("Machine: %d CPUs, %s, %s. Load average (1, 5, 15 min) %s when the run started and %s", r.CPUs, r.Arch, r.GoVersion, r.LoadStart, r.LoadEnd)
	w("when it ended. The control plane, both nodes, the workload's API traffic and whatever else")
	w("ran on the machine (a CI run may have been going on) share these cores: the machine CPU row")
	w("above says how busy they were during each window.")
	w("")
	w("## `oc kubens measure` in each state")
	w("")
	if p.Measure == nil || e.Measure == nil {
		note := p.MeasureNote
		if note == "" {
			note = e.MeasureNote
		}
		w("%s", note)
	} else {
		w("`%s`, run after each window while the workload kept going:", r.MeasureCmd)
		w("")
		w("| measure's figure | plain | encapsulated | plain / encapsulated |")
		w("|---|---:|---:|---:|")
		pm, em := p.Measure, e.Measure
		row("PID 1 CPU", "%", pm.PID1CPUPercent, em.PID1CPUPercent)
		row("mount units", "", float64(pm.MountUnits), float64(em.MountUnits))
		row("mounts PID 1", "", float64(pm.Mounts.PID1), float64(em.Mounts.PID1))
		plainRow("mounts kubelet", float64(pm.Mounts.Kubelet), float64(em.Mounts.Kubelet))
		plainRow("mounts hidden from systemd", float64(pm.Mounts.Hidden), float64(em.Mounts.Hidden))
		row("churn, changes/s", "", pm.ChurnPerSecond, em.ChurnPerSecond)
		plainRow("pods", float64(pm.Pods), float64(em.Pods))
		w("")
		w("measure's state: plain %s, encapsulated %s.", pm.State, em.State)
	}
	w("")
	w("## How it was made")
	w("")
	w("- **Cluster**: the local test cluster (`harness.Up`, 1 master and 1 worker), RHCOS-like nodes:")
	w("  systemd as the node's PID 1 in its own PID and mount namespaces, CRI-O (cgroupfs, vfs")
	w("  storage, runc) and kubelet as units, `kubens.service` shipped disabled; a real etcd and")
	w("  kube-apiserver; the simulated Machine Config Operator (`test/mcosim`) writes each rendered")
	w("  config into the node and reboots it.")
	w("- **Workload**: %d churn pods kept in flight on worker-0 (`nodeName` set, no scheduler), each", r.InFlight)
	w("  `sleep %d` in the busybox tools image (`imagePullPolicy: Never`), host network (the cluster", int(r.PodSleep.Seconds()))
	w("  has no pod network), with a secret, a configmap, an emptyDir and a projected volume")
	w("  (configmap + secret + downward API). An ended pod is deleted at once and replaced.")
	w("- **Plain**: the node as booted. %s of workload to warm up, then the window.", r.Warmup)
	w("- **Encapsulated**: the workload is stopped, `oc kubens enable --yes --wait --role worker`")
	w("  (the built binary) creates `99-kubens-worker`; the simulated MCO renders it, writes it into")
	w("  worker-0 and reboots it (took %s, until the plugin's wait returned). The workload restarts,", r.EnableTook.Round(time.Second))
	w("  warms up for %s, then the same window.", r.Warmup)
	w("- **Sampling**, from the host, every second of the window: systemd's utime+stime from")
	w("  `/proc/<pid>/stat` (`measure.ParseStat`, `measure.CPUPercent`); the lines of PID 1's and")
	w("  kubelet's `/proc/<pid>/mountinfo` (kubelet: the process named kubelet in the node's PID")
	w("  namespace); churn: PID 1's mount table snapshotted every 200 ms and the lines added plus")
	w("  removed between snapshots summed per second, as `oc kubens measure` counts it (a mount made")
	w("  and removed between two snapshots is not seen). Reading `/proc` from the host costs PID 1")
	w("  nothing. Mount units: `systemctl list-units --type=mount --all` in the node, %d times a", len(p.MountUnits))
	w("  second apart right after the window, not during it: listing units is a D-Bus call PID 1")
	w("  answers, and it would count in the CPU measured.")
	w("- **Limits**: PID 1's CPU only, not the kernel's mount work or other systemd processes. Real")
	w("  RHCOS runs kubelet and CRI-O with the systemd cgroup driver, where every container is also")
	w("  a systemd scope; these nodes use cgroupfs, so systemd's work here comes from mounts alone.")
	w("  The plot's x axis is seconds into each window; the two windows were minutes apart.")
	return b.String()
}

func fmtNum(v float64, unit string) string {
	switch {
	case math.IsNaN(v) || v < 0:
		return "unknown"
	case unit == "%":
		return fmt.Sprintf("%.1f%%", v)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func perSec(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(n)/d.Seconds())
}

// plotCPU draws systemd's CPU over each window, both states on one plot.
func plotCPU(r *run, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("systemd (PID 1) CPU on worker-0, %d churn pods in flight", r.InFlight)
	p.X.Label.Text = "seconds into the window"
	p.Y.Label.Text = "% of one core"
	// Head room above the highest second, so the legend in the top
	// right corner does not sit on the lines.
	p.Y.Min = 0
	p.Y.Max = math.Max(1, 1.4*math.Max(r.Plain.cpu().Max, r.Encap.cpu().Max))
	p.Add(plotter.NewGrid())
	for _, s := range []struct {
		ph  *phase
		col color.RGBA
	}{
		{r.Plain, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
		{r.Encap, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
	} {
		xy := make(plotter.XYs, len(s.ph.Samples))
		for i, smp := range s.ph.Samples {
			xy[i] = plotter.XY{X: smp.At, Y: smp.CPUPercent}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = s.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (mean %.1f%%)", s.ph.Name, s.ph.cpu().Mean), l)
	}
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 4*vg.Inch, path)
}
