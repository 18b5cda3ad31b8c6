package verify

import (
	"context"
	"encoding/json"
	"errors"
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

// TestReport: the summary counts, and the JSON field names, which are the
// documented schema (README, verify). The table and -o formats are
// pkg/plugin's.
func TestReport(t *testing.T) {
	rep := NewReport(Encapsulated, sampleResults())
	if rep.Summary != (Summary{Total: 3, Encapsulated: 1, NotEncapsulated: 1, Unknown: 1, NotAsExpected: 2}) || rep.AllAsExpected() {
		t.Fatalf("summary %+v", rep.Summary)
	}

	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(js, &generic); err != nil {
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

	if ok := NewReport(NotEncapsulated, sampleResults()[1:2]); !ok.AllAsExpected() || ok.Summary.Total != 1 {
		t.Errorf("summary %+v", ok.Summary)
	}
	if empty := NewReport(Encapsulated, nil); empty.Nodes == nil || !empty.AllAsExpected() {
		t.Errorf("empty report %+v", empty)
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
