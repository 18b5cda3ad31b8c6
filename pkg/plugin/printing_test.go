package plugin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/measure"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// withOutput sets -o on flags made for a test, as if given on the command line.
func withOutput(f *printFlags, format string) *printFlags {
	*f.OutputFormat = format
	return f
}

// parsedPrintFlags returns a command's -o flags after parsing args, as the
// command line would set them.
func parsedPrintFlags(t *testing.T, kind outputKind, defaultFormat string, args ...string) *printFlags {
	t.Helper()
	f := newPrintFlags(kind, defaultFormat)
	cmd := &cobra.Command{Use: "x"}
	f.addFlags(cmd, "a table", "node/NAME per node")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func sampleStatus() mcp.Report {
	return mcp.Report{APIVersion: mcp.ReportAPIVersion, Kind: mcp.ReportKind,
		Pools: []mcp.PoolStatus{
			{Name: "master", Kubens: mcp.UnitEnabled, EnabledBy: []string{"99-kubens-master"}, Managed: []string{}, Wrapped: []string{}, Updated: true, MachineCount: 1},
			{Name: "worker", Kubens: mcp.UnitDisabled, DesiredKubens: mcp.UnitEnabled, PendingChange: true, Updating: true, Degraded: true,
				DegradedReason: "node w1 is stuck", EnabledBy: []string{}, Managed: []string{}, Wrapped: []string{"agent.service"}, MachineCount: 2, ReadyMachineCount: 1},
		},
		Nodes: []mcp.NodeStatus{{Name: "m1", Pool: "master", Kubens: mcp.UnitEnabled, State: "Done", CurrentConfig: "r1", DesiredConfig: "r1"}},
	}
}

// TestPrintFormats prints a status report in every PrintFlags format: json
// and yaml are the report's own encoding (the field names users script
// against), name lists the pools, the templates see the same document.
func TestPrintFormats(t *testing.T) {
	rep := sampleStatus()
	wantJSON, _ := json.MarshalIndent(rep, "", "    ")
	wantYAML, _ := yaml.Marshal(rep)
	dir := t.TempDir()
	goTemplate := filepath.Join(dir, "pools.tmpl")
	jsonpathFile := filepath.Join(dir, "pools.jsonpath")
	if err := os.WriteFile(goTemplate, []byte(`{{range .pools}}{{.name}}={{.kubens}} {{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsonpathFile, []byte(`{.pools[*].name}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "json"}, string(wantJSON) + "\n"},
		{[]string{"-o", "yaml"}, string(wantYAML)},
		{[]string{"-o", "name"}, "machineconfigpool.machineconfiguration.openshift.io/master\nmachineconfigpool.machineconfiguration.openshift.io/worker\n"},
		{[]string{"-o", "jsonpath={.kind} {.pools[1].wrapped[0]}"}, "KubensStatus agent.service"},
		{[]string{"-o", "jsonpath", "--template", "{.pools[*].name}"}, "master worker"},
		{[]string{"-o", "jsonpath-as-json={.pools[*].name}"}, "[\n    \"master\",\n    \"worker\"\n]\n"},
		{[]string{"-o", "jsonpath-file=" + jsonpathFile}, "master worker"},
		{[]string{"-o", "go-template={{.apiVersion}}/{{.kind}}"}, "oc-kubens.io/v1alpha1/KubensStatus"},
		{[]string{"-o", "go-template-file=" + goTemplate}, "master=enabled worker=disabled "},
		{[]string{"-o", "template={{len .nodes}}"}, "1"},
		// --template alone means go-template, as in kubectl.
		{[]string{"--template", "{{(index .pools 0).name}}"}, "master"},
		{[]string{"-o", "JSON"}, string(wantJSON) + "\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := parsedPrintFlags(t, tableOutput, "", tt.args...)
			if f.human() {
				t.Fatal("human output")
			}
			if err := f.validate(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := f.printReport(&out, &rep, named(poolKind, "master", "worker")); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}

	// kyaml: the same document, in kubectl's KYAML.
	f := parsedPrintFlags(t, tableOutput, "", "-o", "kyaml")
	var out bytes.Buffer
	if err := f.printReport(&out, &rep, nil); err != nil || !strings.Contains(out.String(), `kind: "KubensStatus"`) {
		t.Errorf("kyaml: %v\n%s", err, out.String())
	}
	// Missing keys are allowed by default, as in kubectl; not with
	// --allow-missing-template-keys=false.
	f = parsedPrintFlags(t, tableOutput, "", "-o", "jsonpath={.nope}")
	if err := f.printReport(&out, &rep, nil); err != nil {
		t.Errorf("missing key: %v", err)
	}
	f = parsedPrintFlags(t, tableOutput, "", "-o", "jsonpath={.nope}", "--allow-missing-template-keys=false")
	if err := f.printReport(&out, &rep, nil); err == nil || !strings.Contains(err.Error(), "nope is not found") {
		t.Errorf("--allow-missing-template-keys=false: %v", err)
	}
}

// TestPrintFlagsValidate: which -o values are the command's own output,
// and the errors for the others.
func TestPrintFlagsValidate(t *testing.T) {
	tests := []struct {
		kind          outputKind
		defaultFormat string
		args          []string
		human, wide   bool
		wantErr       string
	}{
		{kind: tableOutput, human: true},
		{kind: tableOutput, args: []string{"-o", "wide"}, human: true, wide: true},
		{kind: tableOutput, args: []string{"-o", "wide", "--no-headers"}, human: true, wide: true},
		{kind: textOutput, human: true},
		{kind: textOutput, args: []string{"-o", "wide"}, wantErr: `unsupported output format "wide": allowed formats are json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, or leave -o out`},
		{kind: tableOutput, args: []string{"-o", "xml"}, wantErr: "allowed formats are json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, wide, or leave -o out"},
		{kind: objectsOnly, defaultFormat: "yaml"},
		{kind: objectsOnly, defaultFormat: "yaml", args: []string{"-o", ""}, wantErr: `unsupported output format "": allowed formats are json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file`},
		{kind: objectsOnly, defaultFormat: "yaml", args: []string{"-o", "wide"}, wantErr: `unsupported output format "wide"`},
		{kind: tableOutput, args: []string{"-o", "jsonpath"}, wantErr: "-o jsonpath: template format specified but no template given"},
		{kind: tableOutput, args: []string{"-o", "jsonpath={.a"}, wantErr: "-o jsonpath={.a: error parsing jsonpath {.a, unclosed action"},
		{kind: tableOutput, args: []string{"-o", "go-template={{.a"}, wantErr: "-o go-template={{.a: error parsing template {{.a"},
		{kind: tableOutput, args: []string{"-o", "go-template-file=/nonexistent"}, wantErr: "-o go-template-file=/nonexistent: error reading --template /nonexistent"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := parsedPrintFlags(t, tt.kind, tt.defaultFormat, tt.args...)
			if f.human() != tt.human || f.isWide() != tt.wide {
				t.Errorf("human %v wide %v, want %v %v", f.human(), f.isWide(), tt.human, tt.wide)
			}
			err := f.validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestNoHeaders: --no-headers leaves the rows alone on stdout; the notes
// and summary lines go to stderr.
func TestNoHeaders(t *testing.T) {
	rep := sampleStatus()
	var out, notes bytes.Buffer
	if err := printStatus(&out, &notes, rep, true, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "master ") || !strings.HasPrefix(lines[1], "worker ") || lines[2] != "" || !strings.HasPrefix(lines[3], "m1 ") {
		t.Errorf("rows:\n%s", out.String())
	}
	if notes.String() != "Pool worker is degraded: node w1 is stuck\n" {
		t.Errorf("notes %q", notes.String())
	}

	vr := verify.NewReport(verify.Encapsulated, sampleVerifyResults())
	out.Reset()
	notes.Reset()
	if err := printVerifyTable(&out, &notes, vr, false, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "NODE") || strings.Count(out.String(), "\n") != 2 || !strings.HasPrefix(notes.String(), "2 nodes: ") {
		t.Errorf("verify --no-headers: stdout\n%s\nstderr\n%s", out.String(), notes.String())
	}

	// Through the command: the flag sets where the notes go.
	f := parsedPrintFlags(t, tableOutput, "", "--no-headers")
	if f.notes(&out, &notes) != &notes || parsedPrintFlags(t, tableOutput, "").notes(&out, &notes) != &out {
		t.Error("notes go to stderr only with --no-headers")
	}
}

func sampleVerifyResults() []verify.NodeResult {
	return []verify.NodeResult{
		{Node: "node-a", State: verify.Encapsulated, Expected: verify.Encapsulated, Mechanism: verify.MechanismKubens, Runtime: "crio",
			Namespaces: &verify.Namespaces{PID1: "4026531841", Kubelet: "4026533000", Runtime: "4026533000"},
			Mounts:     &verify.Mounts{PID1: 60, Kubelet: 460, Hidden: 400},
			Checks:     []verify.Check{{Name: verify.CheckWrappedUnits, Status: verify.CheckPass}}},
		{Node: "node-c", State: verify.StateUnknown, Reason: verify.ReasonTimeout, Message: "no result within --timeout=120s",
			Checks: []verify.Check{{Name: verify.CheckWrappedUnits, Status: verify.CheckFail, Detail: "agent.service runs in the host namespace"}}},
	}
}

// TestVerifyTable: verify's table, wide and not, and its summary line,
// with kubectl's tab writer.
func TestVerifyTable(t *testing.T) {
	rep := verify.NewReport(verify.Encapsulated, sampleVerifyResults())
	var out bytes.Buffer
	if err := printVerifyTable(&out, &out, rep, false, false); err != nil {
		t.Fatal(err)
	}
	want := `NODE     STATE              EXPECTED       MECHANISM        CHECKS
node-a   Encapsulated       Encapsulated   kubens.service   ok
node-c   Unknown(Timeout)   -              -                fail:WrappedUnits
2 nodes: 1 Encapsulated, 0 NotEncapsulated, 0 Split, 1 Unknown. 1 not Encapsulated.
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := printVerifyTable(&out, &out, rep, true, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MOUNTS(PID1/KUBELET)", "60/460", "400", "4026533000", "crio", "no result within"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("wide output lacks %q:\n%s", s, out.String())
		}
	}
	ok := verify.NewReport(verify.Encapsulated, sampleVerifyResults()[:1])
	if s := verifySummary(ok); s != "1 node: 1 Encapsulated, 0 NotEncapsulated, 0 Split, 0 Unknown. All as expected (Encapsulated)." {
		t.Errorf("summary line %q", s)
	}
}

// TestNameOutput: what -o name prints for each command.
func TestNameOutput(t *testing.T) {
	vr := verify.NewReport(verify.Encapsulated, sampleVerifyResults())
	var out bytes.Buffer
	o := &VerifyOptions{PrintFlags: withOutput(newPrintFlags(tableOutput, ""), "name")}
	o.Out = &out
	if err := o.printReport(vr); err != nil || out.String() != "node/node-a\nnode/node-c\n" {
		t.Errorf("verify -o name: %v %q", err, out.String())
	}

	mr := measure.NewMeasureReport(30*time.Second, []measure.NodeMeasurement{measure.Unmeasured("n1", "Timeout", ""), measure.Unmeasured("n2", "Timeout", "")})
	out.Reset()
	m := &MeasureOptions{PrintFlags: withOutput(newPrintFlags(tableOutput, ""), "name")}
	m.Out = &out
	if err := m.printReport(mr); err != nil || out.String() != "node/n1\nnode/n2\n" {
		t.Errorf("measure -o name: %v %q", err, out.String())
	}
	out.Reset()
	if err := m.printComparison(measure.Compare(mr, measure.NewMeasureReport(time.Second, nil))); err != nil || out.String() != "node/n1\nnode/n2\n" {
		t.Errorf("measure --baseline -o name: %v %q", err, out.String())
	}
	// measure --no-headers: the rows on stdout, the summary on stderr.
	var rows, notes bytes.Buffer
	m = &MeasureOptions{PrintFlags: parsedPrintFlags(t, tableOutput, "", "--no-headers")}
	m.Out, m.ErrOut = &rows, &notes
	if err := m.printReport(mr); err != nil || strings.Contains(rows.String(), "NODE") || strings.Count(rows.String(), "\n") != 2 ||
		!strings.HasPrefix(notes.String(), "0 node(s) measured over 30s, 2 unknown") {
		t.Errorf("measure --no-headers: %v\nstdout:\n%s\nstderr:\n%s", err, rows.String(), notes.String())
	}

	got, errOut, code := run(t, "oc-kubens", "render", "--role", "worker", "--role", "arbiter", "-o", "name")
	if code != 0 || errOut != "" || got != "machineconfig.machineconfiguration.openshift.io/99-kubens-arbiter\nmachineconfig.machineconfiguration.openshift.io/99-kubens-worker\n" {
		t.Errorf("render -o name: exit %d %q\n%s", code, errOut, got)
	}
	got, _, code = run(t, "oc-kubens", "version", "-o", "name")
	if code != 0 || !strings.HasPrefix(got, "version.oc-kubens.io/") || strings.Count(got, "\n") != 1 {
		t.Errorf("version -o name: exit %d %q", code, got)
	}
}

// TestRenderFormats: render's json is a v1 List, its yaml a --- stream of
// the configs, its templates see the List.
func TestRenderFormats(t *testing.T) {
	got, _, code := run(t, "oc-kubens", "render", "-o", "jsonpath={.kind}:{.items[*].metadata.name}")
	if code != 0 || got != "List:99-kubens-master 99-kubens-worker" {
		t.Errorf("jsonpath: exit %d %q", code, got)
	}
	got, _, code = run(t, "oc-kubens", "render", "--template", "{{range .items}}{{.metadata.name}} {{end}}")
	if code != 0 || got != "99-kubens-master 99-kubens-worker " {
		t.Errorf("--template: exit %d %q", code, got)
	}
	got, _, code = run(t, "oc-kubens", "render", "-o", "kyaml")
	if code != 0 || strings.Count(got, "---\n") != 2 || !strings.Contains(got, `name: "99-kubens-worker"`) {
		t.Errorf("kyaml: exit %d\n%s", code, got)
	}
}
