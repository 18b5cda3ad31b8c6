package plugin

import (
	"bytes"
	"errors"
	"testing"
)

// Whatever an error carries, the user sees one printable "error: " line.
func TestReportErrorIsOneLine(t *testing.T) {
	for _, tt := range []struct{ err, want string }{
		{"plain", "error: plain\n"},
		{"a\nb\n\n  c  ", "error: a; b; c\n"},
		{"bad node \x1b[31mred\x1b[0m\rok", `error: bad node \x1b[31mred\x1b[0m\x0dok` + "\n"},
		{"bytes \xff\xfe", `error: bytes \ufffd\ufffd` + "\n"},
		{"error executing jsonpath \"{.x}\": x is not found. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{.x}\n",
			"error: error executing jsonpath \"{.x}\": x is not found.\n"},
	} {
		var b bytes.Buffer
		if code := reportError(&b, errors.New(tt.err), false); code != 1 {
			t.Errorf("%q: exit %d", tt.err, code)
		}
		if b.String() != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.err, b.String(), tt.want)
		}
	}
}
