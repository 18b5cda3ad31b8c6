package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func TestProgressPrinterWarnsAboutStuckNode(t *testing.T) {
	n := mcp.StuckNode{Name: "worker-1", Pool: "worker", Config: "rendered-worker-2", State: "Working",
		Ready: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", For: 12 * time.Minute}
	a := []mcp.PoolProgress{{Pool: "worker", Phase: mcp.PhaseRollout, Total: 2, Stuck: []mcp.StuckNode{n}}}

	var b bytes.Buffer
	p := &progressPrinter{w: &b, last: map[string]string{}}
	p.stuck(n)
	p.update(a)
	want := "Warning: node worker-1 has been NotReady for 12m while updating to rendered-worker-2"
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "`oc describe node worker-1`") ||
		!strings.HasSuffix(lines[1], "NotReady while updating: worker-1") {
		t.Fatalf("got\n%s", b.String())
	}

	// On a terminal the warning replaces the drawn pool lines, which are
	// drawn again below it.
	b.Reset()
	tty := &progressPrinter{w: &b, tty: true, last: map[string]string{}}
	tty.update(a)
	tty.stuck(n)
	tty.update(a)
	got := b.String()
	if !strings.Contains(got, "\x1b[1A\x1b[JWarning: node worker-1") || strings.Count(got, "worker: Updating") != 2 ||
		strings.LastIndex(got, "worker: Updating") < strings.Index(got, "Warning:") {
		t.Fatalf("tty output %q", got)
	}
}

func TestStuckAfterFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  func() error
	}{
		{"wait", func() error { o := &WaitOptions{Timeout: time.Minute, StuckAfter: -time.Second}; return o.Validate() }},
		{"enable", func() error {
			o := &EnableOptions{StuckAfter: -time.Second}
			o.Timeout = time.Minute
			return o.Validate()
		}},
		{"disable", func() error {
			o := &DisableOptions{StuckAfter: -time.Second}
			o.Timeout = time.Minute
			return o.Validate()
		}},
	} {
		if err := tc.cmd(); err == nil || !strings.Contains(err.Error(), "--stuck-after must not be negative") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, c := range []string{"wait", "enable", "disable"} {
		cmd := NewCmdWait(nil, genericiooptions.NewTestIOStreamsDiscard())
		switch c {
		case "enable":
			cmd = NewCmdEnable(nil, genericiooptions.NewTestIOStreamsDiscard())
		case "disable":
			cmd = NewCmdDisable(nil, genericiooptions.NewTestIOStreamsDiscard())
		}
		f := cmd.Flags().Lookup("stuck-after")
		if f == nil || f.DefValue != "10m0s" {
			t.Errorf("%s: --stuck-after %+v", c, f)
		}
	}
}
