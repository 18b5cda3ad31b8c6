package measure

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// node makes a measured node with CPU cpu, mount units units and PID 1 /
// kubelet mount counts.
func node(name string, cpu float64, units, pid1, kubelet int) NodeMeasurement {
	return NodeMeasurement{
		Node: name, State: Measured, PID1Comm: "systemd", PID1CPUPercent: cpu,
		Mounts:     Mounts{PID1: pid1, Kubelet: kubelet, Hidden: max(kubelet-pid1, 0)},
		MountUnits: units, ChurnPerSecond: 0.5, Pods: 30,
	}
}

func report(nodes ...NodeMeasurement) *MeasureReport {
	return NewMeasureReport(10*time.Second, nodes)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestCompareSameNodes(t *testing.T) {
	before := report(node("w0", 12, 400, 450, 450), node("w1", 10, 300, 350, 350))
	after := report(node("w1", 2, 40, 60, 350), node("w0", 4, 50, 70, 460))
	c := Compare(before, after)
	if len(c.Nodes) != 2 || c.Nodes[0].Node != "w0" || c.Nodes[1].Node != "w1" {
		t.Fatalf("nodes %+v", c.Nodes)
	}
	w0 := c.Nodes[0]
	if w0.Presence != Both || deref(w0.CPUBefore) != 12.0 || deref(w0.CPUAfter) != 4.0 || deref(w0.CPUDelta) != -8.0 ||
		deref(w0.MountUnitsBefore) != 400 || deref(w0.MountUnitsAfter) != 50 ||
		deref(w0.PID1MountsBefore) != 450 || deref(w0.PID1MountsAfter) != 70 ||
		deref(w0.HiddenBefore) != 0 || deref(w0.HiddenAfter) != 390 {
		t.Errorf("w0: %+v", w0)
	}
	cl := c.Cluster
	if cl.Both != 2 || cl.New != 0 || cl.Gone != 0 || cl.CPUNodes != 2 || cl.UnitNodes != 2 ||
		deref(cl.AvgCPUBefore) != 11.0 || deref(cl.AvgCPUAfter) != 3.0 || deref(cl.AvgCPUDelta) != -8.0 ||
		deref(cl.MountUnitsBefore) != 700 || deref(cl.MountUnitsAfter) != 90 {
		t.Errorf("cluster: %+v", cl)
	}
}

func TestCompareNewAndGone(t *testing.T) {
	before := report(node("a", 10, 100, 150, 150), node("gone", 9, 90, 100, 100))
	after := report(node("a", 5, 50, 60, 150), node("new", 1, 10, 20, 120))
	c := Compare(before, after)
	got := map[string]NodeComparison{}
	for _, n := range c.Nodes {
		got[n.Node] = n
	}
	if len(c.Nodes) != 3 {
		t.Fatalf("nodes dropped or added: %+v", c.Nodes)
	}
	if g := got["gone"]; g.Presence != Gone || deref(g.CPUBefore) != 9.0 || g.CPUAfter != nil || g.CPUDelta != nil || g.StateAfter != "" || g.StateBefore != Measured {
		t.Errorf("gone: %+v", g)
	}
	if n := got["new"]; n.Presence != New || n.CPUBefore != nil || deref(n.CPUAfter) != 1.0 || n.CPUDelta != nil || n.MountUnitsBefore != nil {
		t.Errorf("new: %+v", n)
	}
	// The cluster line is over "a" alone.
	cl := c.Cluster
	if cl.Both != 1 || cl.New != 1 || cl.Gone != 1 || cl.CPUNodes != 1 || deref(cl.AvgCPUDelta) != -5.0 || deref(cl.MountUnitsAfter) != 50 {
		t.Errorf("cluster: %+v", cl)
	}
}

func TestCompareEmpty(t *testing.T) {
	for _, pair := range [][2]*MeasureReport{{report(), report()}, {nil, nil}, {nil, report()}} {
		c := Compare(pair[0], pair[1])
		if len(c.Nodes) != 0 || c.Cluster != (ClusterComparison{}) {
			t.Errorf("empty: %+v", c)
		}
	}
	// Everything gone / everything new.
	if c := Compare(report(node("a", 1, 1, 1, 1)), nil); len(c.Nodes) != 1 || c.Nodes[0].Presence != Gone || c.Cluster.AvgCPUBefore != nil {
		t.Errorf("all gone: %+v", c)
	}
}

func TestCompareUnknownNodes(t *testing.T) {
	unknownCPU := node("b", 7, 70, 80, 80)
	unknownCPU.State, unknownCPU.Reason = StateUnknown, ReasonPID1Restarted
	unknownCPU.PID1CPUPercent = -1
	before := report(node("a", 10, 100, 150, 150), unknownCPU, Unmeasured("c", "Timeout", "slow"))
	after := report(Unmeasured("a", "BadReport", "x"), node("b", 2, 20, 30, 80), node("c", 3, 30, 40, 90))
	c := Compare(before, after)
	if len(c.Nodes) != 3 {
		t.Fatalf("nodes %+v", c.Nodes)
	}
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	if a.Presence != Both || a.StateAfter != StateUnknown || deref(a.CPUBefore) != 10.0 || a.CPUAfter != nil || a.CPUDelta != nil || a.MountUnitsAfter != nil {
		t.Errorf("a: %+v", a)
	}
	// An Unknown node's CPU is not used even if a number is there, but its
	// other figures are.
	if b.CPUBefore != nil || deref(b.CPUAfter) != 2.0 || b.CPUDelta != nil || deref(b.MountUnitsBefore) != 70 {
		t.Errorf("b: %+v", b)
	}
	if cc.StateBefore != StateUnknown || cc.CPUBefore != nil || cc.MountUnitsBefore != nil || cc.HiddenBefore != nil || deref(cc.HiddenAfter) != 50 {
		t.Errorf("c: %+v", cc)
	}
	cl := c.Cluster
	if cl.Both != 3 || cl.CPUNodes != 0 || cl.AvgCPUBefore != nil || cl.UnitNodes != 1 || deref(cl.MountUnitsBefore) != 70 || deref(cl.MountUnitsAfter) != 20 {
		t.Errorf("cluster: %+v", cl)
	}
}

func TestReadBaseline(t *testing.T) {
	want := report(node("w0", 12.25, 400, 450, 450), Unmeasured("w1", "Timeout", "slow"))
	var js bytes.Buffer
	if err := jsonEncode(&js, want); err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"json": js.Bytes(), "yaml": y} {
		got, err := ReadBaseline(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c := Compare(got, want); c.Cluster.Both != 2 || deref(c.Nodes[0].CPUDelta) != 0.0 || got.Duration.Duration != 10*time.Second {
			t.Errorf("%s: read back differently: %+v", name, got)
		}
		if got.Nodes[1].PID1CPUPercent != -1 || got.Nodes[1].Reason != "Timeout" {
			t.Errorf("%s: unknown node read back as %+v", name, got.Nodes[1])
		}
	}
	// Fields a later release adds are ignored.
	if _, err := ReadBaseline(strings.NewReader(`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"MeasureReport","duration":"5s","nodes":[],"future":1}`)); err != nil {
		t.Errorf("unknown field: %v", err)
	}

	bad := []struct{ in, wantErr string }{
		{`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"VerifyReport","nodes":[]}`, `kind "VerifyReport"`},
		{`{"apiVersion":"oc-kubens.io/v1beta1","kind":"MeasureReport"}`, `apiVersion "oc-kubens.io/v1beta1"`},
		{"apiVersion: v1\nkind: ConfigMap\n", `kind "ConfigMap"`},
		{"", `apiVersion ""`},
		{"{not json", "neither JSON nor YAML"},
		{`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"MeasureReport","nodes":"x"}`, "not a valid MeasureReport"},
		{`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"MeasureReport","nodes":[{"node":"a"},{"node":"a"}]}`, `node "a" twice`},
		{`{"apiVersion":"oc-kubens.io/v1alpha1","kind":"MeasureReport","nodes":[{"state":"Measured"}]}`, "without a name"},
	}
	for _, tt := range bad {
		_, err := ReadBaseline(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ReadBaseline(%.50q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
		}
	}
	var wk *WrongKindError
	if _, err := ReadBaseline(strings.NewReader(`{"apiVersion":"v1","kind":"Pod"}`)); !errors.As(err, &wk) || wk.Kind != "Pod" {
		t.Errorf("wrong kind gives %v, want a *WrongKindError", err)
	}
}

func jsonEncode(b *bytes.Buffer, v any) error {
	return json.NewEncoder(b).Encode(v)
}
