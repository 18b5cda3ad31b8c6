package wrap

import (
	"errors"
	"fmt"
	"strings"
)

// ReportHeader is the first line of a version 1 unit report.
const ReportHeader = "kubens-unitcat v1"

// MaxReportSize is the largest report accepted: the kubelet keeps at most
// 4096 bytes of a termination message, the last ones, and the probe
// shares them between all the units it reads.
const MaxReportSize = 4096

// The status of one unit in a report.
const (
	// StatusOK: systemctl cat answered; the lines that matter follow.
	StatusOK = "ok"
	// StatusMissing: systemd has no file for the unit.
	StatusMissing = "missing"
	// StatusInvalid: the probe refused the name (it never ran systemctl).
	StatusInvalid = "invalid"
	// StatusUnknown: PID 1 is not systemd, or the node has no systemctl.
	StatusUnknown = "unknown"
	// StatusFailed: systemctl cat failed for another reason; its first
	// line of errors follows.
	StatusFailed = "failed"
	// StatusTruncated: the unit's lines did not fit in the report.
	StatusTruncated = "truncated"
)

var (
	// ErrNotReport marks input that is not a unit report at all (for
	// example a log tail, or an empty termination message).
	ErrNotReport = errors.New("not a kubens unit report")
	// ErrTruncated marks a report, or one unit's part of it, that did not
	// fit in the termination message. Reading the unit cannot work then;
	// giving its command explicitly can (the caller names its flag).
	ErrTruncated = errors.New("the unit report was truncated: the unit files do not fit in the 4096 bytes of a termination message; give the command explicitly instead")
	// ErrUnitNotFound marks a unit the node has no file for.
	ErrUnitNotFound = errors.New("no such unit on the node")
	// ErrNameRefused marks a unit name the probe refused to look up.
	ErrNameRefused = errors.New("the probe refused the unit name")
	// ErrNoSystemd marks a node where systemd could not be asked: PID 1 is
	// not systemd or there is no systemctl.
	ErrNoSystemd = errors.New("cannot ask systemd on the node: PID 1 is not systemd or there is no systemctl")
	// ErrSystemctlFailed marks a systemctl cat that failed for a reason
	// other than a missing unit.
	ErrSystemctlFailed = errors.New("systemctl cat failed")
)

// UnitRead is what one node said about one unit.
type UnitRead struct {
	// Status is one of the Status words.
	Status string
	// Unit is the parsed systemctl cat output, for StatusOK.
	Unit UnitFile
	// Err says why the unit cannot be wrapped from what was read: set for
	// every status but StatusOK, and for StatusOK when ParseSystemctlCat
	// failed (ErrNoExecStart, ...).
	Err error
}

// ParseReport parses a report of the probe strictly. It accepts exactly
// the v1 grammar:
//
//	report  = "kubens-unitcat v1" LF *unit "end" [LF]
//	unit    = "unit " (NAME / "-") LF "status " WORD LF *content
//	content = "| " TEXT LF
//
// with one unit per name of units, in that order: "-" and the status
// invalid for a name the probe refused, content only for ok (the filtered
// systemctl cat lines) and failed (one line of systemctl's errors). A
// report without its end line was cut short (ErrTruncated), and so was one
// of MaxReportSize bytes without its header, since the kubelet keeps the
// last bytes of a longer one.
func ParseReport(data []byte, units []string) (map[string]UnitRead, error) {
	s := string(data)
	switch {
	case len(s) > MaxReportSize:
		return nil, fmt.Errorf("report is %d bytes, more than the %d a termination message holds", len(s), MaxReportSize)
	case !strings.HasPrefix(s, ReportHeader+"\n"):
		if len(s) == MaxReportSize && strings.HasSuffix(s, "\nend\n") {
			return nil, ErrTruncated
		}
		return nil, fmt.Errorf("%w: it does not start with %q", ErrNotReport, ReportHeader)
	}
	body, ok := strings.CutSuffix(s[len(ReportHeader)+1:], "end\n")
	if !ok {
		body, ok = strings.CutSuffix(body, "end")
	}
	if !ok || (body != "" && !strings.HasSuffix(body, "\n")) {
		return nil, ErrTruncated
	}
	lines := strings.Split(body, "\n")
	lines = lines[:len(lines)-1] // body ends in LF
	out := make(map[string]UnitRead, len(units))
	i := 0
	for n, want := range units {
		if i+1 >= len(lines) {
			return nil, fmt.Errorf("report has %d unit(s), want %d", n, len(units))
		}
		name, ok := strings.CutPrefix(lines[i], "unit ")
		if !ok {
			return nil, fmt.Errorf("line %d: want the unit line of %s, got %.40q", i+2, want, lines[i])
		}
		if name != want && name != "-" {
			return nil, fmt.Errorf("line %d: unit %.60q where %s was asked: the units are not in the order asked", i+2, name, want)
		}
		status, ok := strings.CutPrefix(lines[i+1], "status ")
		if !ok {
			return nil, fmt.Errorf("line %d: want the status of %s, got %.40q", i+3, want, lines[i+1])
		}
		if (name == "-") != (status == StatusInvalid) {
			return nil, fmt.Errorf("line %d: unit %s with status %.20q: only a refused name is \"-\", and it is invalid", i+3, want, status)
		}
		i += 2
		var content []string
		for i < len(lines) && strings.HasPrefix(lines[i], "|") {
			text, ok := strings.CutPrefix(lines[i], "| ")
			if !ok {
				return nil, fmt.Errorf("line %d: content lines start with \"| \"", i+2)
			}
			content = append(content, text)
			i++
		}
		r, err := unitRead(status, content)
		if err != nil {
			return nil, fmt.Errorf("unit %s: %w", want, err)
		}
		out[want] = r
	}
	if i != len(lines) {
		return nil, fmt.Errorf("line %d: %.40q after the last unit asked", i+2, lines[i])
	}
	return out, nil
}

// unitRead turns a unit's status and content lines into its UnitRead.
func unitRead(status string, content []string) (UnitRead, error) {
	r := UnitRead{Status: status}
	switch status {
	case StatusOK:
		text := strings.Join(content, "\n")
		if len(content) > 0 {
			text += "\n"
		}
		r.Unit, r.Err = ParseSystemctlCat(text)
		return r, nil
	case StatusFailed:
		if len(content) > 1 {
			return r, fmt.Errorf("status failed with %d lines, want at most one", len(content))
		}
		r.Err = ErrSystemctlFailed
		if len(content) == 1 && content[0] != "" {
			r.Err = fmt.Errorf("%w: %s", ErrSystemctlFailed, content[0])
		}
		return r, nil
	}
	if len(content) > 0 {
		return r, fmt.Errorf("status %.20q with content lines", status)
	}
	switch status {
	case StatusMissing:
		r.Err = ErrUnitNotFound
	case StatusInvalid:
		r.Err = ErrNameRefused
	case StatusUnknown:
		r.Err = ErrNoSystemd
	case StatusTruncated:
		r.Err = ErrTruncated
	default:
		return r, fmt.Errorf("unknown status %.20q", status)
	}
	return r, nil
}
