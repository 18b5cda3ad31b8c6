package control

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

// runOnTerminal runs the binary on a pseudo-terminal (util-linux script),
// typing answer on it.
func runOnTerminal(t *testing.T, answer, kubeconfig string, args ...string) result {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		ci.SkipOrFail(t, "needs script(1) from util-linux for a pseudo-terminal")
	}
	line := fmt.Sprintf("%s %s --kubeconfig %s", pluginBinary(t), strings.Join(args, " "), kubeconfig)
	cmd := exec.Command("script", "-q", "-e", "-c", line, "/dev/null")
	cmd.Stdin = strings.NewReader(answer)
	out, err := cmd.CombinedOutput()
	r := result{stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("on a terminal: oc-kubens %s -> %s", strings.Join(args, " "), r)
	return r
}

// On a terminal enable asks; "n" applies nothing, "y" applies, and the
// wait progress is redrawn in place.
func TestConfirmOnTerminal(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	r := runOnTerminal(t, "n\n", kc, "enable")
	if r.code == 0 || !strings.Contains(r.stdout, "[y/N]") || !strings.Contains(r.stdout, "aborted: nothing was changed") {
		t.Fatalf("answer n: %s", r)
	}
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("answer n created %d MachineConfigs", n)
	}
	r = runOnTerminal(t, "y\n", kc, "enable", "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("answer y: %s", r)
	}
	mustContain(t, "terminal output", r.stdout, "[y/N]", "99-kubens-worker created", "\x1b[2K", "All pools updated")
	if !strings.Contains(r.stdout, "\x1b[2A") {
		t.Errorf("progress was not redrawn in place (no cursor-up):\n%q", r.stdout)
	}
}

// MachineConfigs oc-kubens does not manage: enable notes them, disable
// never deletes them and warns that the unit stays enabled; status shows
// them; the ZTP unit is detected.
func TestOtherEnablersAndZTP(t *testing.T) {
	s := startSim(t, simOptions{})
	kc := s.cp.KubeconfigPath
	ctx := context.Background()
	mk := func(name, role, unit string) {
		t.Helper()
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{mcfgv1.MachineConfigRoleLabelKey: role}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(
				`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"` + unit + `","enabled":true}]}}`)}},
		}
		if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("99-custom-enable-kubens-worker", "worker", "kubens.service")
	mk("01-container-mount-ns-and-kubelet-conf-master", "master", "container-mount-namespace.service")

	r := run(t, kc, "enable", "--yes", "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, "enable", r.stdout,
		"Note: kubens.service is already enabled on pool worker by 99-custom-enable-kubens-worker.",
		"Note: pool master uses the ZTP container-mount-namespace.service")
	st := run(t, kc, "status")
	mustContain(t, "status", st.stdout, "99-custom-enable-kubens-worker,99-kubens-worker", "pool master encapsulates through the ZTP")

	r = run(t, kc, "disable", "--yes", "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, "disable", r.stdout, "WARNING: kubens.service stays enabled on pool worker through 99-custom-enable-kubens-worker")
	if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, "99-custom-enable-kubens-worker", metav1.GetOptions{}); err != nil {
		t.Fatalf("disable touched a MachineConfig it does not manage: %v", err)
	}
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("%d managed MachineConfigs left", n)
	}
	st = run(t, kc, "status", "-o", "json")
	mustContain(t, "status json", st.stdout, `"enabledBy": [
                "99-custom-enable-kubens-worker"
            ]`)
}
