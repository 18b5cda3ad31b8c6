package measure

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State says whether a node could be measured.
type State string

const (
	// Measured: PID 1's CPU use over the window is known. Other numbers
	// may still be -1 (unknown) one by one.
	Measured State = "Measured"
	// StateUnknown: no CPU figure; NodeMeasurement.Reason says why.
	StateUnknown State = "Unknown"
)

// Reasons FromReport gives for StateUnknown. They are stable identifiers.
// The engine adds the pod-level ones verify uses (Timeout, BadReport,
// ImagePullBackOff, ...) through Unmeasured.
const (
	// ReasonCPUUnreadable: PID 1's stat or the node's uptime could not be
	// read at one end of the window.
	ReasonCPUUnreadable = "CPUUnreadable"
	// ReasonPID1Restarted: PID 1's CPU counter went backwards.
	ReasonPID1Restarted = "PID1Restarted"
)

// Mounts are the mount table sizes at the end of the window, the state the
// node was left in; the start values stay in the Report. Hidden is how many
// more mounts kubelet sees than PID 1: the mounts encapsulation keeps out of
// systemd's sight. Where kubelet shares PID 1's namespace it is about 0 (the
// two tables are read a moment apart; it never goes below 0). -1: unknown.
type Mounts struct {
	PID1    int `json:"pid1"`
	Kubelet int `json:"kubelet"`
	Hidden  int `json:"hidden"`
}

// NodeMeasurement is measure's finding for one node. Numbers are -1 where
// unknown. Its JSON form is part of the MeasureReport schema.
type NodeMeasurement struct {
	Node  string `json:"node"`
	State State  `json:"state"`
	// Reason and Message are set for StateUnknown only.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// PID1Comm is PID 1's name ("systemd" on RHCOS), empty when no report
	// came back.
	PID1Comm string `json:"pid1Comm,omitempty"`
	// PID1CPUPercent is PID 1's CPU use over the window, in percent of one
	// core (systemd's, where PID 1 is systemd). Full precision.
	PID1CPUPercent float64 `json:"pid1CPUPercent"`
	// ClockTickAssumed: the node did not tell its clock tick rate and 100
	// (the Linux USER_HZ on every architecture OpenShift runs on) was used.
	ClockTickAssumed bool   `json:"clockTickAssumed,omitempty"`
	Mounts           Mounts `json:"mounts"`
	// MountUnits is how many mount units systemd tracks, at the end.
	MountUnits int `json:"mountUnits"`
	// ChurnPerSecond is how many lines of PID 1's mount table changed per
	// second, seen in snapshots about 200 ms apart: a mount made and
	// removed between two snapshots is not seen.
	ChurnPerSecond float64 `json:"churnPerSecond"`
	Pods           int     `json:"pods"`
}

// Unmeasured is a node without a usable report (the pod timed out, the
// report was rejected, ...): every number unknown.
func Unmeasured(node, reason, message string) NodeMeasurement {
	return NodeMeasurement{
		Node: node, State: StateUnknown, Reason: reason, Message: message,
		PID1CPUPercent: -1, Mounts: Mounts{PID1: -1, Kubelet: -1, Hidden: -1},
		MountUnits: -1, ChurnPerSecond: -1, Pods: -1,
	}
}

// FromReport turns a parsed report into a measurement. window is the window
// asked for; it only serves the message when the node's own clock is
// unreadable, since the rates use the elapsed time the node measured.
func FromReport(node string, r *Report, window time.Duration) NodeMeasurement {
	m := NodeMeasurement{
		Node: node, State: Measured, PID1Comm: r.PID1Comm, PID1CPUPercent: -1,
		ClockTickAssumed: !r.ClkTckFromNode,
		Mounts:           Mounts{PID1: r.PID1MountsEnd, Kubelet: r.KubeletMountsEnd, Hidden: -1},
		MountUnits:       r.MountUnits, ChurnPerSecond: -1, Pods: r.Pods,
	}
	if m.Mounts.PID1 >= 0 && m.Mounts.Kubelet >= 0 {
		m.Mounts.Hidden = max(m.Mounts.Kubelet-m.Mounts.PID1, 0)
	}
	elapsed := time.Duration(r.ElapsedMS) * time.Millisecond
	if r.ElapsedMS > 0 && r.ChurnChanges >= 0 {
		m.ChurnPerSecond = float64(r.ChurnChanges) / elapsed.Seconds()
	}
	switch {
	case r.PID1TicksStart < 0 || r.PID1TicksEnd < 0:
		m.State, m.Reason, m.Message = StateUnknown, ReasonCPUUnreadable, "PID 1's CPU time could not be read from /proc/1/stat"
	case r.ElapsedMS < 0:
		m.State, m.Reason, m.Message = StateUnknown, ReasonCPUUnreadable, fmt.Sprintf("the node's uptime could not be read, so the %v window was not timed", window)
	default:
		pct, err := CPUPercent(uint64(r.PID1TicksStart), uint64(r.PID1TicksEnd), elapsed, r.ClkTck)
		switch {
		case errors.Is(err, ErrCounterReset):
			m.State, m.Reason, m.Message = StateUnknown, ReasonPID1Restarted, err.Error()
		case err != nil:
			m.State, m.Reason, m.Message = StateUnknown, ReasonCPUUnreadable, err.Error()
		default:
			m.PID1CPUPercent = pct
		}
	}
	return m
}

// ReportAPIVersion and ReportKind identify the -o json|yaml document and a
// baseline file. Within this version fields are only added.
const (
	ReportAPIVersion = "oc-kubens.io/v1alpha1"
	ReportKind       = "MeasureReport"
)

// Summary is the cluster line. Counts are over all nodes; the other figures
// over the nodes where the figure is known (-1 when it is known nowhere).
type Summary struct {
	Total    int `json:"total"`
	Measured int `json:"measured"`
	Unknown  int `json:"unknown"`
	// AvgPID1CPUPercent and MaxPID1CPUPercent are over Measured nodes.
	AvgPID1CPUPercent float64 `json:"avgPID1CPUPercent"`
	MaxPID1CPUPercent float64 `json:"maxPID1CPUPercent"`
	// Totals.
	PID1Mounts     int     `json:"pid1Mounts"`
	KubeletMounts  int     `json:"kubeletMounts"`
	HiddenMounts   int     `json:"hiddenMounts"`
	MountUnits     int     `json:"mountUnits"`
	ChurnPerSecond float64 `json:"churnPerSecond"`
	Pods           int     `json:"pods"`
}

// MeasureReport is the document `measure -o json|yaml` prints, and what
// --baseline reads back.
type MeasureReport struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Duration is the window every node was measured over.
	Duration metav1.Duration   `json:"duration"`
	Summary  Summary           `json:"summary"`
	Nodes    []NodeMeasurement `json:"nodes"`
}

// NewMeasureReport summarises the nodes measured over window.
func NewMeasureReport(window time.Duration, nodes []NodeMeasurement) *MeasureReport {
	r := &MeasureReport{
		APIVersion: ReportAPIVersion, Kind: ReportKind,
		Duration: metav1.Duration{Duration: window}, Nodes: nodes,
	}
	if r.Nodes == nil {
		r.Nodes = []NodeMeasurement{}
	}
	r.Summary = summarize(r.Nodes)
	return r
}

func summarize(nodes []NodeMeasurement) Summary {
	s := Summary{AvgPID1CPUPercent: -1, MaxPID1CPUPercent: -1}
	var cpuSum, churn float64
	var churnKnown bool
	// total adds the known values of one field; it stays -1 when none is.
	total := func(dst *int, v int) {
		if v < 0 {
			return
		}
		if *dst < 0 {
			*dst = 0
		}
		*dst += v
	}
	s.PID1Mounts, s.KubeletMounts, s.HiddenMounts, s.MountUnits, s.Pods = -1, -1, -1, -1, -1
	for _, n := range nodes {
		s.Total++
		if n.State == Measured {
			s.Measured++
			cpuSum += n.PID1CPUPercent
			s.MaxPID1CPUPercent = max(s.MaxPID1CPUPercent, n.PID1CPUPercent)
		} else {
			s.Unknown++
		}
		total(&s.PID1Mounts, n.Mounts.PID1)
		total(&s.KubeletMounts, n.Mounts.Kubelet)
		total(&s.HiddenMounts, n.Mounts.Hidden)
		total(&s.MountUnits, n.MountUnits)
		total(&s.Pods, n.Pods)
		if n.ChurnPerSecond >= 0 {
			churn += n.ChurnPerSecond
			churnKnown = true
		}
	}
	if s.Measured > 0 {
		s.AvgPID1CPUPercent = cpuSum / float64(s.Measured)
	}
	s.ChurnPerSecond = -1
	if churnKnown {
		s.ChurnPerSecond = churn
	}
	return s
}
