package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/measure"
)

// Flag mistakes in measure exit 2 before any cluster access, with a line
// that says what to do, as verify's do.
func TestMeasureFlagErrors(t *testing.T) {
	dir := t.TempDir()
	wrongKind := filepath.Join(dir, "verify.json")
	if err := os.WriteFile(wrongKind, []byte(`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"VerifyReport"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"measure"}, "say which nodes to measure"},
		{[]string{"measure", "n1", "--pool", "worker"}, "exactly one of"},
		{[]string{"measure", "--all-nodes", "--duration", "500ms"}, "--duration must be between 1s and 1h0m0s"},
		{[]string{"measure", "--all-nodes", "--duration", "2h"}, "--duration must be between"},
		{[]string{"measure", "--all-nodes", "-o", "xml"}, `unsupported output format "xml": allowed formats are json, yaml, kyaml, name, go-template`},
		{[]string{"measure", "--all-nodes", "-o", "jsonpath={.x"}, "-o jsonpath={.x: "},
		{[]string{"measure", "--all-nodes", "--parallelism", "0"}, "--parallelism must be at least 1"},
		{[]string{"measure", "--all-nodes", "--baseline", filepath.Join(dir, "missing.json")}, "--baseline"},
		{[]string{"measure", "--all-nodes", "--baseline", wrongKind}, "VerifyReport"},
		{[]string{"measure", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			code := Execute(append([]string{"oc-kubens"}, append(tt.args, "--server", "https://127.0.0.1:1")...), streams)
			if code != verifyExitCannotRun || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestMeasureTables(t *testing.T) {
	measured := measure.NodeMeasurement{Node: "n1", State: measure.Measured, PID1Comm: "systemd", PID1CPUPercent: 6.25,
		Mounts: measure.Mounts{PID1: 400, Kubelet: 420, Hidden: 20}, MountUnits: 380, ChurnPerSecond: 12.5, Pods: 40}
	gone := measure.Unmeasured("n2", "Timeout", "no result within --timeout=1m0s")
	rep := measure.NewMeasureReport(30*time.Second, []measure.NodeMeasurement{measured, gone})

	var out bytes.Buffer
	o := &MeasureOptions{PrintFlags: withOutput(newPrintFlags(tableOutput, ""), "wide"), IOStreams: genericiooptions.IOStreams{Out: &out}}
	if err := o.printReport(rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SYSTEMD-CPU", "n1", "6.25%", "380", "400/420", "12.5", "systemd",
		"n2", "Unknown(Timeout)", "-/-", "no result within", "1 node(s) measured over 30s, 1 unknown"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}

	after := measured
	after.PID1CPUPercent, after.MountUnits = 0.5, 30
	newNode := measure.NodeMeasurement{Node: "n3", State: measure.Measured, PID1CPUPercent: 0.1, MountUnits: 25, ChurnPerSecond: 0, Pods: 1}
	cmp := measure.Compare(measure.NewMeasureReport(30*time.Second, []measure.NodeMeasurement{measured, gone}),
		measure.NewMeasureReport(30*time.Second, []measure.NodeMeasurement{after, newNode}))
	out.Reset()
	o.PrintFlags = withOutput(newPrintFlags(tableOutput, ""), "")
	if err := o.printComparison(cmp); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"n1", "both", "6.25%", "0.50%", "-5.75%", "n2", "before only", "n3", "after only",
		"1 node(s) on both sides, 1 new, 1 gone"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	o.PrintFlags = withOutput(newPrintFlags(tableOutput, ""), "json")
	if err := o.printComparison(cmp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"kind": "MeasureComparison"`) || !strings.Contains(out.String(), `"presence": "Gone"`) {
		t.Errorf("json comparison:\n%s", out.String())
	}
	out.Reset()
	o.PrintFlags = withOutput(newPrintFlags(tableOutput, ""), "yaml")
	if err := o.printComparison(cmp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "kind: MeasureComparison") || !strings.Contains(out.String(), "presence: Gone") {
		t.Errorf("yaml comparison:\n%s", out.String())
	}
}
