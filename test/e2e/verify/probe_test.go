package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// TestProbeScriptRealNamespaces runs the real probe with a bare busybox sh
// against real Linux namespaces: a private PID+mount namespace stands for a
// node, copies of sleep named kubelet and containerd stand for the daemons,
// and kubens.service's recipe pins their namespace at /run/kubens/mnt.
func TestProbeScriptRealNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		ci.SkipOrFail(t, "busybox not installed (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	for _, name := range []string{"kubelet", "containerd", "containerd-shim"} {
		data, err := os.ReadFile("/bin/sleep")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe := filepath.Join(dir, "probe.sh")
	if err := os.WriteFile(probe, []byte(vfy.ProbeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	// setup runs as the node's PID 1 child, in the node's mount namespace.
	const pin = `mkdir -p /run/kubens && mount -t tmpfs tmpfs /run/kubens && mount --make-unbindable /run/kubens
touch /run/kubens/mnt && unshare --mount=/run/kubens/mnt --propagation slave mount --make-rshared /
`
	const inKubens = `nsenter --mount=/run/kubens/mnt env KUBENSMNT=/run/kubens/mnt `
	tests := []struct {
		name   string
		setup  string
		state  vfy.State
		mech   vfy.Mechanism
		hidden bool
	}{
		{"plain", `D/kubelet 60 & D/containerd 60 & D/containerd-shim 60 &`, vfy.NotEncapsulated, "", false},
		{"encapsulated", pin + inKubens + `sh -c 'mount -t tmpfs c /mnt; mkdir /mnt/a; mount -t tmpfs d /mnt/a; exec D/kubelet 60' & ` + inKubens + `D/containerd 60 &`, vfy.Encapsulated, vfy.MechanismKubens, true},
		{"split", pin + inKubens + `D/kubelet 60 & D/containerd 60 &`, vfy.Split, vfy.MechanismKubens, false},
		{"no runtime", `D/kubelet 60 & D/containerd-shim 60 &`, vfy.StateUnknown, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			script := "set -e\n" + strings.ReplaceAll(tt.setup, "D/", dir+"/") + "\n" + started(tt.setup) + bb + " sh " + probe + "\n"
			// taskset -c 0: see HARNESS.md, pinning a namespace on these VMs
			// needs both namespaces made on the same CPU.
			cmd := exec.CommandContext(ctx, "taskset", "-c", "0", "unshare", "--pid", "--fork", "--kill-child",
				"--mount", "--mount-proc", "--propagation", "private", "sh", "-c", script)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(out) > 1024 {
				t.Errorf("report is %d bytes; keep it far below the 4096-byte termination message limit", len(out))
			}
			rep, err := vfy.ParseReport(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			res := vfy.Classify("n", rep)
			if res.State != tt.state || res.Mechanism != tt.mech {
				t.Fatalf("got %s/%q, want %s/%q\n%s", res.State, res.Mechanism, tt.state, tt.mech, out)
			}
			if tt.state == vfy.StateUnknown && res.Reason != vfy.ReasonProcessMissing {
				t.Fatalf("reason %s", res.Reason)
			}
			if tt.hidden && res.Mounts.Hidden < 1 {
				t.Errorf("the container mount in the kubens namespace is not counted as hidden: %+v\n%s", res.Mounts, out)
			}
			if tt.state == vfy.Encapsulated && (rep.KubeletKubensMnt != vfy.Yes || rep.RuntimeKubensMnt != vfy.Yes) {
				t.Errorf("KUBENSMNT not seen:\n%s", out)
			}
		})
	}
}

// started returns shell that waits until every daemon setup starts (each
// D/<name>) runs under its name, that is, has been through its nsenter and
// mounts and exec'd itself; the probe then finds them all in place. It
// gives up after 10 s.
func started(setup string) string {
	var names []string
	for _, f := range strings.Split(setup, "D/")[1:] {
		name := strings.FieldsFunc(f, func(r rune) bool { return r == ' ' || r == '\'' || r == '&' })[0]
		names = append(names, name)
	}
	return `for n in ` + strings.Join(names, " ") + `; do
	i=0
	until grep -qsx "$n" /proc/[0-9]*/comm; do
		i=$((i+1)); [ $i -le 1000 ] || { echo "$n never started" >&2; exit 1; }
		sleep 0.01
	done
done
`
}
