package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"plain", Plain, false}, {"encapsulated", Encapsulated, false}, {"split", Split, false}, {"on", "", true}, {"", "", true},
	} {
		got, err := ParseMode(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func nsOf(t *testing.T, pid int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestNamespacePlumbing boots a node without a kubelet in every mode and
// checks where containerd runs (ctr runs inside the node: it makes the
// container's stdio fifos under /run/containerd/fifo, a per-node tmpfs), that images import and a container runs, and
// that stopping leaves no process, mount or cgroup.
func TestNamespacePlumbing(t *testing.T) {
	testenv.RequireRoot(t)
	if missing := MissingTools(); len(missing) > 0 {
		msg := fmt.Sprintf("node tools missing (%s): run `make node-deps`", strings.Join(missing, ", "))
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	set, err := images.Build(ctx, filepath.Join(dir, "images"), root, "")
	if err != nil {
		t.Fatal(err)
	}
	cg := fmt.Sprintf("/oc-kubens-nodetest-%d", os.Getpid())
	for _, mode := range []Mode{Plain, Encapsulated, Split} {
		t.Run(string(mode), func(t *testing.T) {
			n, err := Start(ctx, Config{
				Name: "nodetest", Dir: filepath.Join(dir, string(mode)), CgroupRoot: cg + "/n", Mode: mode,
				InitBin: set.PauseBin, Images: set.Tarballs(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Stop(ctx)
			host, pid1, ctrd := nsOf(t, os.Getpid()), nsOf(t, n.InitPID()), nsOf(t, n.containerd.pid)
			if host == pid1 {
				t.Errorf("node PID 1 shares the host's mount namespace %s", host)
			}
			if (mode == Encapsulated) == (ctrd == pid1) {
				t.Errorf("mode %s: containerd ns %s, PID 1 ns %s", mode, ctrd, pid1)
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", n.containerd.pid))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(env), "KUBENSMNT="+KubensMnt); got != (mode == Encapsulated) {
				t.Errorf("mode %s: KUBENSMNT in containerd's environment: %v", mode, got)
			}
			if mode != Plain {
				b, err := exec.CommandContext(ctx, "nsenter", "--target", fmt.Sprint(n.InitPID()), "--mount", "cat", KubensEnv).CombinedOutput()
				if err != nil || strings.TrimSpace(string(b)) != "KUBENSMNT="+KubensMnt {
					t.Errorf("%s in the node: %q, %v", KubensEnv, b, err)
				}
			}
			// kubens.service's OCPBUGS-83562 step: /run/netns is a mount
			// point wherever the unit ran (seen from containerd: inside the
			// kubens namespace when encapsulated, the node's when split),
			// the scratch netns is gone, and a plain node has neither.
			// --pid too: mountpoint reads /proc/self/mountinfo, and /proc
			// there is the node's; without it mountpoint falls back to
			// comparing st_dev, which a bind mount of /run's tmpfs shares.
			netns := exec.CommandContext(ctx, "nsenter", "--target", fmt.Sprint(n.containerd.pid), "--mount", "--pid", "--", "sh", "-c",
				"mountpoint -q /run/netns && echo mounted; ls -A /run/netns 2>/dev/null")
			b, _ := netns.CombinedOutput()
			if want := map[bool]string{true: "mounted", false: ""}[mode != Plain]; strings.TrimSpace(string(b)) != want {
				t.Errorf("mode %s: /run/netns seen by containerd: %q, want %q", mode, b, want)
			}
			out, err := exec.CommandContext(ctx, "nsenter", "--target", fmt.Sprint(n.InitPID()), "--mount", "--pid", "--", "ctr", "--address", n.ContainerdAddress(), "-n", "k8s.io", "run", "--rm",
				"--cgroup", cg+"/n/ctr", images.ToolsImage, "probe", "sh", "-c", "echo hello; readlink /proc/1/ns/mnt >/dev/null").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "hello") {
				t.Errorf("ctr run: %v\n%s", err, out)
			}
			initPID := n.InitPID()
			if err := n.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", initPID)); err == nil {
				t.Errorf("node PID 1 (%d) still runs after Stop", initPID)
			}
		})
	}
	if err := RemoveCgroup(cg, true, 5*time.Second); err != nil {
		t.Error(err)
	}
	if left := CgroupsUnder(cg); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}
