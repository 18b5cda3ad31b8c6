package verify

import (
	"reflect"
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
	if !reflect.DeepEqual(got, want) {
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
	f.Add([]byte(wrappedReport().Format()))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The same bytes read as a report on 0 to 3 wrapped units.
		for n := range 4 {
			r, err := ParseReportUnits(data, n)
			if err != nil {
				continue
			}
			if len(data) > MaxReportSize {
				t.Fatalf("accepted %d bytes", len(data))
			}
			if len(r.Wrapped) != n {
				t.Fatalf("n=%d: %d wrapped units", n, len(r.Wrapped))
			}
			again, err := ParseReportUnits([]byte(r.Format()), n)
			if err != nil {
				t.Fatalf("formatted report does not parse: %v", err)
			}
			if !reflect.DeepEqual(again, r) {
				t.Fatalf("round trip changed the report:\n%+v\n%+v", r, again)
			}
			for _, line := range strings.Split(r.Format(), "\n")[1:] {
				if strings.ContainsAny(line, " \t\r$`;|&<>") {
					t.Fatalf("formatted report carries unsafe text: %q", line)
				}
			}
		}
	})
}

// wrappedReport is sampleReport on a probe given three units: one running in
// kubelet's namespace, one not running, one whose namespace was unreadable.
func wrappedReport() *Report {
	r := sampleReport()
	r.Wrapped = []WrappedProc{{PID: 4100, NS: "4026533000"}, {PID: 0, NS: NSNone}, {PID: 4200, NS: NSDenied}}
	return r
}

// TestParseReportUnits: the wrap keys the parser wants follow the number of
// units the probe was given, each exactly once, no more, no fewer.
func TestParseReportUnits(t *testing.T) {
	want := wrappedReport()
	text := want.Format()
	for _, k := range []string{"wrap.0.pid=4100\n", "wrap.0.mnt=4026533000\n", "wrap.1.pid=none\n", "wrap.1.mnt=none\n", "wrap.2.pid=4200\n", "wrap.2.mnt=denied\n"} {
		if !strings.Contains(text, k) {
			t.Fatalf("Format lacks %q:\n%s", k, text)
		}
	}
	got, err := ParseReportUnits([]byte(text), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// No units: no wrap keys, and a nil list (ParseReport is n=0).
	if r, err := ParseReport([]byte(sampleReport().Format())); err != nil || r.Wrapped != nil {
		t.Fatalf("n=0: %+v %v", r, err)
	}

	replace := func(old, new string) string {
		if !strings.Contains(text, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(text, old, new, 1)
	}
	tests := []struct {
		name, in string
		n        int
		wantErr  string
	}{
		{"wrap keys when none were asked", text, 0, `unknown key "wrap.0.pid"`},
		{"fewer units than asked", text, 4, `missing key "wrap.3.pid"`},
		{"one more unit than asked", text, 2, `unknown key "wrap.2.pid"`},
		{"missing mnt", replace("wrap.1.mnt=none\n", ""), 3, `missing key "wrap.1.mnt"`},
		{"duplicate", replace("end\n", "wrap.0.pid=4100\nend\n"), 3, "duplicate key"},
		{"index past n", replace("end\n", "wrap.3.pid=none\nwrap.3.mnt=none\nend\n"), 3, `unknown key "wrap.3.pid"`},
		{"leading zero index", replace("wrap.0.pid=4100", "wrap.00.pid=4100"), 3, "unknown key"},
		{"bad pid", replace("wrap.0.pid=4100", "wrap.0.pid=0"), 3, "PID or none"},
		{"bad mnt", replace("wrap.0.mnt=4026533000", "wrap.0.mnt=host"), 3, "inode number"},
		{"mnt without pid", replace("wrap.0.pid=4100", "wrap.0.pid=none"), 3, "wrap.0.mnt set without a main PID"},
		{"negative n", text, -1, "0 to 32"},
		{"n past the bound", text, MaxWrappedUnits + 1, "0 to 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReportUnits([]byte(tt.in), tt.n)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestReportSizeBound: a report on MaxWrappedUnits units, with every value
// as long as the probe ever writes it, fits the kubelet's 4096 bytes of
// termination message with room to spare.
func TestReportSizeBound(t *testing.T) {
	r := sampleReport()
	long := NSRef("18446744073709551615") // the largest inode number
	r.PID1NS, r.KubeletNS, r.RuntimeNS, r.KubensPin, r.ZTPPin = long, long, long, long, long
	r.KubeletPID, r.RuntimePID = 1<<30, 1<<30
	r.Runtime = "containerd"
	word := strings.Repeat("x", 32) // unit() cuts systemctl's words at 32
	r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = word, word, word, word
	r.KubeletKubensMnt, r.RuntimeKubensMnt, r.NetnsMountPoint = Unknown, Unknown, Unknown
	r.PID1Mounts, r.KubeletMounts = 1<<30, 1<<30
	for range MaxWrappedUnits {
		r.Wrapped = append(r.Wrapped, WrappedProc{PID: 999999999, NS: long}) // the probe's longest PID: 9 digits
	}
	text := r.Format()
	if _, err := ParseReportUnits([]byte(text), MaxWrappedUnits); err != nil {
		t.Fatal(err)
	}
	if len(text) > MaxReportSize*3/4 {
		t.Errorf("a report on %d units can be %d bytes: too close to the %d the kubelet keeps", MaxWrappedUnits, len(text), MaxReportSize)
	}
	t.Logf("largest report: %d bytes", len(text))
}
