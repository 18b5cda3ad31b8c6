package measure

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"sigs.k8s.io/yaml"
)

// Presence says on which side of a comparison a node was measured.
type Presence string

const (
	Both Presence = "Both"
	// Gone: in the baseline only (removed, renamed, or not selected now).
	Gone Presence = "Gone"
	// New: in the current measurement only.
	New Presence = "New"
)

// NodeComparison sets one node's baseline against its current measurement.
// A nil figure is unknown on that side (or the side is missing); a nil
// difference means either side is. Differences are After - Before.
type NodeComparison struct {
	Node     string   `json:"node"`
	Presence Presence `json:"presence"`
	// States on each side; empty for the missing side.
	StateBefore State `json:"stateBefore,omitempty"`
	StateAfter  State `json:"stateAfter,omitempty"`

	CPUBefore *float64 `json:"pid1CPUPercentBefore,omitempty"`
	CPUAfter  *float64 `json:"pid1CPUPercentAfter,omitempty"`
	CPUDelta  *float64 `json:"pid1CPUPercentDelta,omitempty"`

	MountUnitsBefore *int `json:"mountUnitsBefore,omitempty"`
	MountUnitsAfter  *int `json:"mountUnitsAfter,omitempty"`

	// PID1MountsBefore/After are PID 1's mount table sizes; their
	// difference also moves with the pod count, so it is not what
	// encapsulation hid.
	PID1MountsBefore *int `json:"pid1MountsBefore,omitempty"`
	PID1MountsAfter  *int `json:"pid1MountsAfter,omitempty"`
	// HiddenBefore/After are the mounts kubelet sees and PID 1 does not,
	// each measured within one side's window (Mounts.Hidden): the mounts
	// kept out of systemd's sight, independent of how the pod count moved
	// between the two measurements.
	HiddenBefore *int `json:"hiddenMountsBefore,omitempty"`
	HiddenAfter  *int `json:"hiddenMountsAfter,omitempty"`
}

// ClusterComparison is the cluster line. Averages and totals are over the
// nodes in Both whose figure is known on both sides, so a node that joined,
// left or could not be measured does not move them.
type ClusterComparison struct {
	Both int `json:"both"`
	New  int `json:"new"`
	Gone int `json:"gone"`
	// CPUNodes is how many nodes the CPU averages are over.
	CPUNodes     int      `json:"cpuNodes"`
	AvgCPUBefore *float64 `json:"avgPID1CPUPercentBefore,omitempty"`
	AvgCPUAfter  *float64 `json:"avgPID1CPUPercentAfter,omitempty"`
	AvgCPUDelta  *float64 `json:"avgPID1CPUPercentDelta,omitempty"`
	// UnitNodes is how many nodes the mount unit totals are over.
	UnitNodes        int  `json:"unitNodes"`
	MountUnitsBefore *int `json:"mountUnitsBefore,omitempty"`
	MountUnitsAfter  *int `json:"mountUnitsAfter,omitempty"`
}

// Comparison is a baseline set against a current measurement.
type Comparison struct {
	// Nodes holds every node of either side, by name.
	Nodes   []NodeComparison  `json:"nodes"`
	Cluster ClusterComparison `json:"cluster"`
}

func knownFloat(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

func knownInt(v int) *int {
	if v < 0 {
		return nil
	}
	return &v
}

// cpuOf gives a node's CPU figure only when it was Measured.
func cpuOf(m *NodeMeasurement) *float64 {
	if m == nil || m.State != Measured {
		return nil
	}
	return knownFloat(m.PID1CPUPercent)
}

// Compare joins before and after by node name. Every node of either side
// is in the result, ordered by name; a name repeated within one report
// counts once, its first entry. Either report may be nil (no nodes).
func Compare(before, after *MeasureReport) Comparison {
	index := func(r *MeasureReport) map[string]*NodeMeasurement {
		out := map[string]*NodeMeasurement{}
		if r == nil {
			return out
		}
		for i := range r.Nodes {
			if _, dup := out[r.Nodes[i].Node]; !dup {
				out[r.Nodes[i].Node] = &r.Nodes[i]
			}
		}
		return out
	}
	b, a := index(before), index(after)
	names := make([]string, 0, len(b)+len(a))
	for n := range b {
		names = append(names, n)
	}
	for n := range a {
		if _, ok := b[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)

	c := Comparison{Nodes: make([]NodeComparison, 0, len(names))}
	var cpuB, cpuA float64
	var unitsB, unitsA int
	for _, name := range names {
		nb, na := b[name], a[name]
		nc := NodeComparison{Node: name, Presence: Both}
		switch {
		case na == nil:
			nc.Presence = Gone
			c.Cluster.Gone++
		case nb == nil:
			nc.Presence = New
			c.Cluster.New++
		default:
			c.Cluster.Both++
		}
		if nb != nil {
			nc.StateBefore = nb.State
			nc.MountUnitsBefore = knownInt(nb.MountUnits)
			nc.PID1MountsBefore = knownInt(nb.Mounts.PID1)
			nc.HiddenBefore = knownInt(nb.Mounts.Hidden)
		}
		if na != nil {
			nc.StateAfter = na.State
			nc.MountUnitsAfter = knownInt(na.MountUnits)
			nc.PID1MountsAfter = knownInt(na.Mounts.PID1)
			nc.HiddenAfter = knownInt(na.Mounts.Hidden)
		}
		nc.CPUBefore, nc.CPUAfter = cpuOf(nb), cpuOf(na)
		if nc.CPUBefore != nil && nc.CPUAfter != nil {
			d := *nc.CPUAfter - *nc.CPUBefore
			nc.CPUDelta = &d
			c.Cluster.CPUNodes++
			cpuB += *nc.CPUBefore
			cpuA += *nc.CPUAfter
		}
		if nc.MountUnitsBefore != nil && nc.MountUnitsAfter != nil {
			c.Cluster.UnitNodes++
			unitsB += *nc.MountUnitsBefore
			unitsA += *nc.MountUnitsAfter
		}
		c.Nodes = append(c.Nodes, nc)
	}
	if n := float64(c.Cluster.CPUNodes); n > 0 {
		avgB, avgA := cpuB/n, cpuA/n
		d := avgA - avgB
		c.Cluster.AvgCPUBefore, c.Cluster.AvgCPUAfter, c.Cluster.AvgCPUDelta = &avgB, &avgA, &d
	}
	if c.Cluster.UnitNodes > 0 {
		c.Cluster.MountUnitsBefore, c.Cluster.MountUnitsAfter = &unitsB, &unitsA
	}
	return c
}

// maxBaselineSize bounds what ReadBaseline reads: a node's entry is some
// 400 bytes of JSON, so this is far above any cluster.
const maxBaselineSize = 64 << 20

// WrongKindError is a document that is not a MeasureReport this version
// reads (a VerifyReport, a later apiVersion, ...).
type WrongKindError struct {
	APIVersion, Kind string
}

func (e *WrongKindError) Error() string {
	return fmt.Sprintf("the baseline is apiVersion %q kind %q, want apiVersion %q kind %q (the output of measure -o json or -o yaml)",
		e.APIVersion, e.Kind, ReportAPIVersion, ReportKind)
}

// ReadBaseline reads a MeasureReport written as JSON or YAML. Fields it does
// not know are ignored (a later release within the same apiVersion only adds
// fields); a wrong apiVersion or kind is a *WrongKindError, and a node named
// twice is refused, since Compare could not tell which entry is meant.
func ReadBaseline(r io.Reader) (*MeasureReport, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBaselineSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the baseline: %w", err)
	}
	if len(data) > maxBaselineSize {
		return nil, fmt.Errorf("the baseline is larger than %d bytes", maxBaselineSize)
	}
	// Kind first, so a VerifyReport or any other document is named as
	// such rather than failing on a field type.
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("the baseline is neither JSON nor YAML: %w", err)
	}
	if head.APIVersion != ReportAPIVersion || head.Kind != ReportKind {
		return nil, &WrongKindError{APIVersion: head.APIVersion, Kind: head.Kind}
	}
	var rep MeasureReport
	if err := yaml.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("the baseline is not a valid MeasureReport: %w", err)
	}
	seen := make(map[string]bool, len(rep.Nodes))
	for _, n := range rep.Nodes {
		if n.Node == "" {
			return nil, errors.New("the baseline has a node without a name")
		}
		if seen[n.Node] {
			return nil, fmt.Errorf("the baseline names node %q twice", n.Node)
		}
		seen[n.Node] = true
	}
	if rep.Nodes == nil {
		rep.Nodes = []NodeMeasurement{}
	}
	return &rep, nil
}
