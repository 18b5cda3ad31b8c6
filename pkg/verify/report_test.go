package verify

import (
	"strings"
	"testing"
)

// sampleReport is what the probe writes on an encapsulated CRI-O node.
func sampleReport() *Report {
	return &Report{
		PID1NS: "4026531841", KubeletPID: 2345, KubeletNS: "4026533000",
		Runtime: "crio", RuntimePID: 1800, RuntimeNS: "4026533000",
		KubensPin: "4026533000", ZTPPin: NSNone,
		KubeletKubensMnt: Yes, RuntimeKubensMnt: Yes,
		KubensEnabled: "enabled", KubensActive: "active",
		ZTPEnabled: "not-found", ZTPActive: "inactive",
		NetnsMountPoint: Yes, PID1Mounts: 60, KubeletMounts: 460,
	}
}

func TestParseReportRoundTrip(t *testing.T) {
	want := sampleReport()
	got, err := ParseReport([]byte(want.Format()))
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// The trailing newline is optional.
	if _, err := ParseReport([]byte(strings.TrimSuffix(want.Format(), "\n"))); err != nil {
		t.Fatal(err)
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
		{"empty", "", "not a kubens probe report"},
		{"log tail", "sh: readlink: not found\n", "not a kubens probe report"},
		{"future version", strings.Replace(good, "v1", "v2", 1), "unsupported report version"},
		{"no end", strings.TrimSuffix(good, "end\n"), "truncated"},
		{"header only", ReportHeader + "\n", "truncated"},
		{"too big", good + strings.Repeat("x", MaxReportSize), "more than"},
		{"unknown key", replace("end\n", "extra=1\nend\n"), "unknown key"},
		{"duplicate key", replace("end\n", "pid1.mnt=5\nend\n"), "duplicate key"},
		{"missing key", replace("pin.ztp=none\n", ""), "missing key"},
		{"no equals", replace("pin.ztp=none", "pin.ztp"), "want key=value"},
		{"empty value", replace("pin.ztp=none", "pin.ztp="), "empty value"},
		{"space in value", replace("pin.ztp=none", "pin.ztp=no ne"), "outside"},
		{"shell metachar", replace("unit.kubens.enabled=enabled", "unit.kubens.enabled=$(id)"), "outside"},
		{"control char", replace("pin.ztp=none", "pin.ztp=\x1b[2J"), "outside"},
		{"long value", replace("pin.ztp=none", "pin.ztp="+strings.Repeat("1", 33)), "longer"},
		{"crlf", strings.ReplaceAll(good, "\n", "\r\n"), "unsupported report version"},
		{"blank line", replace("end\n", "\nend\n"), "want key=value"},
		{"bad ns", replace("pin.ztp=none", "pin.ztp=abc"), "inode number"},
		{"leading zero ns", replace("pin.ztp=none", "pin.ztp=0123"), "inode number"},
		{"bad pid", replace("kubelet.pid=2345", "kubelet.pid=-1"), "PID"},
		{"bad runtime", replace("runtime.name=crio", "runtime.name=docker"), "crio, containerd or none"},
		{"bad tri", replace("netns.mountpoint=yes", "netns.mountpoint=maybe"), "yes, no or unknown"},
		{"bad unit word", replace("unit.kubens.enabled=enabled", "unit.kubens.enabled=Enabled"), "systemctl state"},
		{"bad count", replace("pid1.mounts=60", "pid1.mounts=-5"), "count"},
		{"ns without process", replace("kubelet.pid=2345", "kubelet.pid=none"), "without a kubelet"},
		{"runtime disagree", replace("runtime.name=crio", "runtime.name=none"), "disagree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzParseReport: the parser never panics, never accepts more than it
// should, and whatever it accepts survives a round trip unchanged.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(sampleReport().Format()))
	f.Add([]byte(ReportHeader + "\nend\n"))
	f.Add([]byte("kubens-probe v2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if len(data) > MaxReportSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		again, err := ParseReport([]byte(r.Format()))
		if err != nil {
			t.Fatalf("formatted report does not parse: %v", err)
		}
		if *again != *r {
			t.Fatalf("round trip changed the report:\n%+v\n%+v", r, again)
		}
		for _, line := range strings.Split(r.Format(), "\n")[1:] {
			if strings.ContainsAny(line, " \t\r$`;|&<>") {
				t.Fatalf("formatted report carries unsafe text: %q", line)
			}
		}
	})
}
