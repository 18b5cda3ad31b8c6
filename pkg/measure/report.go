package measure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/oc-kubens/oc-kubens/internal/kvreport"
)

// MaxReportSize is the largest report accepted. The kubelet keeps at most
// 4096 bytes of a termination message; a v1 report is about 400 bytes.
const MaxReportSize = 4096

// Report is a parsed, validated measure report (format v1). Counts and
// counters are -1 where the probe said "unknown".
type Report struct {
	// Window is the window asked for, in seconds (1 to 3600).
	Window int
	// PID1Comm is PID 1's comm ("systemd" on RHCOS), "unknown" when it
	// could not be read or holds characters a report cannot carry.
	PID1Comm string
	// PID1TicksStart and PID1TicksEnd are PID 1's utime+stime in clock
	// ticks at the start and the end of the window.
	PID1TicksStart int64
	PID1TicksEnd   int64
	// ElapsedMS is the wall time between the two tick reads by the node's
	// uptime clock (10 ms resolution).
	ElapsedMS int64
	// ClkTck is the node's clock tick rate (getconf CLK_TCK); when the node
	// could not tell, it is 100 and ClkTckFromNode is false.
	ClkTck         int64
	ClkTckFromNode bool
	// Mounts in PID 1's and in kubelet's mount table at both ends.
	PID1MountsStart    int
	PID1MountsEnd      int
	KubeletPID         int // 0: no process named kubelet
	KubeletMountsStart int
	KubeletMountsEnd   int
	// MountUnits is the number of mount units systemd lists; -1 when PID 1
	// is not systemd or systemctl could not answer.
	MountUnits int
	// ChurnChanges counts lines added to plus lines removed from PID 1's
	// mount table between consecutive snapshots, over ChurnSamples
	// snapshots about 200 ms apart. Both are -1 when sampling failed.
	ChurnChanges int
	ChurnSamples int
	// Pods is the number of folders in /var/lib/kubelet/pods as kubelet
	// sees it.
	Pods int
}

// reportKeys lists every v1 key in the order the probe writes them.
var reportKeys = []string{
	"window", "pid1.comm", "pid1.ticks.start", "pid1.ticks.end", "elapsed.ms",
	"clk.tck", "clk.source", "pid1.mounts.start", "pid1.mounts.end",
	"kubelet.pid", "kubelet.mounts.start", "kubelet.mounts.end",
	"mount.units", "churn.changes", "churn.samples", "pods",
}

// ErrNotReport marks input that is not a measure report at all (for example
// a log tail that FallbackToLogsOnError put in the termination message).
var ErrNotReport = errors.New("not a kubens measure report")

const unknown = "unknown"

// ParseReport parses a termination message strictly. It accepts exactly the
// v1 grammar:
//
//	report = "kubens-measure v1" LF *(key "=" value LF) "end" [LF]
//
// with every known key exactly once and in the probe's order, no other key,
// values of 1 to 32 characters from [A-Za-z0-9._:-], each value valid for
// its key, and the values consistent with each other.
func ParseReport(data []byte) (*Report, error) {
	// The probe writes the keys in one order; holding to it makes every
	// accepted report byte for byte what Format writes.
	vals, err := kvreport.Grammar{Header: ReportHeader, Keys: reportKeys, Ordered: true, MaxSize: MaxReportSize, NotReport: ErrNotReport}.Parse(data)
	if err != nil {
		return nil, err
	}

	var r Report
	field := func(k string, f func(string) error) {
		if err == nil {
			if e := f(vals[k]); e != nil {
				err = fmt.Errorf("%s: %w", k, e)
			}
		}
	}
	// number parses a canonical decimal (no sign, no leading zero) up to
	// limit, or "unknown" as -1 when allowed.
	number := func(dst *int64, limit int64, allowUnknown bool, want string) func(string) error {
		return func(v string) error {
			if allowUnknown && v == unknown {
				*dst = -1
				return nil
			}
			n, e := strconv.ParseInt(v, 10, 64)
			if e != nil || !digits(v) || n > limit || (len(v) > 1 && v[0] == '0') {
				return fmt.Errorf("want %s, got %q", want, v)
			}
			*dst = n
			return nil
		}
	}
	count := func(dst *int) func(string) error {
		return func(v string) error {
			var n int64
			if e := number(&n, 1<<30, true, "a count or unknown")(v); e != nil {
				return e
			}
			*dst = int(n)
			return nil
		}
	}
	ticks := func(dst *int64) func(string) error {
		return number(dst, 1<<62, true, "a tick count or unknown")
	}
	var window, kpid int64
	field("window", func(v string) error {
		if e := number(&window, 3600, false, "1 to 3600 seconds")(v); e != nil {
			return e
		}
		if window < 1 {
			return fmt.Errorf("want 1 to 3600 seconds, got %q", v)
		}
		r.Window = int(window)
		return nil
	})
	field("pid1.comm", func(v string) error {
		// checkValue has bounded it to the report's charset; any such
		// word can be a comm.
		r.PID1Comm = v
		return nil
	})
	field("pid1.ticks.start", ticks(&r.PID1TicksStart))
	field("pid1.ticks.end", ticks(&r.PID1TicksEnd))
	field("elapsed.ms", number(&r.ElapsedMS, 1<<40, true, "milliseconds or unknown"))
	field("clk.tck", func(v string) error {
		if e := number(&r.ClkTck, 999_999, false, "a clock tick rate")(v); e != nil {
			return e
		}
		if r.ClkTck < 1 {
			return fmt.Errorf("want a clock tick rate, got %q", v)
		}
		return nil
	})
	field("clk.source", func(v string) error {
		switch v {
		case "node":
			r.ClkTckFromNode = true
		case "default":
			r.ClkTckFromNode = false
		default:
			return fmt.Errorf("want node or default, got %q", v)
		}
		return nil
	})
	field("pid1.mounts.start", count(&r.PID1MountsStart))
	field("pid1.mounts.end", count(&r.PID1MountsEnd))
	field("kubelet.pid", func(v string) error {
		if v == "none" {
			return nil
		}
		if e := number(&kpid, 1<<30, false, "a PID or none")(v); e != nil {
			return e
		}
		if kpid < 1 {
			return fmt.Errorf("want a PID or none, got %q", v)
		}
		r.KubeletPID = int(kpid)
		return nil
	})
	field("kubelet.mounts.start", count(&r.KubeletMountsStart))
	field("kubelet.mounts.end", count(&r.KubeletMountsEnd))
	field("mount.units", count(&r.MountUnits))
	field("churn.changes", count(&r.ChurnChanges))
	field("churn.samples", count(&r.ChurnSamples))
	field("pods", count(&r.Pods))
	if err != nil {
		return nil, err
	}

	// Consistency: the probe never writes these combinations, so a report
	// that has them was not written by it.
	switch {
	case !r.ClkTckFromNode && r.ClkTck != 100:
		return nil, errors.New("clk.source=default with a clock tick other than 100")
	case r.KubeletPID == 0 && (r.KubeletMountsStart != -1 || r.KubeletMountsEnd != -1 || r.Pods != -1):
		return nil, errors.New("kubelet mounts or pods set without a kubelet process")
	case (r.ChurnChanges == -1) != (r.ChurnSamples == -1):
		return nil, errors.New("churn.changes and churn.samples disagree on being unknown")
	case r.ChurnSamples == 0:
		return nil, errors.New("churn.samples is 0: the first snapshot counts")
	case r.ChurnSamples == 1 && r.ChurnChanges != 0:
		return nil, errors.New("churn.changes without a second snapshot to compare")
	case r.MountUnits != -1 && r.PID1Comm != "systemd":
		return nil, errors.New("mount.units set while PID 1 is not systemd")
	}
	return &r, nil
}

// digits says whether v is all ASCII digits (ParseInt alone takes signs).
func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}

// Format writes the report back in the v1 grammar, as the probe does;
// ParseReport(Format(r)) gives r again. The name follows verify's Report:
// tests and simulated nodes use it to stand in for the probe.
func (r *Report) Format() string {
	n := func(v int64) string {
		if v < 0 {
			return unknown
		}
		return strconv.FormatInt(v, 10)
	}
	c := func(v int) string { return n(int64(v)) }
	kpid := "none"
	if r.KubeletPID > 0 {
		kpid = strconv.Itoa(r.KubeletPID)
	}
	src := "default"
	if r.ClkTckFromNode {
		src = "node"
	}
	vals := map[string]string{
		"window": strconv.Itoa(r.Window), "pid1.comm": r.PID1Comm,
		"pid1.ticks.start": n(r.PID1TicksStart), "pid1.ticks.end": n(r.PID1TicksEnd),
		"elapsed.ms": n(r.ElapsedMS), "clk.tck": strconv.FormatInt(r.ClkTck, 10), "clk.source": src,
		"pid1.mounts.start": c(r.PID1MountsStart), "pid1.mounts.end": c(r.PID1MountsEnd),
		"kubelet.pid": kpid, "kubelet.mounts.start": c(r.KubeletMountsStart),
		"kubelet.mounts.end": c(r.KubeletMountsEnd), "mount.units": c(r.MountUnits),
		"churn.changes": c(r.ChurnChanges), "churn.samples": c(r.ChurnSamples), "pods": c(r.Pods),
	}
	var b strings.Builder
	b.WriteString(ReportHeader + "\n")
	for _, k := range reportKeys {
		b.WriteString(k + "=" + vals[k] + "\n")
	}
	b.WriteString("end\n")
	return b.String()
}
