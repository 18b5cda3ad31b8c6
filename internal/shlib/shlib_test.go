package shlib

import (
	"strings"
	"testing"
)

func TestInclude(t *testing.T) {
	got := Include("a=1\n# @include pidof_comm (why)\nb=$(pidof_comm kubelet)\n")
	if !strings.HasPrefix(got, "a=1\n# pidof_comm prints") || !strings.Contains(got, "pidof_comm() {") ||
		!strings.HasSuffix(got, "}\nb=$(pidof_comm kubelet)\n") || strings.Contains(got, "@include") {
		t.Fatalf("Include:\n%s", got)
	}
	if s := "no includes here\n"; Include(s) != s {
		t.Fatal("a script without includes changed")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown function did not panic")
		}
	}()
	Include("# @include nosuch\n")
}
