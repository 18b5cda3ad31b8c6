package verify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/oc-kubens/oc-kubens/internal/kvreport"
)

// MaxReportSize is the largest report accepted. The kubelet keeps at most
// 4096 bytes of a termination message; a v1 report is about 500 bytes, plus
// at most 55 bytes per wrapped unit (under 2.5 KiB with MaxWrappedUnits).
const MaxReportSize = 4096

// MaxWrappedUnits bounds the wrapped units one probe reports on (the probe
// stops there too), which keeps the report well within MaxReportSize.
const MaxWrappedUnits = 32

// NSRef is a mount namespace as the probe saw it: its inode number in
// decimal, NSNone when the process or pin is absent, or NSDenied when it
// exists but could not be read.
type NSRef string

const (
	NSNone   NSRef = "none"
	NSDenied NSRef = "denied"
)

// Known says whether the reference is an actual namespace inode.
func (n NSRef) Known() bool { return n != NSNone && n != NSDenied && n != "" }

// Tri is a yes/no answer that may be unknown.
type Tri string

const (
	Yes     Tri = "yes"
	No      Tri = "no"
	Unknown Tri = "unknown"
)

// Report is a parsed, validated probe report (format v1).
type Report struct {
	PID1NS     NSRef
	KubeletPID int // 0: no process named kubelet
	KubeletNS  NSRef
	// Runtime is "crio", "containerd" or "none".
	Runtime    string
	RuntimePID int // 0: no runtime process
	RuntimeNS  NSRef
	// KubensPin and ZTPPin are the namespaces pinned at /run/kubens/mnt and
	// /run/container-mount-namespace/mnt, as PID 1 sees them.
	KubensPin        NSRef
	ZTPPin           NSRef
	KubeletKubensMnt Tri
	RuntimeKubensMnt Tri
	// Unit states are systemctl's words (enabled, disabled, active,
	// inactive, ...) or "unknown" when the node's PID 1 is not systemd.
	KubensEnabled string
	KubensActive  string
	ZTPEnabled    string
	ZTPActive     string
	// NetnsMountPoint: /run/netns is a mount point in kubelet's namespace.
	NetnsMountPoint Tri
	PID1Mounts      int // -1: unknown
	KubeletMounts   int // -1: unknown
	// Wrapped has one entry per unit the probe was given, in that order
	// (the report carries indexes, not names: a unit name does not fit the
	// value alphabet).
	Wrapped []WrappedProc
}

// WrappedProc is what the probe saw of one wrapped unit: its main PID (0
// when systemd knows none: not running, or the name was refused) and that
// process's mount namespace.
type WrappedProc struct {
	PID int
	NS  NSRef
}

// reportKeys lists every v1 key in the order the probe writes them, for a
// probe given no wrapped units.
var reportKeys = []string{
	"pid1.mnt", "kubelet.pid", "kubelet.mnt", "runtime.name", "runtime.pid",
	"runtime.mnt", "pin.kubens", "pin.ztp", "kubelet.kubensmnt",
	"runtime.kubensmnt", "unit.kubens.enabled", "unit.kubens.active",
	"unit.ztp.enabled", "unit.ztp.active", "netns.mountpoint", "pid1.mounts",
	"kubelet.mounts",
}

// wrapKey is the key of fact f (pid, mnt) of the i-th wrapped unit.
func wrapKey(i int, f string) string { return "wrap." + strconv.Itoa(i) + "." + f }

// keysFor lists every key of a report on n wrapped units, in the order the
// probe writes them: the fixed keys, then wrap.<i>.pid and wrap.<i>.mnt.
func keysFor(n int) []string {
	keys := append(make([]string, 0, len(reportKeys)+2*n), reportKeys...)
	for i := range n {
		keys = append(keys, wrapKey(i, "pid"), wrapKey(i, "mnt"))
	}
	return keys
}

// ErrNotReport marks input that is not a probe report at all (for example a
// log tail that FallbackToLogsOnError put in the termination message).
var ErrNotReport = errors.New("not a kubens probe report")

// ParseReport parses the termination message of a probe given no wrapped
// units: ParseReportUnits(data, 0).
func ParseReport(data []byte) (*Report, error) { return ParseReportUnits(data, 0) }

// ParseReportUnits parses a termination message strictly. It accepts exactly
// the v1 grammar:
//
//	report = "kubens-probe v1" LF *(key "=" value LF) "end" [LF]
//
// with every known key exactly once, no other key, values of 1 to 32
// characters from [A-Za-z0-9._:-], and each value valid for its key. The
// known keys depend on n, the number of wrapped units the probe was given:
// wrap.<i>.pid and wrap.<i>.mnt for each i below n, and none beyond.
func ParseReportUnits(data []byte, n int) (*Report, error) {
	if n < 0 || n > MaxWrappedUnits {
		return nil, fmt.Errorf("a report covers 0 to %d wrapped units, not %d", MaxWrappedUnits, n)
	}
	vals, err := kvreport.Grammar{Header: ReportHeader, Keys: keysFor(n), Ordered: false, MaxSize: MaxReportSize, NotReport: ErrNotReport}.Parse(data)
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
	ns := func(dst *NSRef) func(string) error {
		return func(v string) error {
			if v == string(NSNone) || v == string(NSDenied) {
				*dst = NSRef(v)
				return nil
			}
			if _, e := strconv.ParseUint(v, 10, 64); e != nil || v[0] == '0' {
				return fmt.Errorf("want an inode number, none or denied, got %q", v)
			}
			*dst = NSRef(v)
			return nil
		}
	}
	pid := func(dst *int) func(string) error {
		return func(v string) error {
			if v == "none" {
				*dst = 0
				return nil
			}
			n, e := strconv.Atoi(v)
			if e != nil || n <= 0 || v[0] == '0' || n > 1<<30 {
				return fmt.Errorf("want a PID or none, got %q", v)
			}
			*dst = n
			return nil
		}
	}
	tri := func(dst *Tri) func(string) error {
		return func(v string) error {
			switch Tri(v) {
			case Yes, No, Unknown:
				*dst = Tri(v)
				return nil
			}
			return fmt.Errorf("want yes, no or unknown, got %q", v)
		}
	}
	word := func(dst *string) func(string) error {
		return func(v string) error {
			for _, c := range v {
				if (c < 'a' || c > 'z') && c != '-' {
					return fmt.Errorf("want a systemctl state word, got %q", v)
				}
			}
			*dst = v
			return nil
		}
	}
	count := func(dst *int) func(string) error {
		return func(v string) error {
			if v == "unknown" {
				*dst = -1
				return nil
			}
			n, e := strconv.Atoi(v)
			if e != nil || n < 0 || (len(v) > 1 && v[0] == '0') || n > 1<<30 {
				return fmt.Errorf("want a count or unknown, got %q", v)
			}
			*dst = n
			return nil
		}
	}
	field("pid1.mnt", ns(&r.PID1NS))
	field("kubelet.pid", pid(&r.KubeletPID))
	field("kubelet.mnt", ns(&r.KubeletNS))
	field("runtime.name", func(v string) error {
		switch v {
		case "crio", "containerd", "none":
			r.Runtime = v
			return nil
		}
		return fmt.Errorf("want crio, containerd or none, got %q", v)
	})
	field("runtime.pid", pid(&r.RuntimePID))
	field("runtime.mnt", ns(&r.RuntimeNS))
	field("pin.kubens", ns(&r.KubensPin))
	field("pin.ztp", ns(&r.ZTPPin))
	field("kubelet.kubensmnt", tri(&r.KubeletKubensMnt))
	field("runtime.kubensmnt", tri(&r.RuntimeKubensMnt))
	field("unit.kubens.enabled", word(&r.KubensEnabled))
	field("unit.kubens.active", word(&r.KubensActive))
	field("unit.ztp.enabled", word(&r.ZTPEnabled))
	field("unit.ztp.active", word(&r.ZTPActive))
	field("netns.mountpoint", tri(&r.NetnsMountPoint))
	field("pid1.mounts", count(&r.PID1Mounts))
	field("kubelet.mounts", count(&r.KubeletMounts))
	if n > 0 {
		r.Wrapped = make([]WrappedProc, n)
	}
	for i := range r.Wrapped {
		field(wrapKey(i, "pid"), pid(&r.Wrapped[i].PID))
		field(wrapKey(i, "mnt"), ns(&r.Wrapped[i].NS))
	}
	if err != nil {
		return nil, err
	}
	// Consistency: a process that is absent has no namespace to report.
	if r.KubeletPID == 0 && r.KubeletNS != NSNone {
		return nil, errors.New("kubelet.mnt set without a kubelet process")
	}
	if (r.RuntimePID == 0) != (r.Runtime == "none") {
		return nil, errors.New("runtime.name and runtime.pid disagree")
	}
	if r.RuntimePID == 0 && r.RuntimeNS != NSNone {
		return nil, errors.New("runtime.mnt set without a runtime process")
	}
	for i, w := range r.Wrapped {
		if w.PID == 0 && w.NS != NSNone {
			return nil, fmt.Errorf("%s set without a main PID", wrapKey(i, "mnt"))
		}
	}
	return &r, nil
}

// Format writes the report back in the v1 grammar;
// ParseReportUnits(Format(r), len(r.Wrapped)) gives r again. Tests and the
// benchmark's simulated agent use it.
func (r *Report) Format() string {
	pidStr := func(p int) string {
		if p == 0 {
			return "none"
		}
		return strconv.Itoa(p)
	}
	cnt := func(n int) string {
		if n < 0 {
			return "unknown"
		}
		return strconv.Itoa(n)
	}
	vals := map[string]string{
		"pid1.mnt": string(r.PID1NS), "kubelet.pid": pidStr(r.KubeletPID),
		"kubelet.mnt": string(r.KubeletNS), "runtime.name": r.Runtime,
		"runtime.pid": pidStr(r.RuntimePID), "runtime.mnt": string(r.RuntimeNS),
		"pin.kubens": string(r.KubensPin), "pin.ztp": string(r.ZTPPin),
		"kubelet.kubensmnt": string(r.KubeletKubensMnt), "runtime.kubensmnt": string(r.RuntimeKubensMnt),
		"unit.kubens.enabled": r.KubensEnabled, "unit.kubens.active": r.KubensActive,
		"unit.ztp.enabled": r.ZTPEnabled, "unit.ztp.active": r.ZTPActive,
		"netns.mountpoint": string(r.NetnsMountPoint), "pid1.mounts": cnt(r.PID1Mounts),
		"kubelet.mounts": cnt(r.KubeletMounts),
	}
	for i, w := range r.Wrapped {
		vals[wrapKey(i, "pid")] = pidStr(w.PID)
		vals[wrapKey(i, "mnt")] = string(w.NS)
	}
	var b strings.Builder
	b.WriteString(ReportHeader + "\n")
	for _, k := range keysFor(len(r.Wrapped)) {
		b.WriteString(k + "=" + vals[k] + "\n")
	}
	b.WriteString("end\n")
	return b.String()
}
