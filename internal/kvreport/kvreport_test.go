package kvreport

import (
	"errors"
	"strings"
	"testing"
)

var errNot = errors.New("not a report")

func TestParse(t *testing.T) {
	g := Grammar{Header: "kubens-x v1", Keys: []string{"a", "b"}, Ordered: true, MaxSize: 100, NotReport: errNot}
	vals, err := g.Parse([]byte("kubens-x v1\na=1\nb=two\nend\n"))
	if err != nil || vals["a"] != "1" || vals["b"] != "two" {
		t.Fatalf("%v %v", vals, err)
	}
	for _, tt := range []struct{ in, want string }{
		{"kubens-x v2\nend", `unsupported report version "kubens-x v2"`},
		{"hello\nend", "not a report"},
		{"kubens-x v1\na=1\nb=2", "truncated"},
		{"kubens-x v1\nb=2\na=1\nend", `key "b" out of order, want "a"`},
		{"kubens-x v1\na=1\na=1\nend", "duplicate key"},
		{"kubens-x v1\na=1\nend", `missing key "b"`},
		{"kubens-x v1\na=1\nc=2\nend", `unknown key "c"`},
		{"kubens-x v1\na=1 2\nb=2\nend", "outside [A-Za-z0-9._:-]"},
		{"kubens-x v1\na=\nb=2\nend", "empty value"},
		{"kubens-x v1\na=" + strings.Repeat("9", 33) + "\nb=2\nend", "longer than 32"},
		{"kubens-x v1\n" + strings.Repeat("x", 100) + "\nend", "more than the 100 allowed"},
	} {
		_, err := g.Parse([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
	g.Ordered = false
	if _, err := g.Parse([]byte("kubens-x v1\nb=2\na=1\nend")); err != nil {
		t.Errorf("unordered grammar refused keys out of order: %v", err)
	}
}
