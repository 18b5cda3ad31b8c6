package wrap

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/internal/shelltest"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

func TestProbeScriptSyntax(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		if out, err := exec.Command(sh[0], append(sh[1:], "-n", "-c", ProbeScript)...).CombinedOutput(); err != nil {
			t.Errorf("%v -n: %v\n%s", sh, err, out)
		}
	}
}

func TestProbeCommand(t *testing.T) {
	units := []string{"chronyd.service", "getty@tty1.service"}
	want := []string{"/bin/sh", "-c", ProbeScript, "oc-kubens-wrap", "chronyd.service", "getty@tty1.service"}
	if got := (ReadProbe{Units: units}).Command(); !reflect.DeepEqual(got, want) {
		t.Errorf("Command() ends %q, want %q", got[3:], want[3:])
	}
	if strings.Contains(ProbeScript, "chronyd") {
		t.Error("the script text names a unit")
	}
}

// hostTools stands in for the node's systemctl: chroot is a shell
// function, so the probe's `chroot /host systemctl ...` lands here. It
// logs every call, fails unless the probe chroots into its fake /host, and
// answers `systemctl --no-pager cat -- UNIT` from units/UNIT (stdout) or
// units/UNIT.err (stderr, exit 1), else as systemctl does for a unit
// without files.
const hostTools = `chroot() {
	[ "$1" = "$KUBENS_WRAP_ROOT/host" ] || return 125
	[ "$SYSTEMD_IGNORE_CHROOT" = 1 ] || return 126
	shift
	printf '%s\n' "$*" >>"$KUBENS_WRAP_ROOT/calls"
	[ $# -eq 5 ] && [ "$1 $2 $3 $4" = "systemctl --no-pager cat --" ] || return 127
	if [ -f "$KUBENS_WRAP_ROOT/units/$5" ]; then
		cat "$KUBENS_WRAP_ROOT/units/$5"
		return 0
	fi
	if [ -f "$KUBENS_WRAP_ROOT/units/$5.err" ]; then
		cat "$KUBENS_WRAP_ROOT/units/$5.err" >&2
		return 1
	fi
	echo "No files found for $5." >&2
	return 1
}
`

// fakeNode is a node under a temporary root, as KUBENS_WRAP_ROOT moves the
// probe there: systemd as PID 1, a systemctl on the host, a termination
// log, and the units in units/.
type fakeNode struct {
	t    *testing.T
	root string
}

func newFakeNode(t *testing.T) fakeNode {
	n := fakeNode{t, t.TempDir()}
	n.write("proc/1/comm", "systemd\n")
	n.write("host/usr/bin/systemctl", "")
	n.write("dev/termination-log", "")
	n.write("units/.keep", "")
	return n
}

func (n fakeNode) write(path, content string) {
	n.t.Helper()
	p := filepath.Join(n.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

func (n fakeNode) read(path string) string {
	b, _ := os.ReadFile(filepath.Join(n.root, path))
	return string(b)
}

// run runs the probe for units with sh and returns its report, checking
// that it exits 0 and writes the same report to the termination log.
func (n fakeNode) run(sh []string, units ...string) string {
	n.t.Helper()
	n.write("dev/termination-log", "")
	args := append(append(sh[1:], "-c", hostTools+ProbeScript, "oc-kubens-wrap"), units...)
	cmd := exec.Command(sh[0], args...)
	cmd.Env = append(os.Environ(), "KUBENS_WRAP_ROOT="+n.root)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("%v: %v\n%s", sh, err, stderr.String())
	}
	if tl := n.read("dev/termination-log"); tl != stdout.String() {
		n.t.Errorf("%v: termination log %q differs from stdout %q", sh, tl, stdout.String())
	}
	if len(stdout.String()) > MaxReportSize {
		n.t.Errorf("%v: report is %d bytes, more than %d", sh, len(stdout.String()), MaxReportSize)
	}
	return stdout.String()
}

// TestProbeReadsUnits runs the probe against a node with every kind of
// answer, then checks the report unit by unit against the whole output.
func TestProbeReadsUnits(t *testing.T) {
	cases := catCases()
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			plain, dropIns := cases[0].out, cases[1].out
			n.write("units/chronyd.service", plain)
			n.write("units/rpc-statd.service", dropIns)
			n.write("units/bus.service.err", "Failed to connect to bus: No such file or directory\nsecond line\n")
			units := []string{"chronyd.service", "gone.service", "rpc-statd.service", "bus.service", "a;rm -rf /.service"}
			report := n.run(sh, units...)
			got, err := ParseReport([]byte(report), units)
			if err != nil {
				t.Fatalf("%v\n%s", err, report)
			}
			if r := got["chronyd.service"]; r.Status != StatusOK || r.Err != nil || !reflect.DeepEqual(r.Unit, cases[0].want) {
				t.Errorf("chronyd: %+v, want %+v\n%s", r, cases[0].want, report)
			}
			if r := got["rpc-statd.service"]; r.Status != StatusOK || r.Err != nil || !reflect.DeepEqual(r.Unit, cases[1].want) {
				t.Errorf("rpc-statd: %+v, want %+v\n%s", r, cases[1].want, report)
			}
			if r := got["gone.service"]; r.Status != StatusMissing || !errors.Is(r.Err, ErrUnitNotFound) {
				t.Errorf("gone: %+v", r)
			}
			if r := got["bus.service"]; r.Status != StatusFailed || r.Err == nil ||
				r.Err.Error() != "systemctl cat failed: Failed to connect to bus: No such file or directory" {
				t.Errorf("bus: %+v", r)
			}
			if r := got["a;rm -rf /.service"]; r.Status != StatusInvalid || !errors.Is(r.Err, ErrNameRefused) {
				t.Errorf("refused name: %+v", r)
			}
			// The filter drops what does not matter: descriptions,
			// comments, other settings.
			for _, dropped := range []string{"Description", "PIDFile", "ExecStartPost", "WantedBy", "[Install]"} {
				if !strings.Contains(dropped, "[") && strings.Contains(report, dropped) {
					t.Errorf("report keeps %s:\n%s", dropped, report)
				}
			}
			// A missing unit is asked twice (output, then errors).
			wantCalls := "systemctl --no-pager cat -- chronyd.service\n" +
				"systemctl --no-pager cat -- gone.service\nsystemctl --no-pager cat -- gone.service\n" +
				"systemctl --no-pager cat -- rpc-statd.service\n" +
				"systemctl --no-pager cat -- bus.service\nsystemctl --no-pager cat -- bus.service\n"
			if calls := n.read("calls"); calls != wantCalls {
				t.Errorf("calls:\n%s\nwant:\n%s", calls, wantCalls)
			}
		})
	}
}

// TestProbeRefusesNames: names are the only input from the client, and
// one that is not a plain service name must never reach a command or be
// interpreted by the shell.
func TestProbeRefusesNames(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			canary := filepath.Join(n.root, "pwned")
			bad := []string{
				"$(touch " + canary + "1).service",
				"`touch " + canary + "2`.service",
				"a;touch " + canary + "3;.service",
				"a.service\nunit evil.service",
				"a.service\nstatus ok",
				"$(x).service",
				"a;rm -rf /.service",
				"../../../etc/passwd.service",
				"*.service",
				".service",
				"@.service",
				".hidden.service",
				"-x.socket",
				"a b.service",
				"",
				`back\slash.service`,
				strings.Repeat("a", 248) + ".service",
			}
			units := append([]string{"first.service"}, append(bad, "last.service")...)
			report := n.run(sh, units...)
			got, err := ParseReport([]byte(report), units)
			if err != nil {
				t.Fatalf("%v\n%s", err, report)
			}
			for _, u := range bad {
				if r := got[u]; r.Status != StatusInvalid {
					t.Errorf("%q: status %q, want invalid", u, r.Status)
				}
				if ValidateUnitName(u) == nil {
					t.Errorf("%q passes ValidateUnitName but the probe refuses it", u)
				}
			}
			if m, _ := filepath.Glob(canary + "*"); len(m) > 0 {
				t.Errorf("a name was executed: %v", m)
			}
			if calls := n.read("calls"); calls != "systemctl --no-pager cat -- first.service\nsystemctl --no-pager cat -- first.service\n"+
				"systemctl --no-pager cat -- last.service\nsystemctl --no-pager cat -- last.service\n" {
				t.Errorf("systemctl was asked:\n%s", calls)
			}
		})
	}
}

// TestProbeNameCheckMatchesGo runs the probe's own name check on names
// around every rule: it must accept exactly what ValidateUnitName accepts,
// so a name the client sends is never refused and no other is used.
func TestProbeNameCheckMatchesGo(t *testing.T) {
	names := []string{
		"a.service", "-.service", "a@.service", "a@b@c.service", "A-Z_0:9.x.service", "a.service.service",
		".service", "@.service", "@a.service", ".a.service", "a.servic", "a.Service", "a.service ", " a.service",
		"a", "", "service", "aservice", "a@", "a\tb.service", "a/b.service", "a\\b.service", "é.service",
		strings.Repeat("b", 247) + ".service", strings.Repeat("b", 248) + ".service",
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const alphabet = "ab@.-_:Z9 /\\$;*?[]'\""
	for range 200 {
		var b strings.Builder
		for range rng.IntN(6) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(3) > 0 {
			b.WriteString(".service")
		}
		names = append(names, b.String())
	}
	fn := probeFunction(t, "valid")
	for _, sh := range shelltest.Shells(t) {
		args := append(append(sh[1:], "-c", "LC_ALL=C; "+fn+`for n in "$@"; do if valid "$n"; then echo y; else echo n; fi; done`, "sh"), names...)
		out, err := exec.Command(sh[0], args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", sh, err)
		}
		answers := strings.Fields(string(out))
		if len(answers) != len(names) {
			t.Fatalf("%v: %d answers for %d names", sh, len(answers), len(names))
		}
		for i, name := range names {
			if probe, goSays := answers[i] == "y", ValidateUnitName(name) == nil; probe != goSays {
				t.Errorf("%v: %q: probe accepts %v, ValidateUnitName %v", sh, name, probe, goSays)
			}
		}
	}
}

// probeFunction returns the text of one shell function of the probe.
func probeFunction(t *testing.T, name string) string {
	t.Helper()
	start := strings.Index(ProbeScript, "\n"+name+"() {\n")
	if start < 0 {
		t.Fatalf("probe has no function %s", name)
	}
	end := strings.Index(ProbeScript[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("function %s does not end", name)
	}
	return ProbeScript[start : start+end+3]
}

// probeLine returns the line of the probe that starts with prefix.
func probeLine(t *testing.T, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(ProbeScript, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l + "\n"
		}
	}
	t.Fatalf("probe has no line starting with %q", prefix)
	return ""
}

// TestProbeNoSystemd: without systemd as PID 1, or without a systemctl on
// the host, nothing is asked and every valid unit is unknown.
func TestProbeNoSystemd(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		for name, setup := range map[string]func(fakeNode){
			"init":         func(n fakeNode) { n.write("proc/1/comm", "init\n") },
			"no comm":      func(n fakeNode) { _ = os.Remove(filepath.Join(n.root, "proc/1/comm")) },
			"no systemctl": func(n fakeNode) { _ = os.Remove(filepath.Join(n.root, "host/usr/bin/systemctl")) },
		} {
			n := newFakeNode(t)
			n.write("units/a.service", catCases()[0].out)
			setup(n)
			units := []string{"a.service", "$(x).service"}
			report := n.run(sh, units...)
			got, err := ParseReport([]byte(report), units)
			if err != nil {
				t.Fatalf("%v %s: %v\n%s", sh, name, err, report)
			}
			if r := got["a.service"]; r.Status != StatusUnknown || !errors.Is(r.Err, ErrNoSystemd) {
				t.Errorf("%v %s: %+v, want unknown", sh, name, r)
			}
			if got["$(x).service"].Status != StatusInvalid {
				t.Errorf("%v %s: a refused name is not invalid", sh, name)
			}
			if calls := n.read("calls"); calls != "" {
				t.Errorf("%v %s: systemctl was asked:\n%s", sh, name, calls)
			}
		}
	}
}

// TestProbeFixtures sends every systemctl cat output of the parser's
// tests through the whole probe: what the report keeps must parse to what
// the whole output parses to, errors included.
func TestProbeFixtures(t *testing.T) {
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			cases := catCases()
			var units []string
			for i, c := range cases {
				units = append(units, fmt.Sprintf("case-%d.service", i))
				n.write("units/"+units[i], c.out)
			}
			// A few units per run, so that each report has room for all.
			const batch = 5
			for start := 0; start < len(units); start += batch {
				asked := units[start:min(start+batch, len(units))]
				report := n.run(sh, asked...)
				got, err := ParseReport([]byte(report), asked)
				if err != nil {
					t.Fatalf("%v\n%s", err, report)
				}
				for i, unit := range asked {
					c, r := cases[start+i], got[unit]
					if r.Status != StatusOK || !sameError(r.Err, c.err) || !reflect.DeepEqual(r.Unit, c.want) {
						t.Errorf("%s: %s %+v (%v), want %+v (%v)\n%s", c.name, r.Status, r.Unit, r.Err, c.want, c.err, report)
					}
				}
			}
		})
	}
}

// sameError says whether two parse errors are the same kind.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, s := range []error{ErrNotSystemctlCat, ErrNoExecStart, ErrBadUnitFile} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}

// TestProbeFilterMatchesParser runs the probe's filter, as the probe does,
// on generated unit files built from the pieces systemd's syntax turns on
// (continuations, comments inside them, escaped backslashes, blank lines,
// look-alike headers, keys split over lines, CRs, sections): for each, the
// kept lines must parse exactly as the whole output does.
func TestProbeFilterMatchesParser(t *testing.T) {
	pieces := []string{
		"[Service]", "[Service]", "[Unit]", "[Install]", " [Service] ", "[Service", "[X-Foo]", "[Serv\\", "ice]", "[]",
		"[Service]\\", "[Unit] \\",
		"ExecStart=/bin/a", "ExecStart=/bin/b --x", "ExecStart=", "ExecStart = /bin/c \\", "  ExecStart=/bin/d",
		"ExecStart\\", "=/bin/e", "Exec\\", "Start=/bin/f", "ExecStartPre=/bin/g", "execstart=/bin/h",
		"ExecStart=/usr/bin/kubensenter /bin/i", "ExecStart=-nsenter --mount=/run/kubens/mnt /bin/j",
		"User=core", "User=", "User = root \\", "Type=oneshot", "Environment=A=1 \\", "Description=x # y",
		"  --arg \\", "  --arg2", "\\", "\\\\", "x\\\\\\", "tail\\\\", "; comment", "  # comment \\", "#comment",
		"", "", "", "  ", "\t",
		"# /etc/systemd/system/x.service.d/50-look.conf", "# /usr/bin/tool", "# /with space", "#/no-space",
		"ExecStart=/bin/cr\r", "User=crlf\r", "\r", "A=1\rExecStart=/bin/lone-cr",
	}
	dropIns := []string{"10-a.conf", "20-b.conf", DropInName, "30-c.conf"}
	rng := rand.New(rand.NewPCG(1, 2))
	var outs []string
	for _, c := range catCases() {
		outs = append(outs, c.out)
	}
	for range 400 {
		var b strings.Builder
		for f := range 1 + rng.IntN(4) {
			if f == 0 {
				b.WriteString("# /etc/systemd/system/x.service\n")
			} else {
				if rng.IntN(5) > 0 {
					b.WriteString("\n") // systemctl's empty line between files
				}
				b.WriteString("# /etc/systemd/system/x.service.d/" + dropIns[rng.IntN(len(dropIns))] + "\n")
			}
			for range rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))] + "\n")
			}
		}
		outs = append(outs, b.String())
	}

	// The probe feeds keep systemctl's output with its trailing newlines
	// gone (a command substitution) and one added back; the files hold
	// just that, so the loop needs no subshell per output.
	dir := t.TempDir()
	for i, o := range outs {
		in := strings.TrimRight(o, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.in", i)), []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	harness := probeLine(t, "LC_ALL=") + probeLine(t, "CR=") + probeLine(t, "WS=") +
		probeFunction(t, "odd") + probeFunction(t, "keep") + probeFunction(t, "raw") + `
for f in "$1"/*.in; do
	keep <"$f" >"${f%.in}.out" || raw <"$f" >"${f%.in}.out"
done
`
	for _, sh := range shelltest.Shells(t) {
		if out, err := exec.Command(sh[0], append(sh[1:], "-c", harness, "sh", dir)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", sh, err, out)
		}
		kept := 0
		for i, full := range outs {
			body, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%03d.out", i)))
			if err != nil {
				t.Fatal(err)
			}
			var content []string
			for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
				if l == "" {
					continue // an empty body
				}
				text, ok := strings.CutPrefix(l, "| ")
				if !ok {
					t.Fatalf("%v: output %d: line %q without \"| \"", sh, i, l)
				}
				content = append(content, text)
			}
			r, err := unitRead(StatusOK, content)
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := ParseSystemctlCat(full)
			if !sameError(r.Err, wantErr) || !reflect.DeepEqual(r.Unit, want) {
				t.Errorf("%v: output %d:\n%s\nwhole: %+v (%v)\nkept:  %+v (%v)\n%s", sh, i, full, want, wantErr, r.Unit, r.Err, body)
			}
			kept += len(body)
		}
		total := 0
		for _, o := range outs {
			total += len(o)
		}
		t.Logf("%v: kept %d of %d bytes", sh, kept, total)
	}
}

// TestProbeFitsReport: the report never passes MaxReportSize, whatever
// the units' size; units that do not fit are truncated while later, smaller
// ones still get in, and every unit keeps its status.
func TestProbeFitsReport(t *testing.T) {
	oneshot := func(n int, arg string) string {
		var b strings.Builder
		b.WriteString("# /etc/systemd/system/big.service\n[Service]\nType=oneshot\n")
		for i := range n {
			fmt.Fprintf(&b, "ExecStart=/usr/bin/step-%03d %s\n", i, arg)
		}
		return b.String()
	}
	for _, sh := range shelltest.Shells(t) {
		t.Run(strings.Join(sh, "-"), func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			n.write("units/big1.service", oneshot(60, "--café-résumé")) // about 2.4 kB kept, multibyte
			n.write("units/big2.service", oneshot(60, "--second"))
			n.write("units/small.service", catCases()[0].out)
			units := []string{"big1.service", "big2.service", "small.service"}
			report := n.run(sh, units...)
			got, err := ParseReport([]byte(report), units)
			if err != nil {
				t.Fatalf("%v\n%s", err, report)
			}
			if r := got["big1.service"]; r.Status != StatusOK || len(r.Unit.ExecStart) != 60 {
				t.Errorf("big1: %s, %d commands", r.Status, len(r.Unit.ExecStart))
			}
			if r := got["big2.service"]; r.Status != StatusTruncated || !errors.Is(r.Err, ErrTruncated) {
				t.Errorf("big2: %+v", r)
			}
			if r := got["small.service"]; r.Status != StatusOK || r.Err != nil {
				t.Errorf("small: %+v", r)
			}

			// As many long names as Validate allows, each with a unit
			// too big to fit: the statuses alone must still fit.
			var many []string
			for i := 0; ; i++ {
				u := fmt.Sprintf("%s-%02d.service", strings.Repeat("n", 200), i)
				if (ReadProbe{Units: append(many, u)}).Validate() != nil {
					break
				}
				many = append(many, u)
				n.write("units/"+u, oneshot(120, "--x"))
			}
			if len(many) < 2 {
				t.Fatalf("Validate allows %d long names", len(many))
			}
			report = n.run(sh, many...)
			got, err = ParseReport([]byte(report), many)
			if err != nil {
				t.Fatalf("%d units: %v (%d bytes)", len(many), err, len(report))
			}
			for _, u := range many {
				if got[u].Status != StatusTruncated {
					t.Errorf("%s: %s, want truncated", u, got[u].Status)
				}
			}
		})
	}
}

// pod is a probe pod as the engine sees it.
func pod(phase corev1.PodPhase, state corev1.ContainerState) *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{
		Phase:             phase,
		ContainerStatuses: []corev1.ContainerStatus{{Name: verify.ProbeContainer, State: state}},
	}}
}

func terminated(code int32, message string) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: message}}
}

func TestReadProbeRead(t *testing.T) {
	p := ReadProbe{Units: goodUnits}
	if _, done := p.Read("n1", pod(corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})); done {
		t.Error("a running pod is done")
	}
	if _, done := p.Read("n1", pod(corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})); done {
		t.Error("a pending pod is done")
	}

	res, done := p.Read("n1", pod(corev1.PodSucceeded, terminated(0, goodReport)))
	if !done || res.Node != "n1" || res.Reason != "" || res.Err != nil || len(res.Units) != len(goodUnits) {
		t.Fatalf("good report: %+v, %v", res, done)
	}
	if got := res.Units["chronyd.service"].Unit.ExecStart; len(got) != 1 || !strings.HasPrefix(got[0], "/usr/sbin/chronyd") {
		t.Errorf("chronyd ExecStart %q", got)
	}

	tests := []struct {
		name   string
		pod    *corev1.Pod
		reason string
		says   string
		err    error
	}{
		{"bad report", pod(corev1.PodSucceeded, terminated(0, "kubens-unitcat v2\nend\n")), verify.ReasonBadReport, "report was rejected", ErrNotReport},
		{"truncated", pod(corev1.PodSucceeded, terminated(0, strings.TrimSuffix(goodReport, "end\n"))), ReasonTruncated, "give the command explicitly", ErrTruncated},
		{"wrong units", pod(corev1.PodSucceeded, terminated(0, "kubens-unitcat v1\nunit x.service\nstatus missing\nend\n")), verify.ReasonBadReport, "not in the order", nil},
		{"probe failed", pod(corev1.PodFailed, terminated(2, "usage")), verify.ReasonProbeFailed, "exited with code 2", nil},
		{"image", pod(corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "no such image"}}), "ImagePullBackOff", "no such image", nil},
	}
	for _, tt := range tests {
		res, done := p.Read("n2", tt.pod)
		if !done || res.Node != "n2" || res.Units != nil || res.Reason != tt.reason || !strings.Contains(res.Message, tt.says) ||
			(tt.err != nil && !errors.Is(res.Err, tt.err)) {
			t.Errorf("%s: %+v, %v; want reason %s saying %q", tt.name, res, done, tt.reason, tt.says)
		}
	}

	f := p.Failed("n3", verify.ReasonTimeout, "no result")
	if !reflect.DeepEqual(f, NodeUnits{Node: "n3", Reason: verify.ReasonTimeout, Message: "no result"}) {
		t.Errorf("Failed: %+v", f)
	}
}

func TestReadProbeValidate(t *testing.T) {
	if err := (ReadProbe{Units: []string{"a.service", "b@.service"}}).Validate(); err != nil {
		t.Errorf("valid units: %v", err)
	}
	for name, units := range map[string][]string{
		"none":    nil,
		"invalid": {"a.service", "b.socket"},
		"twice":   {"a.service", "b.service", "a.service"},
		"too many": func() (u []string) {
			for i := range 20 {
				u = append(u, fmt.Sprintf("%s%d.service", strings.Repeat("x", 240), i))
			}
			return u
		}(),
	} {
		if err := (ReadProbe{Units: units}).Validate(); err == nil {
			t.Errorf("%s: Validate accepts %d units", name, len(units))
		}
	}
	if err := (ReadProbe{Units: []string{"b.socket"}}).Validate(); !errors.Is(err, ErrInvalidUnitName) {
		t.Errorf("invalid name: %v", err)
	}
}
