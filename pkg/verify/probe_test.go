package verify

import (
	"os/exec"
	"testing"
)

// TestProbeScriptRunsHere runs the real probe, unprivileged, with every
// shell at hand: whatever it can or cannot read on this machine, it must
// write a report the strict parser accepts. The run against real
// namespaces, as root, is in test/e2e/verify.
func TestProbeScriptRunsHere(t *testing.T) {
	shells := [][]string{{"sh"}, {"busybox", "sh"}, {"dash"}, {"bash", "--posix"}}
	ran := 0
	for _, sh := range shells {
		if _, err := exec.LookPath(sh[0]); err != nil {
			continue
		}
		ran++
		out, err := exec.Command(sh[0], append(sh[1:], "-c", ProbeScript)...).Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		if _, err := ParseReport(out); err != nil {
			t.Errorf("%v: %v\n%s", sh, err, out)
		}
		if len(out) > 1024 {
			t.Errorf("%v: report is %d bytes; keep it far below the 4096-byte termination message limit", sh, len(out))
		}
	}
	if ran == 0 {
		t.Skip("no POSIX shell found")
	}
}
