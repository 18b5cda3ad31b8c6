package measure

import (
	"errors"
	"strings"
	"testing"
)

// sampleReport is what the probe writes on an RHCOS worker over 10 s.
func sampleReport() *Report {
	return &Report{
		Window: 10, PID1Comm: "systemd", PID1TicksStart: 1843211, PID1TicksEnd: 1843260,
		ElapsedMS: 10020, ClkTck: 100, ClkTckFromNode: true,
		PID1MountsStart: 61, PID1MountsEnd: 61, KubeletPID: 2345,
		KubeletMountsStart: 412, KubeletMountsEnd: 415, MountUnits: 43,
		ChurnChanges: 6, ChurnSamples: 49, Pods: 38,
	}
}

func TestParseReportRoundTrip(t *testing.T) {
	for _, want := range []*Report{
		sampleReport(),
		// Everything the probe may not know.
		{Window: 1, PID1Comm: "unknown", PID1TicksStart: -1, PID1TicksEnd: -1, ElapsedMS: -1,
			ClkTck: 100, PID1MountsStart: -1, PID1MountsEnd: -1, KubeletMountsStart: -1,
			KubeletMountsEnd: -1, MountUnits: -1, ChurnChanges: -1, ChurnSamples: -1, Pods: -1},
	} {
		got, err := ParseReport([]byte(want.Format()))
		if err != nil {
			t.Fatalf("%v\n%s", err, want.Format())
		}
		if *got != *want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	if _, err := ParseReport([]byte(strings.TrimSuffix(sampleReport().Format(), "\n"))); err != nil {
		t.Fatalf("the trailing newline is optional: %v", err)
	}
}

func TestParseReportRejects(t *testing.T) {
	good := sampleReport().Format()
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "not a kubens measure report"},
		{"log tail", "sh: sort: not found\n", "not a kubens measure report"},
		{"verify report", "kubens-probe v1\npid1.mnt=1\nend\n", "not a kubens measure report"},
		{"future version", strings.Replace(good, "v1", "v2", 1), "unsupported report version"},
		{"no end", strings.TrimSuffix(good, "end\n"), "truncated"},
		{"cut short", good[:len(good)/2], "truncated"},
		{"header only", ReportHeader + "\n", "truncated"},
		{"too big", good + strings.Repeat("x", MaxReportSize), "more than"},
		{"unknown key", replace("end\n", "extra=1\nend\n"), "unknown key"},
		{"duplicate key", replace("end\n", "pods=3\nend\n"), "duplicate key"},
		{"missing key", replace("pods=38\n", ""), "missing key"},
		{"no equals", replace("pods=38", "pods"), "want key=value"},
		{"empty value", replace("pods=38", "pods="), "empty value"},
		{"space in value", replace("pid1.comm=systemd", "pid1.comm=my init"), "outside"},
		{"shell metachar", replace("pid1.comm=systemd", "pid1.comm=$(id)"), "outside"},
		{"control char", replace("pods=38", "pods=\x1b[2J"), "outside"},
		{"long value", replace("pods=38", "pods="+strings.Repeat("1", 33)), "longer"},
		{"crlf", strings.ReplaceAll(good, "\n", "\r\n"), "unsupported report version"},
		{"blank line", replace("end\n", "\nend\n"), "want key=value"},
		{"window zero", replace("window=10", "window=0"), "1 to 3600"},
		{"window big", replace("window=10", "window=3601"), "1 to 3600"},
		{"negative count", replace("pods=38", "pods=-1"), "count"},
		{"leading zero", replace("pods=38", "pods=038"), "count"},
		{"minus zero", replace("pods=38", "pods=-0"), "count"},
		{"huge count", replace("pods=38", "pods=99999999999"), "count"},
		{"bad ticks", replace("pid1.ticks.end=1843260", "pid1.ticks.end=12a"), "tick count"},
		{"bad elapsed", replace("elapsed.ms=10020", "elapsed.ms=1.5"), "milliseconds"},
		{"clk zero", replace("clk.tck=100", "clk.tck=0"), "clock tick"},
		{"clk unknown", replace("clk.tck=100", "clk.tck=unknown"), "clock tick"},
		{"bad clk source", replace("clk.source=node", "clk.source=guess"), "node or default"},
		{"default clk not 100", strings.Replace(replace("clk.source=node", "clk.source=default"), "clk.tck=100", "clk.tck=250", 1), "other than 100"},
		{"out of order", replace("window=10\npid1.comm=systemd", "pid1.comm=systemd\nwindow=10"), "out of order"},
		{"bad pid", replace("kubelet.pid=2345", "kubelet.pid=0"), "PID"},
		{"mounts without kubelet", replace("kubelet.pid=2345", "kubelet.pid=none"), "without a kubelet"},
		{"churn half unknown", replace("churn.changes=6", "churn.changes=unknown"), "disagree"},
		{"zero samples", replace("churn.samples=49", "churn.samples=0"), "is 0"},
		{"changes from one sample", replace("churn.samples=49", "churn.samples=1"), "second snapshot"},
		{"units without systemd", replace("pid1.comm=systemd", "pid1.comm=init"), "not systemd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := ParseReport([]byte("hello")); !errors.Is(err, ErrNotReport) {
		t.Fatalf("a non-report gives %v, want ErrNotReport", err)
	}
}

// FuzzParseReport: the parser never panics, never accepts more than it
// should, and whatever it accepts formats back to the very same text
// (modulo the optional final newline) and parses to the same report.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(sampleReport().Format()))
	f.Add([]byte(ReportHeader + "\nend\n"))
	f.Add([]byte("kubens-measure v2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if len(data) > MaxReportSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		out := r.Format()
		if out != strings.TrimSuffix(string(data), "\n")+"\n" {
			t.Fatalf("accepted a report that formats differently:\n in %q\nout %q", data, out)
		}
		again, err := ParseReport([]byte(out))
		if err != nil {
			t.Fatalf("formatted report does not parse: %v", err)
		}
		if *again != *r {
			t.Fatalf("round trip changed the report:\n%+v\n%+v", r, again)
		}
	})
}
