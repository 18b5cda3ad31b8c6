package mcosim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func mc(name, role, ign string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}},
	}
}

func enableKubens(name, role string) *mcfgv1.MachineConfig {
	return mc(name, role, `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`)
}

func units(t *testing.T, spec mcfgv1.MachineConfigSpec) map[string]map[string]any {
	t.Helper()
	var cfg struct {
		Systemd struct {
			Units []map[string]any `json:"units"`
		} `json:"systemd"`
	}
	if err := json.Unmarshal(spec.Config.Raw, &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, u := range cfg.Systemd.Units {
		out[u["name"].(string)] = u
	}
	return out
}

func TestMergeConfigs(t *testing.T) {
	tests := []struct {
		name        string
		mcs         []*mcfgv1.MachineConfig
		wantEnabled bool
		check       func(t *testing.T, u map[string]map[string]any)
		wantErr     string
	}{
		{
			name:        "base ships kubens disabled",
			mcs:         []*mcfgv1.MachineConfig{baseConfig("worker")},
			wantEnabled: false,
		},
		{
			name:        "a later MC enables it and keeps the contents",
			mcs:         []*mcfgv1.MachineConfig{enableKubens("99-kubens-worker", "worker"), baseConfig("worker")},
			wantEnabled: true,
			check: func(t *testing.T, u map[string]map[string]any) {
				if c, _ := u[KubensUnit]["contents"].(string); !strings.Contains(c, "unshare --mount") {
					t.Errorf("contents lost in merge: %q", c)
				}
				if d, _ := u["kubelet.service"]["dropins"].([]any); len(d) != 1 {
					t.Errorf("kubelet drop-ins: %v", d)
				}
			},
		},
		{
			name: "lexical order: a later name disables again",
			mcs: []*mcfgv1.MachineConfig{
				baseConfig("worker"),
				enableKubens("50-enable", "worker"),
				mc("60-disable", "worker", `{"ignition":{"version":"3.1.0"},"systemd":{"units":[{"name":"kubens.service","enabled":false}]}}`),
			},
			wantEnabled: false,
		},
		{
			name: "custom pool configs override worker ones whatever the names",
			mcs: []*mcfgv1.MachineConfig{
				baseConfig("worker"),
				mc("00-infra-off", "infra", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":false}]}}`),
				enableKubens("99-kubens-worker", "worker"),
			},
			wantEnabled: false,
		},
		{
			name: "drop-ins merge by name, mask is kept",
			mcs: []*mcfgv1.MachineConfig{
				baseConfig("worker"),
				mc("10-x", "worker", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubelet.service","dropins":[{"name":"20-x.conf","contents":"[Service]\n"}]},{"name":"foo.service","mask":true}]}}`),
			},
			check: func(t *testing.T, u map[string]map[string]any) {
				if d, _ := u["kubelet.service"]["dropins"].([]any); len(d) != 2 {
					t.Errorf("kubelet drop-ins: %v", d)
				}
				if m, _ := u["foo.service"]["mask"].(bool); !m {
					t.Errorf("mask lost: %v", u["foo.service"])
				}
			},
		},
		{
			name:    "invalid Ignition fails",
			mcs:     []*mcfgv1.MachineConfig{baseConfig("worker"), mc("99-bad", "worker", `{"ignition":{"version":"9.0.0"}}`)},
			wantErr: "failed to parse Ignition config: parsing Ignition config failed: unknown version",
		},
		{
			name:    "nothing to merge",
			wantErr: "no MachineConfigs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := mergeConfigs(tt.mcs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := unitEnabled(spec.Config.Raw, KubensUnit)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantEnabled {
				t.Errorf("kubens enabled = %v, want %v", got, tt.wantEnabled)
			}
			if tt.check != nil {
				tt.check(t, units(t, spec))
			}
		})
	}
}

func TestRenderedNameStable(t *testing.T) {
	name := func(mcs ...*mcfgv1.MachineConfig) string {
		t.Helper()
		spec, err := mergeConfigs(mcs)
		if err != nil {
			t.Fatal(err)
		}
		n, err := renderedName("worker", spec)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := name(baseConfig("worker"))
	if !strings.HasPrefix(base, "rendered-worker-") || len(base) != len("rendered-worker-")+32 {
		t.Fatalf("name %q is not rendered-worker-<md5>", base)
	}
	if again := name(baseConfig("worker")); again != base {
		t.Errorf("same input, different names: %s %s", base, again)
	}
	noop := mc("50-noop", "worker", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":false}]}}`)
	if n := name(baseConfig("worker"), noop); n != base {
		t.Errorf("an MC that changes nothing changed the name: %s -> %s", base, n)
	}
	on := name(baseConfig("worker"), enableKubens("99-kubens-worker", "worker"))
	if on == base {
		t.Error("enabling kubens kept the name")
	}
	if n := name(enableKubens("99-kubens-worker", "worker"), baseConfig("worker")); n != on {
		t.Errorf("input order changed the name: %s vs %s", n, on)
	}
}

func pool(name string, roles []string, nodeSel map[string]string) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles},
			}},
			NodeSelector: &metav1.LabelSelector{MatchLabels: nodeSel},
		},
	}
}

func TestSelectors(t *testing.T) {
	master := pool("master", []string{"master"}, map[string]string{"node-role.kubernetes.io/master": ""})
	worker := pool("worker", []string{"worker"}, map[string]string{"node-role.kubernetes.io/worker": ""})
	infra := pool("infra", []string{"worker", "infra"}, map[string]string{"node-role.kubernetes.io/infra": ""})
	gpu := pool("gpu", []string{"worker", "gpu"}, map[string]string{"node-role.kubernetes.io/gpu": ""})
	empty := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "empty"},
		Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: &metav1.LabelSelector{}, NodeSelector: &metav1.LabelSelector{}}}
	pools := []*mcfgv1.MachineConfigPool{master, worker, infra, gpu, empty}

	t.Run("configs for pool", func(t *testing.T) {
		mcs := []*mcfgv1.MachineConfig{baseConfig("worker"), baseConfig("master"), enableKubens("99-kubens-infra", "infra")}
		for _, tt := range []struct {
			pool *mcfgv1.MachineConfigPool
			want string
		}{
			{worker, "00-worker"}, {master, "00-master"}, {infra, "00-worker,99-kubens-infra"}, {empty, ""},
		} {
			got, err := configsForPool(tt.pool, mcs)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if s := strings.Join(names, ","); s != tt.want {
				t.Errorf("%s: got %q, want %q", tt.pool.Name, s, tt.want)
			}
		}
	})

	t.Run("pool for node", func(t *testing.T) {
		for _, tt := range []struct {
			labels  []string
			want    string
			wantErr bool
		}{
			{[]string{"worker"}, "worker", false},
			{[]string{"master", "worker"}, "master", false},
			{[]string{"worker", "infra"}, "infra", false},
			{[]string{"worker", "infra", "gpu"}, "", true},
			{[]string{"edge"}, "", false},
		} {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{}}}
			for _, l := range tt.labels {
				n.Labels["node-role.kubernetes.io/"+l] = ""
			}
			p, err := poolForNode(n, pools)
			if (err != nil) != tt.wantErr {
				t.Errorf("%v: err = %v", tt.labels, err)
			}
			got := ""
			if p != nil {
				got = p.Name
			}
			if got != tt.want {
				t.Errorf("%v: pool %q, want %q", tt.labels, got, tt.want)
			}
		}
	})
}

func TestMaxUnavailable(t *testing.T) {
	for _, tt := range []struct {
		v       *intstr.IntOrString
		nodes   int
		want    int
		wantErr bool
	}{
		{nil, 3, 1, false},
		{ptr(intstr.FromInt32(2)), 3, 2, false},
		{ptr(intstr.FromInt32(0)), 3, 1, false},
		{ptr(intstr.FromString("50%")), 5, 2, false},
		{ptr(intstr.FromString("10%")), 3, 1, false},
		{ptr(intstr.FromString("100%")), 4, 4, false},
		{ptr(intstr.FromString("lots")), 4, 0, true},
	} {
		p := pool("worker", nil, nil)
		p.Spec.MaxUnavailable = tt.v
		got, err := maxUnavailable(p, tt.nodes)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%v of %d: got %d, %v; want %d", tt.v, tt.nodes, got, err, tt.want)
		}
	}
}

func node(name, cur, des, state, reason string, mod ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}
	for k, v := range map[string]string{CurrentConfigAnnotation: cur, DesiredConfigAnnotation: des, StateAnnotation: state, ReasonAnnotation: reason} {
		if v != "" {
			n.Annotations[k] = v
		}
	}
	for _, m := range mod {
		m(n)
	}
	return n
}

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func notReady(n *corev1.Node) {
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}
}

func TestCalculateStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type want struct {
		machine, updated, ready, unavailable, degraded        int32
		updatedCond, updatingCond, nodeDegraded, degradedCond corev1.ConditionStatus
		statusConfig                                          string
		updatingMsg, degradedMsg                              string
	}
	for _, tt := range []struct {
		name   string
		paused bool
		render bool // RenderDegraded=True already on the pool
		nodes  []*corev1.Node
		want   want
	}{
		{
			name:  "all updated",
			nodes: []*corev1.Node{node("a", "new", "new", "Done", ""), node("b", "new", "new", "Done", "")},
			want:  want{2, 2, 2, 0, 0, "True", "False", "False", "False", "new", "", ""},
		},
		{
			name:  "new render, nobody moved yet",
			nodes: []*corev1.Node{node("a", "old", "old", "Done", ""), node("b", "old", "old", "Done", "")},
			want:  want{2, 0, 0, 0, 0, "False", "True", "False", "False", "old", "All nodes are updating to MachineConfig new", ""},
		},
		{
			name: "one rebooting (Working, post-config-action Rebooting), cordoned",
			nodes: []*corev1.Node{
				node("a", "old", "new", "Working", "", cordoned, func(n *corev1.Node) { n.Annotations[PostConfigActionAnnotation] = StateRebooting }),
				node("b", "new", "new", "Done", ""),
				node("c", "old", "old", "Done", ""),
			},
			want: want{3, 1, 1, 1, 0, "False", "True", "False", "False", "old", "All nodes are updating to MachineConfig new", ""},
		},
		{
			name:  "updated but NotReady is not ready and unavailable",
			nodes: []*corev1.Node{node("a", "new", "new", "Done", "", notReady)},
			want:  want{1, 1, 0, 1, 0, "False", "True", "False", "False", "old", "All nodes are updating to MachineConfig new", ""},
		},
		{
			name:   "paused",
			paused: true,
			nodes:  []*corev1.Node{node("a", "old", "old", "Done", "")},
			want:   want{1, 0, 0, 0, 0, "False", "False", "False", "False", "old", "Pool is paused; will not update to MachineConfig new", ""},
		},
		{
			name: "degraded node with reason",
			nodes: []*corev1.Node{
				node("a", "old", "new", "Degraded", "failed to drain node: a: pod blocked"),
				node("b", "old", "old", "Done", ""),
			},
			want: want{2, 0, 0, 0, 1, "False", "True", "True", "True", "old", "All nodes are updating to MachineConfig new",
				`Node a is reporting: "failed to drain node: a: pod blocked"`},
		},
		{
			name:   "render degraded makes the pool Degraded",
			render: true,
			nodes:  []*corev1.Node{node("a", "new", "new", "Done", "")},
			want:   want{1, 1, 1, 0, 0, "True", "False", "False", "True", "new", "", ""},
		},
		{
			name: "empty pool is updated",
			want: want{0, 0, 0, 0, 0, "True", "False", "False", "False", "new", "", ""},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pool("worker", []string{"worker"}, nil)
			p.Generation = 7
			p.Spec.Paused = tt.paused
			p.Spec.Configuration.Name = "new"
			p.Status.Configuration.Name = "old"
			if tt.render {
				p.Status.Conditions = []mcfgv1.MachineConfigPoolCondition{newCondition(mcfgv1.MachineConfigPoolRenderDegraded, "True", "", "Failed to render configuration for pool worker: x", now)}
			}
			s := calculateStatus(p, tt.nodes, now)
			w := tt.want
			if s.MachineCount != w.machine || s.UpdatedMachineCount != w.updated || s.ReadyMachineCount != w.ready ||
				s.UnavailableMachineCount != w.unavailable || s.DegradedMachineCount != w.degraded {
				t.Errorf("counts m/u/r/un/d = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d", s.MachineCount, s.UpdatedMachineCount,
					s.ReadyMachineCount, s.UnavailableMachineCount, s.DegradedMachineCount, w.machine, w.updated, w.ready, w.unavailable, w.degraded)
			}
			if s.ObservedGeneration != 7 {
				t.Errorf("observedGeneration %d", s.ObservedGeneration)
			}
			if s.Configuration.Name != w.statusConfig {
				t.Errorf("status.configuration %q, want %q", s.Configuration.Name, w.statusConfig)
			}
			for typ, st := range map[mcfgv1.MachineConfigPoolConditionType]corev1.ConditionStatus{
				"Updated": w.updatedCond, "Updating": w.updatingCond, "NodeDegraded": w.nodeDegraded, "Degraded": w.degradedCond,
			} {
				c := getCondition(s.Conditions, typ)
				if c == nil || c.Status != st {
					t.Errorf("%s = %v, want %s", typ, c, st)
				}
			}
			if c := getCondition(s.Conditions, "Updating"); c.Message != w.updatingMsg {
				t.Errorf("Updating message %q, want %q", c.Message, w.updatingMsg)
			}
			if c := getCondition(s.Conditions, "NodeDegraded"); c.Message != w.degradedMsg {
				t.Errorf("NodeDegraded message %q, want %q", c.Message, w.degradedMsg)
			}
			if c := getCondition(s.Conditions, "Degraded"); c.Message != w.degradedMsg {
				t.Errorf("Degraded message %q, want %q", c.Message, w.degradedMsg)
			}
			if tt.render && getCondition(s.Conditions, "RenderDegraded") == nil {
				t.Error("RenderDegraded dropped")
			}
		})
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s mcfgv1.MachineConfigPoolStatus
	setCondition(&s, newCondition("Updating", "True", "", "to a", t0))
	setCondition(&s, newCondition("Updating", "True", "", "to b", t0.Add(time.Minute)))
	if c := getCondition(s.Conditions, "Updating"); !c.LastTransitionTime.Time.Equal(t0) || c.Message != "to b" {
		t.Errorf("got %+v", c)
	}
	setCondition(&s, newCondition("Updating", "False", "", "", t0.Add(2*time.Minute)))
	if c := getCondition(s.Conditions, "Updating"); !c.LastTransitionTime.Time.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("transition time not moved: %+v", c)
	}
}

func TestUpdateCandidates(t *testing.T) {
	p := pool("worker", []string{"worker"}, nil)
	p.Spec.Configuration.Name = "new"
	names := func(ns []*corev1.Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		name     string
		maxU     int
		nodes    []*corev1.Node
		want     string
		capacity int
	}{
		{"one at a time", 1, []*corev1.Node{node("a", "old", "old", "Done", ""), node("b", "old", "old", "Done", "")}, "a", 1},
		{"two at a time", 2, []*corev1.Node{node("a", "old", "old", "Done", ""), node("b", "old", "old", "Done", ""), node("c", "old", "old", "Done", "")}, "a,b", 2},
		{"one busy uses the budget", 1, []*corev1.Node{node("a", "old", "new", "Working", "", cordoned), node("b", "old", "old", "Done", "")}, "", 0},
		{"one busy of two", 2, []*corev1.Node{node("a", "old", "new", "Working", "", cordoned), node("b", "old", "old", "Done", ""), node("c", "old", "old", "Done", "")}, "b", 1},
		{"a node failing this config holds the rollout", 1, []*corev1.Node{node("a", "old", "new", "Degraded", "x"), node("b", "old", "old", "Done", "")}, "", 0},
		{"NotReady counts as unavailable", 1, []*corev1.Node{node("a", "new", "new", "Done", "", notReady), node("b", "old", "old", "Done", "")}, "", 0},
		// As in the MCO, a node without annotations (still booting) is unavailable.
		{"a node not booted yet uses the budget", 1, []*corev1.Node{node("a", "", "", "", ""), node("b", "old", "old", "Done", "")}, "", 0},
		{"a node not booted yet is never a candidate", 2, []*corev1.Node{node("a", "", "", "", ""), node("b", "old", "old", "Done", "")}, "b", 1},
		{"all done", 1, []*corev1.Node{node("a", "new", "new", "Done", "")}, "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, capacity := updateCandidates(p, tt.nodes, tt.maxU)
			if names(got) != tt.want || capacity != tt.capacity {
				t.Errorf("got %q (capacity %d), want %q (capacity %d)", names(got), capacity, tt.want, tt.capacity)
			}
		})
	}
}

func TestReadYourWrites(t *testing.T) {
	m := &MCO{pending: map[string]*pendingWrite{}}
	cached := node("a", "old", "old", "Done", "")
	m.recordWrite("a", map[string]string{DesiredConfigAnnotation: "new"}, nil)
	m.recordWrite("a", map[string]string{StateAnnotation: "Working"}, ptr(true))
	v := m.view(cached)
	if v.Annotations[DesiredConfigAnnotation] != "new" || v.Annotations[StateAnnotation] != "Working" || !v.Spec.Unschedulable {
		t.Fatalf("view misses own writes: %v unschedulable=%v", v.Annotations, v.Spec.Unschedulable)
	}
	if cached.Annotations[DesiredConfigAnnotation] != "old" {
		t.Fatal("view mutated the cached object")
	}
	caught := node("a", "old", "new", "Working", "", cordoned)
	if m.view(caught) != caught || len(m.pending) != 0 {
		t.Error("a cache that shows the writes should end the overlay")
	}
}
