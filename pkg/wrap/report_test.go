package wrap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const goodReport = `kubens-unitcat v1
unit chronyd.service
status ok
| # /usr/lib/systemd/system/chronyd.service
| [Unit]
| [Service]
| ExecStart=/usr/sbin/chronyd \
|     $OPTIONS
| 
| # /etc/systemd/system/chronyd.service.d/10-user.conf
| [Service]
| User=chrony
unit gone.service
status missing
unit -
status invalid
unit odd.service
status failed
| Failed to connect to bus: No such file or directory
unit big.service
status truncated
unit none.service
status ok
| # /etc/systemd/system/none.service
| [Service]
| ExecStart=
end
`

var goodUnits = []string{"chronyd.service", "gone.service", "$(x).service", "odd.service", "big.service", "none.service"}

func TestParseReport(t *testing.T) {
	got, err := ParseReport([]byte(goodReport), goodUnits)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(goodUnits) {
		t.Fatalf("%d units, want %d: %+v", len(got), len(goodUnits), got)
	}
	chronyd := got["chronyd.service"]
	wantChronyd := UnitFile{
		Files:     []string{"/usr/lib/systemd/system/chronyd.service", "/etc/systemd/system/chronyd.service.d/10-user.conf"},
		ExecStart: []string{"/usr/sbin/chronyd      $OPTIONS"},
		User:      "chrony",
	}
	if chronyd.Status != StatusOK || chronyd.Err != nil || !reflect.DeepEqual(chronyd.Unit, wantChronyd) {
		t.Errorf("chronyd: %+v, want %+v", chronyd, wantChronyd)
	}
	for unit, want := range map[string]struct {
		status string
		err    error
	}{
		"gone.service": {StatusMissing, ErrUnitNotFound},
		"$(x).service": {StatusInvalid, ErrNameRefused},
		"odd.service":  {StatusFailed, ErrSystemctlFailed},
		"big.service":  {StatusTruncated, ErrTruncated},
		"none.service": {StatusOK, ErrNoExecStart},
	} {
		r := got[unit]
		if r.Status != want.status || !errors.Is(r.Err, want.err) {
			t.Errorf("%s: status %q, error %v; want %q, %v", unit, r.Status, r.Err, want.status, want.err)
		}
	}
	if msg := got["odd.service"].Err.Error(); !strings.Contains(msg, "Failed to connect to bus") {
		t.Errorf("failed unit: %q does not carry systemctl's message", msg)
	}
	if !strings.Contains(ErrTruncated.Error(), "give the command explicitly") {
		t.Errorf("ErrTruncated does not suggest giving the command: %q", ErrTruncated)
	}

	// The end line may lack its newline; no unit at all is a report too.
	if _, err := ParseReport([]byte(strings.TrimSuffix(goodReport, "\n")), goodUnits); err != nil {
		t.Errorf("without the final newline: %v", err)
	}
	if got, err := ParseReport([]byte("kubens-unitcat v1\nend\n"), nil); err != nil || len(got) != 0 {
		t.Errorf("empty report: %v, %v", got, err)
	}
}

func TestParseReportRejects(t *testing.T) {
	units := []string{"a.service", "b.service"}
	const ok = "kubens-unitcat v1\nunit a.service\nstatus missing\nunit b.service\nstatus unknown\nend\n"
	if _, err := ParseReport([]byte(ok), units); err != nil {
		t.Fatalf("base report: %v", err)
	}
	tail := strings.Repeat("| # padding the kubelet cut off\n", 200)
	cut := tail[len(tail)-(MaxReportSize-len("unit b.service\nstatus unknown\nend\n")):] + "unit b.service\nstatus unknown\nend\n"
	tests := []struct {
		name   string
		report string
		units  []string
		err    error  // a sentinel, or nil for any error
		says   string // part of the message
	}{
		{"empty", "", units, ErrNotReport, ""},
		{"wrong header", strings.Replace(ok, "v1", "v2", 1), units, ErrNotReport, "kubens-unitcat v1"},
		{"log tail", "Error: something failed\n", units, ErrNotReport, ""},
		{"no end", strings.TrimSuffix(ok, "end\n"), units, ErrTruncated, "give the command explicitly"},
		{"cut in a line", strings.TrimSuffix(ok, "nd\n"), units, ErrTruncated, ""},
		{"end inside a content line", "kubens-unitcat v1\nunit a.service\nstatus ok\n| x end\n", units[:1], ErrTruncated, ""},
		{"kubelet kept the tail", cut, units, ErrTruncated, ""},
		{"oversize", "kubens-unitcat v1\n" + strings.Repeat("| x\n", 1100) + "end\n", units, nil, "more than the 4096"},
		{"units out of order", ok, []string{"b.service", "a.service"}, nil, "not in the order asked"},
		{"a unit missing", ok, []string{"a.service", "b.service", "c.service"}, nil, "want 3"},
		{"a unit too many", ok, []string{"a.service"}, nil, "after the last unit"},
		{"status missing", strings.Replace(ok, "status missing\n", "", 1), units, nil, "status"},
		{"unknown status", strings.Replace(ok, "status missing", "status gone", 1), units, nil, "unknown status"},
		{"refused name not invalid", strings.Replace(ok, "unit a.service", "unit -", 1), units, nil, "refused name"},
		{"invalid with a name", strings.Replace(ok, "status missing", "status invalid", 1), units, nil, "refused name"},
		{"content for missing", strings.Replace(ok, "status missing\n", "status missing\n| # /x\n", 1), units, nil, "content"},
		{"content without space", strings.Replace(ok, "status missing\n", "status ok\n|# /x\n", 1), units, nil, `"| "`},
		{"two lines for failed", strings.Replace(ok, "status missing\n", "status failed\n| a\n| b\n", 1), units, nil, "at most one"},
		{"stray line", strings.Replace(ok, "status missing\n", "status missing\nhello\n", 1), units, nil, "unit line"},
		{"CR in structure", strings.Replace(ok, "status missing", "status missing\r", 1), units, nil, "unknown status"},
	}
	for _, tt := range tests {
		got, err := ParseReport([]byte(tt.report), tt.units)
		if err == nil || got != nil || (tt.err != nil && !errors.Is(err, tt.err)) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, %v; want an error (%v) saying %q", tt.name, got, err, tt.err, tt.says)
		}
	}
}

// FuzzParseReport: whatever a termination message holds, the parser does
// not panic, and what it accepts has one known status per unit asked.
func FuzzParseReport(f *testing.F) {
	f.Add(goodReport, strings.Join(goodUnits, "\n"))
	f.Add("kubens-unitcat v1\nunit a.service\nstatus ok\n| # /a\n| [Service]\n| ExecStart=/a \\\nend\n", "a.service")
	f.Add("kubens-unitcat v1\nunit -\nstatus invalid\nend", "a b.service")
	f.Fuzz(func(t *testing.T, report, units string) {
		asked := strings.Split(units, "\n")
		got, err := ParseReport([]byte(report), asked)
		if err != nil {
			return
		}
		known := map[string]bool{StatusOK: true, StatusMissing: true, StatusInvalid: true, StatusUnknown: true, StatusFailed: true, StatusTruncated: true}
		for _, u := range asked {
			r, ok := got[u]
			if !ok || !known[r.Status] || (r.Status != StatusOK && r.Err == nil) {
				t.Fatalf("unit %q: %+v, %v", u, r, ok)
			}
		}
	})
}
