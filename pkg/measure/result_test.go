package measure

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestFromReport(t *testing.T) {
	m := FromReport("worker-0", sampleReport(), 10*time.Second)
	if m.State != Measured || m.Reason != "" {
		t.Fatalf("state %s(%s): %s", m.State, m.Reason, m.Message)
	}
	// 49 ticks at 100 Hz over 10.02 s.
	if want := 100 * 0.49 / 10.02; math.Abs(m.PID1CPUPercent-want) > 1e-9 {
		t.Errorf("CPU %v, want %v", m.PID1CPUPercent, want)
	}
	if want := 6 / 10.02; math.Abs(m.ChurnPerSecond-want) > 1e-9 {
		t.Errorf("churn %v/s, want %v", m.ChurnPerSecond, want)
	}
	if m.Mounts != (Mounts{PID1: 61, Kubelet: 415, Hidden: 354}) || m.MountUnits != 43 || m.Pods != 38 || m.PID1Comm != "systemd" || m.ClockTickAssumed {
		t.Errorf("got %+v", m)
	}

	tests := []struct {
		name   string
		change func(*Report)
		reason string
	}{
		{"ticks unreadable", func(r *Report) { r.PID1TicksEnd = -1 }, ReasonCPUUnreadable},
		{"no clock", func(r *Report) { r.ElapsedMS = -1 }, ReasonCPUUnreadable},
		{"zero elapsed", func(r *Report) { r.ElapsedMS = 0 }, ReasonCPUUnreadable},
		{"PID 1 restarted", func(r *Report) { r.PID1TicksEnd = 3 }, ReasonPID1Restarted},
	}
	for _, tt := range tests {
		r := sampleReport()
		tt.change(r)
		m := FromReport("n", r, 10*time.Second)
		if m.State != StateUnknown || m.Reason != tt.reason || m.Message == "" || m.PID1CPUPercent != -1 {
			t.Errorf("%s: %s(%s) %q cpu %v", tt.name, m.State, m.Reason, m.Message, m.PID1CPUPercent)
		}
		// The rest is still reported.
		if m.Mounts.PID1 != 61 || m.Pods != 38 {
			t.Errorf("%s: lost the other figures: %+v", tt.name, m)
		}
	}

	// Unknown mounts stay unknown; kubelet in PID 1's namespace hides none.
	r := sampleReport()
	r.KubeletMountsEnd = -1
	r.ClkTckFromNode = false
	if m := FromReport("n", r, time.Second); m.Mounts.Hidden != -1 || m.Mounts.Kubelet != -1 || !m.ClockTickAssumed {
		t.Errorf("unknown kubelet mounts: %+v", m)
	}
	r.KubeletMountsEnd = 60
	if m := FromReport("n", r, time.Second); m.Mounts.Hidden != 0 {
		t.Errorf("kubelet seeing fewer mounts: hidden %d, want 0", m.Mounts.Hidden)
	}
}

func TestMeasureReport(t *testing.T) {
	a := FromReport("a", sampleReport(), 10*time.Second)
	r2 := sampleReport()
	r2.PID1TicksEnd = r2.PID1TicksStart + 1002 // 100% of a core over 10.02 s
	r2.MountUnits = -1
	b := FromReport("b", r2, 10*time.Second)
	c := Unmeasured("c", "Timeout", "the probe pod is still Pending")
	rep := NewMeasureReport(10*time.Second, []NodeMeasurement{a, b, c})
	s := rep.Summary
	if s.Total != 3 || s.Measured != 2 || s.Unknown != 1 {
		t.Errorf("counts %+v", s)
	}
	if want := (a.PID1CPUPercent + 100) / 2; math.Abs(s.AvgPID1CPUPercent-want) > 1e-9 || math.Abs(s.MaxPID1CPUPercent-100) > 1e-9 {
		t.Errorf("avg %v max %v, want %v and 100", s.AvgPID1CPUPercent, s.MaxPID1CPUPercent, want)
	}
	if s.MountUnits != 43 || s.Pods != 76 || s.PID1Mounts != 122 || s.HiddenMounts != 708 {
		t.Errorf("totals %+v", s)
	}

	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"apiVersion":"oc-kubens.io/v1alpha1"`, `"kind":"MeasureReport"`, `"duration":"10s"`,
		`"pid1CPUPercent":-1`, `"reason":"Timeout"`, `"mounts":{"pid1":61,"kubelet":415,"hidden":354}`, `"avgPID1CPUPercent":`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}

	empty := NewMeasureReport(time.Second, nil)
	if js, _ := json.Marshal(empty); !strings.Contains(string(js), `"nodes":[]`) || empty.Summary.AvgPID1CPUPercent != -1 || empty.Summary.Pods != -1 {
		t.Errorf("empty report: %s", js)
	}
}
