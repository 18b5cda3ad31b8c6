package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func sampleResults() []NodeResult {
	enc := Classify("node-a", sampleReport())
	enc.Expected = Encapsulated
	plain := sampleReport()
	plain.KubeletNS, plain.RuntimeNS, plain.PID1NS, plain.KubensPin = "4026531840", "4026531840", "4026531840", NSNone
	plain.KubensEnabled, plain.KubensActive = "disabled", "inactive"
	return []NodeResult{
		enc,
		Classify("node-b", plain),
		{Node: "node-c", State: StateUnknown, Reason: ReasonTimeout, Message: "no result within --timeout=120s"},
	}
}

func TestReportOutput(t *testing.T) {
	rep := NewReport(Encapsulated, sampleResults())
	if rep.Summary != (Summary{Total: 3, Encapsulated: 1, NotEncapsulated: 1, Unknown: 1, NotAsExpected: 2}) || rep.AllAsExpected() {
		t.Fatalf("summary %+v", rep.Summary)
	}

	var table bytes.Buffer
	if err := rep.PrintTable(&table, false); err != nil {
		t.Fatal(err)
	}
	want := `NODE     STATE              EXPECTED       MECHANISM        CHECKS
node-a   Encapsulated       Encapsulated   kubens.service   ok
node-b   NotEncapsulated    -              -                -
node-c   Unknown(Timeout)   -              -                -
3 nodes: 1 Encapsulated, 1 NotEncapsulated, 0 Split, 1 Unknown. 2 not Encapsulated.
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}

	var wide bytes.Buffer
	if err := rep.PrintTable(&wide, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MOUNTS(PID1/KUBELET)", "60/460", "400", "4026533000", "no result within"} {
		if !strings.Contains(wide.String(), s) {
			t.Errorf("wide output lacks %q:\n%s", s, wide.String())
		}
	}

	// The JSON field names are the documented schema (README, verify).
	var js bytes.Buffer
	if err := rep.PrintJSON(&js); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(js.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	if generic["apiVersion"] != ReportAPIVersion || generic["kind"] != ReportKind || generic["expect"] != "Encapsulated" {
		t.Errorf("header %v", generic)
	}
	node := generic["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"node", "state", "expected", "mechanism", "runtime", "namespaces", "mounts", "checks"} {
		if _, ok := node[k]; !ok {
			t.Errorf("node lacks %q: %v", k, node)
		}
	}
	var yml bytes.Buffer
	if err := rep.PrintYAML(&yml); err != nil || !strings.Contains(yml.String(), "kind: VerifyReport") {
		t.Errorf("yaml: %v\n%s", err, yml.String())
	}

	ok := NewReport(NotEncapsulated, sampleResults()[1:2])
	if !ok.AllAsExpected() || !strings.Contains(ok.SummaryLine(), "1 node: ") || !strings.Contains(ok.SummaryLine(), "All as expected") {
		t.Errorf("summary line %q", ok.SummaryLine())
	}
}

func TestExpected(t *testing.T) {
	mc := func(units string) *mcfgv1.MachineConfig {
		return &mcfgv1.MachineConfig{Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{
			Raw: []byte(`{"ignition":{"version":"3.4.0"},"systemd":{"units":[` + units + `]}}`)}}}
	}
	configs := map[string]*mcfgv1.MachineConfig{
		"rendered-on":  mc(`{"name":"kubens.service","enabled":true}`),
		"rendered-ztp": mc(`{"name":"container-mount-namespace.service","enabled":true}`),
		"rendered-off": mc(`{"name":"kubens.service","enabled":false}`),
		"rendered-bad": {Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{}`)}}},
	}
	gets := 0
	x := &ExpectedResolver{Get: func(_ context.Context, name string) (*mcfgv1.MachineConfig, error) {
		gets++
		if c, ok := configs[name]; ok {
			return c, nil
		}
		return nil, errors.New("not found")
	}}
	node := func(cfg string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if cfg != "" {
			n.Annotations[CurrentConfigAnnotation] = cfg
		}
		return n
	}
	for cfg, want := range map[string]State{
		"rendered-on": Encapsulated, "rendered-ztp": Encapsulated, "rendered-off": NotEncapsulated,
		"rendered-bad": StateUnknown, "rendered-missing": StateUnknown, "": "",
	} {
		if got := x.For(context.Background(), node(cfg)); got != want {
			t.Errorf("%q: %q, want %q", cfg, got, want)
		}
	}
	before := gets
	x.For(context.Background(), node("rendered-on"))
	if gets != before {
		t.Error("a rendered config was fetched twice")
	}
}
