// Package kvreport reads the small reports the per-node probes (verify's,
// measure's) hand back as a container's termination message:
//
//	report = HEADER LF *(key "=" value LF) "end" [LF]
//
// read strictly, since the text comes from a node: every known key exactly
// once, no other key, values of 1 to MaxValueLen characters from
// [A-Za-z0-9._:-]. What each value means is the caller's.
package kvreport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxValueLen bounds every value; the longest legitimate one is a 20-digit
// number.
const MaxValueLen = 32

// Grammar is one report format.
type Grammar struct {
	// Header is the exact first line, e.g. "kubens-probe v1"; its first
	// word names the family, so another version of it gets a clear error.
	Header string
	// Keys are the known keys, in the order the probe writes them.
	Keys []string
	// Ordered refuses keys out of that order.
	Ordered bool
	// MaxSize bounds the whole report (the kubelet keeps 4096 bytes of a
	// termination message).
	MaxSize int
	// NotReport is returned for input that is not such a report at all
	// (for example a log tail that FallbackToLogsOnError put there).
	NotReport error
}

// Parse checks data against the grammar and returns the values by key.
func (g Grammar) Parse(data []byte) (map[string]string, error) {
	if len(data) > g.MaxSize {
		return nil, fmt.Errorf("report is %d bytes, more than the %d allowed", len(data), g.MaxSize)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != g.Header {
		family, _, _ := strings.Cut(g.Header, " ")
		if strings.HasPrefix(lines[0], family+" ") {
			return nil, fmt.Errorf("unsupported report version \"%s\": this oc-kubens reads %q", Printable(lines[0]), g.Header)
		}
		return nil, g.NotReport
	}
	if len(lines) < 2 || lines[len(lines)-1] != "end" {
		return nil, errors.New("report is truncated: no end line")
	}
	known := make(map[string]bool, len(g.Keys))
	for _, k := range g.Keys {
		known[k] = true
	}
	vals := make(map[string]string, len(g.Keys))
	body := lines[1 : len(lines)-1]
	for i, line := range body {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key=value, got \"%s\"", i+2, Printable(line))
		}
		if !known[k] {
			return nil, fmt.Errorf("line %d: unknown key \"%s\"", i+2, Printable(k))
		}
		if _, dup := vals[k]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", i+2, k)
		}
		if err := CheckValue(v); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", i+2, k, err)
		}
		vals[k] = v
	}
	for _, k := range g.Keys {
		if _, ok := vals[k]; !ok {
			return nil, fmt.Errorf("missing key %q", k)
		}
	}
	if g.Ordered {
		for i, line := range body {
			if k, _, _ := strings.Cut(line, "="); k != g.Keys[i] {
				return nil, fmt.Errorf("line %d: key %q out of order, want %q", i+2, k, g.Keys[i])
			}
		}
	}
	return vals, nil
}

// CheckValue enforces the value alphabet and length.
func CheckValue(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	if len(v) > MaxValueLen {
		return fmt.Errorf("value longer than %d characters", MaxValueLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return fmt.Errorf("value has a character outside [A-Za-z0-9._:-]: \"%s\"", Printable(v))
		}
	}
	return nil
}

// Printable shortens untrusted text and escapes anything but printable
// ASCII, for error messages.
func Printable(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
