package measure

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oc-kubens/oc-kubens/internal/shelltest"
)

func TestProbeScriptSyntax(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		if out, err := exec.Command(sh[0], append(sh[1:], "-n", "-c", ProbeScript)...).CombinedOutput(); err != nil {
			t.Errorf("%v -n: %v\n%s", sh, err, out)
		}
	}
}

func TestProbeCommand(t *testing.T) {
	tests := []struct {
		window time.Duration
		arg    string
	}{
		{10 * time.Second, "10"},
		{1500 * time.Millisecond, "2"}, // rounded up: never shorter than asked
		{0, "1"},
		{2 * time.Hour, "3600"},
	}
	for _, tt := range tests {
		cmd := ProbeCommand(tt.window)
		want := []string{"/bin/sh", "-c", ProbeScript, "oc-kubens-measure", tt.arg}
		if !reflect.DeepEqual(cmd, want) {
			t.Errorf("ProbeCommand(%v) ends %q, want %q", tt.window, cmd[3:], want[3:])
		}
	}
}

// TestProbeRefusesBadWindow: the window is the script's one input, and a
// bad one must stop it before it measures anything.
func TestProbeRefusesBadWindow(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		for _, arg := range []string{"", "0", "010", "3601", "10000", "1.5", "-1", "1;id"} {
			cmd := exec.Command(sh[0], append(sh[1:], "-c", ProbeScript, "oc-kubens-measure", arg)...)
			cmd.Env = append(os.Environ(), "KUBENS_MEASURE_ROOT="+t.TempDir())
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || len(out) != 0 {
				t.Errorf("%v window %q: %v, stdout %q; want exit 2 and no report", sh, arg, err, out)
			}
		}
	}
}

// TestProbeScriptRunsHere runs the real probe on this machine's real /proc,
// unprivileged or not: whatever it can read here, the strict parser must
// accept what it writes, and what it writes must stay small.
func TestProbeScriptRunsHere(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(sh[0], append(sh[1:], "-c", ProbeScript, "oc-kubens-measure", "1")...)
			// TMPDIR is not the probe's: it always works under /tmp.
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			r, err := ParseReport(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if r.Window != 1 || r.PID1TicksStart < 0 {
				t.Errorf("window %d, PID 1 ticks %d: want 1 and known (/proc/1/stat is world-readable)\n%s", r.Window, r.PID1TicksStart, out)
			}
			if len(out) > 1024 {
				t.Errorf("report is %d bytes; keep it far below the 4096-byte termination message limit", len(out))
			}
		})
	}
}

// fakeNode is a node under a temporary root, as KUBENS_MEASURE_ROOT moves
// the probe there.
type fakeNode struct {
	t    *testing.T
	root string
}

func (n fakeNode) write(path, content string) {
	n.t.Helper()
	p := filepath.Join(n.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	// Rename, so the probe never reads a half-written file.
	if err := os.WriteFile(p+".new", []byte(content), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		n.t.Fatal(err)
	}
}

func (n fakeNode) mkdir(path string) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Join(n.root, path), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

func stat(pid int, comm string, ppid int, utime, stime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1000 0 0 0 %d %d 0 0 20 0 1 0 21 1000 10 18446744073709551615\n", pid, comm, ppid, pid, pid, utime, stime)
}

func mountinfo(ids ...int) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%d 1 0:%d / /mnt/m%d rw,relatime shared:%d - tmpfs tmpfs rw\n", id, id, id, id)
	}
	return b.String()
}

// hostTools stands in for the node's own getconf and systemctl: chroot is
// a shell function, so the probe's `chroot /host TOOL` lands here. It fails
// unless the probe chroots into its fake /host.
const hostTools = `chroot() {
	[ "$1" = "$KUBENS_MEASURE_ROOT/host" ] || return 125
	[ "$SYSTEMD_IGNORE_CHROOT" = 1 ] || return 126
	shift
	case $1 in
	getconf) [ "$2" = CLK_TCK ] && echo 250 ;;
	systemctl) [ "$*" = "systemctl list-units --type=mount --all --no-legend --plain" ] &&
		printf '%s\n' "-.mount loaded active mounted Root Mount" "boot.mount loaded active mounted /boot" "run-user-0.mount loaded active mounted /run/user/0" ;;
	*) return 127 ;;
	esac
}
`

// TestProbeMeasuresFakeNode runs the whole probe against a fake node whose
// files the test changes during the window, once the probe has taken its
// start values: every number in the report must come out of those files.
func TestProbeMeasuresFakeNode(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := fakeNode{t, t.TempDir()}
			n.write("proc/uptime", "35073.07 60000.00\n")
			n.write("proc/1/comm", "systemd\n")
			n.write("proc/1/stat", stat(1, "systemd", 0, 1433112, 410099))
			n.write("proc/1/mountinfo", mountinfo(1, 2, 3, 4, 5))
			// A kubelet nested in a pod, with the lower PID, must lose
			// to the node's own, whose parent is PID 1.
			n.write("proc/77/comm", "kubelet\n")
			n.write("proc/77/stat", stat(77, "kubelet", 60, 5, 5))
			n.write("proc/77/mountinfo", mountinfo(1))
			n.write("proc/4242/comm", "kubelet\n")
			n.write("proc/4242/stat", stat(4242, "kubelet", 1, 9000, 900))
			n.write("proc/4242/mountinfo", mountinfo(1, 2, 3, 4, 5, 6, 7, 8))
			for _, uid := range []string{"0f1e", "2a3b", "4c5d"} {
				n.mkdir("proc/4242/root/var/lib/kubelet/pods/" + uid + "/volumes")
			}
			n.write("proc/4242/root/var/lib/kubelet/pods/stray-file", "")
			n.write("host/usr/bin/getconf", "")
			n.write("host/usr/bin/systemctl", "")
			n.mkdir("tmp")
			n.write("dev/termination-log", "")

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, sh[0], append(sh[1:], "-c", hostTools+ProbeScript, "oc-kubens-measure", "1")...)
			cmd.Env = append(os.Environ(), "KUBENS_MEASURE_ROOT="+n.root)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The first snapshot is taken after the start values.
			for {
				if m, _ := filepath.Glob(filepath.Join(n.root, "tmp/kubens-measure.*/a")); len(m) > 0 {
					break
				}
				if ctx.Err() != nil {
					t.Fatal("the probe never took its first snapshot")
				}
				time.Sleep(5 * time.Millisecond)
			}
			// During the window: mount 3 goes, 6 and 7 come (3 changes),
			// systemd uses 49 ticks, 1.5 s pass, kubelet gains a mount.
			n.write("proc/1/mountinfo", mountinfo(1, 2, 4, 5, 6, 7))
			n.write("proc/1/stat", stat(1, "systemd", 0, 1433142, 410118))
			n.write("proc/4242/mountinfo", mountinfo(1, 2, 3, 4, 5, 6, 7, 8, 9))
			n.write("proc/uptime", "35074.57 60001.00\n")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			r, err := ParseReport([]byte(stdout.String()))
			if err != nil {
				t.Fatalf("%v\n%s", err, stdout.String())
			}
			if r.ChurnSamples < 2 {
				t.Errorf("churn.samples = %d, want at least 2", r.ChurnSamples)
			}
			want := Report{
				Window: 1, PID1Comm: "systemd", PID1TicksStart: 1433112 + 410099, PID1TicksEnd: 1433142 + 410118,
				ElapsedMS: 1500, ClkTck: 250, ClkTckFromNode: true,
				PID1MountsStart: 5, PID1MountsEnd: 6, KubeletPID: 4242,
				KubeletMountsStart: 8, KubeletMountsEnd: 9, MountUnits: 3,
				ChurnChanges: 3, ChurnSamples: r.ChurnSamples, Pods: 3,
			}
			if *r != want {
				t.Errorf("report:\n got %+v\nwant %+v\n%s", *r, want, stdout.String())
			}
			tl, err := os.ReadFile(filepath.Join(n.root, "dev/termination-log"))
			if err != nil || string(tl) != stdout.String() {
				t.Errorf("termination log %q (%v), want the report", tl, err)
			}
			if m, _ := filepath.Glob(filepath.Join(n.root, "tmp/*")); len(m) != 0 {
				t.Errorf("the probe left %v behind", m)
			}
		})
	}
}

// TestProbeBlindNode: on a node where nothing can be read (an empty root:
// no /proc files, no host tools, no /tmp), every figure is unknown and the
// report still parses. PID 1's comm is read but is not systemd, so mount
// units stay unknown even though systemctl would answer.
func TestProbeBlindNode(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := fakeNode{t, t.TempDir()}
			n.write("proc/1/comm", "init\n")
			n.write("host/usr/bin/systemctl", "")
			cmd := exec.Command(sh[0], append(sh[1:], "-c", hostTools+ProbeScript, "oc-kubens-measure", "1")...)
			cmd.Env = append(os.Environ(), "KUBENS_MEASURE_ROOT="+n.root)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			r, err := ParseReport(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := Report{
				Window: 1, PID1Comm: "init", PID1TicksStart: -1, PID1TicksEnd: -1, ElapsedMS: -1,
				ClkTck: 100, PID1MountsStart: -1, PID1MountsEnd: -1,
				KubeletMountsStart: -1, KubeletMountsEnd: -1, MountUnits: -1,
				ChurnChanges: -1, ChurnSamples: -1, Pods: -1,
			}
			if *r != want {
				t.Errorf("report:\n got %+v\nwant %+v", *r, want)
			}
		})
	}
}

// TestProbeParsers runs the probe's own stat and uptime parsers on the
// lines ParseStat is tested with, and on broken ones.
func TestProbeParsers(t *testing.T) {
	fns := shelltest.Function(t, ProbeScript, "ticks") + shelltest.Function(t, ProbeScript, "uptime_cs")
	tests := []struct {
		fn, file, content, want string
	}{
		{"ticks", "1/stat", stat1Start, "1843211"},
		{"ticks", "1/stat", statOdd, "10"},
		{"ticks", "1/stat", "1 (systemd) S 0 1 1\n", "unknown"},
		{"ticks", "1/stat", strings.Replace(stat1Start, "1433112", "-5", 1), "unknown"},
		{"ticks", "1/stat", "no parens here 1 2 3 4 5 6 7 8 9 10 11 12 13\n", "unknown"},
		{"ticks", "1/stat", "1 (x) S 0 1 1 0 -1 4 1 5 1 1 99999999999999999 1 0\n", "unknown"},
		{"ticks", "1/stat", "1 (a*) S 0 1 1 0 -1 4 1 5 1 1 7 8 0\n", "15"},
		{"uptime_cs", "uptime", "350735.47 234388.90\n", "35073547"},
		{"uptime_cs", "uptime", "0.05 0.00\n", "5"},
		{"uptime_cs", "uptime", "1008.09 0.00\n", "100809"},
		{"uptime_cs", "uptime", "12 0\n", "unknown"},
		{"uptime_cs", "uptime", "1.5 0\n", "unknown"},
		{"uptime_cs", "uptime", "x.05 0\n", "unknown"},
	}
	for _, sh := range shelltest.Shells(t) {
		for _, tt := range tests {
			dir := t.TempDir()
			n := fakeNode{t, dir}
			n.write("proc/"+tt.file, tt.content)
			// A file named like a glob match proves set -f is in force.
			n.write("a-file", "")
			cmd := exec.Command(sh[0], append(sh[1:], "-c", "cd \"$1\" && P=$1/proc && "+fns+tt.fn, "sh", dir)...)
			out, err := cmd.CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != tt.want {
				t.Errorf("%v %s on %q = %q (%v), want %s", sh, tt.fn, tt.content, got, err, tt.want)
			}
		}
	}
	// Without the file at all.
	for _, sh := range shelltest.Shells(t) {
		out, _ := exec.Command(sh[0], append(sh[1:], "-c", "P=/nonexistent; "+fns+"ticks; uptime_cs")...).CombinedOutput()
		if got := strings.Fields(string(out)); !reflect.DeepEqual(got, []string{"unknown", "unknown"}) {
			t.Errorf("%v on missing files: %q", sh, out)
		}
	}
}
