package benefit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
)

// Everything here reads the node from the host's /proc: the node's systemd
// is an ordinary host process (its PID is RHCOSNode.InitPID), so nothing runs
// inside the node and nothing the sampling does is charged to its PID 1.

// clockTick is the host's USER_HZ, the unit of utime and stime in
// /proc/PID/stat. getconf asks the C library: the plugin is built without
// cgo, so there is no sysconf to call.
func clockTick() (int64, error) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 0, fmt.Errorf("getconf CLK_TCK: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

// cpuTicks is utime+stime of a host process, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	u, s, err := measure.ParseStat(string(b))
	return u + s, err
}

// mountLines reads a process's mount table, one line per mount.
func mountLines(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
}

// mountDiff counts the lines only one of two mount tables has: each mount
// added and each removed is one change, as measure's probe counts them
// (`comm -3` of the sorted tables). The mount ID leads each line, so a
// remount is a new line: it counts twice, there as here.
func mountDiff(a, b []string) int {
	seen := make(map[string]int, len(a))
	for _, l := range a {
		seen[l]++
	}
	n := 0
	for _, l := range b {
		if seen[l] > 0 {
			seen[l]--
		} else {
			n++
		}
	}
	for _, c := range seen {
		n += c
	}
	return n
}

// nsLink is a process's namespace link ("mnt:[4026532180]").
func nsLink(pid int, ns string) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
}

// findKubelet is the host PID of the node's kubelet: the process named
// kubelet in the PID namespace of the node's systemd. Other kubelets run on
// the machine (the cluster's other node, other clusters), each in its own
// node's namespace. The lowest PID wins: the kubelet's own threads are not
// listed in /proc, and a second kubelet in one node would be a bug the
// figures should not hide, so it is an error.
func findKubelet(initPID int) (int, error) {
	want, err := nsLink(initPID, "pid")
	if err != nil {
		return 0, err
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "kubelet" {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ns, err := nsLink(pid, "pid"); err == nil && ns == want {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no kubelet in the PID namespace of PID %d (%s)", initPID, want)
	case 1:
		return found[0], nil
	}
	slices.Sort(found)
	return 0, fmt.Errorf("%d kubelets in the PID namespace of PID %d: %v", len(found), initPID, found)
}

// machineCPU reads the first line of /proc/stat: the whole machine's busy
// and total jiffies, to show what else used the cores during a window.
func machineCPU() (busy, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("/proc/stat is empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", sc.Text())
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		// idle and iowait are the 4th and 5th numbers; guest time is
		// already counted in user and nice.
		switch {
		case i == 3 || i == 4:
		case i >= 8:
			total -= v
		default:
			busy += v
		}
	}
	return busy, total, nil
}

// loadavg is /proc/loadavg's three averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// churnCounter snapshots PID 1's mount table every 200 ms, as measure's
// probe does, and adds up the lines that changed; take drains the sum.
type churnCounter struct {
	mu      sync.Mutex
	changes int
	err     error
}

func (c *churnCounter) run(ctx context.Context, pid int) {
	prev, err := mountLines(pid)
	if err != nil {
		c.fail(err)
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur, err := mountLines(pid)
		if err != nil {
			c.fail(err)
			return
		}
		n := mountDiff(prev, cur)
		prev = cur
		c.mu.Lock()
		c.changes += n
		c.mu.Unlock()
	}
}

func (c *churnCounter) fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *churnCounter) take() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.changes
	c.changes = 0
	return n, c.err
}

// sample is one second of the window.
type sample struct {
	At            float64 // seconds since the window started, at the sample's end
	CPUPercent    float64 // systemd's CPU over the second, % of one core
	PID1Mounts    int
	KubeletMounts int
	Churn         int // lines of PID 1's mount table changed during the second
	InFlight      int // churn pods that exist
}

// sampleWindow samples the node every second for window: systemd's CPU,
// both mount tables, the churn and the workload's pods in flight.
func sampleWindow(ctx context.Context, initPID, kubeletPID int, clk int64, window time.Duration, inFlight func() int) ([]sample, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var churn churnCounter
	go churn.run(cctx, initPID)
	start := time.Now()
	prevTicks, err := cpuTicks(initPID)
	if err != nil {
		return nil, err
	}
	prevAt := start
	var out []sample
	for i := 1; time.Duration(i)*time.Second <= window; i++ {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(time.Until(start.Add(time.Duration(i) * time.Second))):
		}
		ticks, err := cpuTicks(initPID)
		now := time.Now()
		if err != nil {
			return out, fmt.Errorf("systemd (PID %d): %w", initPID, err)
		}
		pct, err := measure.CPUPercent(prevTicks, ticks, now.Sub(prevAt), clk)
		if err != nil {
			return out, err
		}
		prevTicks, prevAt = ticks, now
		p1, err := mountLines(initPID)
		if err != nil {
			return out, err
		}
		kl, err := mountLines(kubeletPID)
		if err != nil {
			return out, fmt.Errorf("kubelet (PID %d): %w", kubeletPID, err)
		}
		ch, err := churn.take()
		if err != nil {
			return out, fmt.Errorf("mount churn: %w", err)
		}
		out = append(out, sample{At: now.Sub(start).Seconds(), CPUPercent: pct,
			PID1Mounts: len(p1), KubeletMounts: len(kl), Churn: ch, InFlight: inFlight()})
	}
	return out, nil
}

// countLines counts the non-empty lines of a command's output.
func countLines(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}
