package plugin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

func okRead(cmds ...string) wrap.UnitRead {
	return wrap.UnitRead{Status: wrap.StatusOK, Unit: wrap.UnitFile{Files: []string{"/etc/systemd/system/agent.service"}, ExecStart: cmds}}
}

// Each way the nodes can answer, and what wrap makes of it: one command
// when every node agrees, else one line per problem naming the nodes and
// the way out.
func TestCommandsFromNodes(t *testing.T) {
	poolOf := map[string]string{"w1": "worker", "w2": "worker", "i1": "infra"}
	nodes := []string{"i1", "w1", "w2"}
	all := func(r wrap.UnitRead) map[string]wrap.NodeUnits {
		out := map[string]wrap.NodeUnits{}
		for _, n := range nodes {
			out[n] = wrap.NodeUnits{Node: n, Units: map[string]wrap.UnitRead{"agent.service": r}}
		}
		return out
	}
	tests := []struct {
		name  string
		nodes []string
		reads map[string]wrap.NodeUnits
		want  []string // the commands
		probs []string // substrings, one per problem line
	}{
		{name: "all agree", nodes: nodes, reads: all(okRead("/usr/bin/agent -v")), want: []string{"/usr/bin/agent -v"}},
		{name: "oneshot with two commands", nodes: nodes, reads: all(okRead("/bin/a", "/bin/b")), want: []string{"/bin/a", "/bin/b"}},
		{name: "no nodes", nodes: nil, probs: []string{"no node to read it from (the pools of role worker have no nodes); give its command with --exec-start agent.service=CMD"}},
		{name: "missing everywhere", nodes: nodes, reads: all(wrap.UnitRead{Status: wrap.StatusMissing}),
			probs: []string{"agent.service is not installed on i1 (pool infra); w1, w2 (pool worker): install it first"}},
		{name: "already wrapped", nodes: []string{"w1"}, reads: map[string]wrap.NodeUnits{"w1": {Node: "w1", Units: map[string]wrap.UnitRead{
			"agent.service": {Status: wrap.StatusOK, Unit: wrap.UnitFile{ExecStart: []string{"/usr/bin/kubensenter /bin/a"}, WrappedBy: "/etc/systemd/system/agent.service.d/99-kubens-wrapper.conf"}}}}},
			probs: []string{"agent.service on node w1 is already wrapped (/etc/systemd/system/agent.service.d/99-kubens-wrapper.conf)"}},
		{name: "runs as a user", nodes: []string{"w1"}, reads: map[string]wrap.NodeUnits{"w1": {Node: "w1", Units: map[string]wrap.UnitRead{
			"agent.service": {Status: wrap.StatusOK, Unit: wrap.UnitFile{ExecStart: []string{"/bin/a"}, User: "agent"}}}}},
			probs: []string{"runs as User=agent: kubensenter needs root"}},
		{name: "no ExecStart", nodes: []string{"w1"}, reads: map[string]wrap.NodeUnits{"w1": {Node: "w1", Units: map[string]wrap.UnitRead{
			"agent.service": {Status: wrap.StatusOK, Err: wrap.ErrNoExecStart}}}},
			probs: []string{"agent.service on node w1: cannot read its ExecStart: the unit has no ExecStart command"}},
		{name: "a node not read", nodes: []string{"w1", "w2"}, reads: map[string]wrap.NodeUnits{
			"w1": {Node: "w1", Units: map[string]wrap.UnitRead{"agent.service": okRead("/bin/a")}},
			"w2": {Node: "w2", Reason: "Timeout", Message: "took too long"}},
			probs: []string{"agent.service could not be read on w2 (Timeout: took too long); retry, or give its command with --exec-start"}},
		{name: "nodes disagree", nodes: nodes, reads: map[string]wrap.NodeUnits{
			"i1": {Node: "i1", Units: map[string]wrap.UnitRead{"agent.service": okRead("/bin/a --infra")}},
			"w1": {Node: "w1", Units: map[string]wrap.UnitRead{"agent.service": okRead("/bin/a")}},
			"w2": {Node: "w2", Units: map[string]wrap.UnitRead{"agent.service": okRead("/bin/a")}}},
			probs: []string{`the nodes of role worker disagree on agent.service's ExecStart: w1, w2 (pool worker): "/bin/a"; i1 (pool infra): "/bin/a --infra"; make them agree`}},
		{name: "systemd not there", nodes: []string{"w1"}, reads: map[string]wrap.NodeUnits{"w1": {Node: "w1", Units: map[string]wrap.UnitRead{
			"agent.service": {Status: wrap.StatusUnknown, Err: wrap.ErrNoSystemd}}}},
			probs: []string{"agent.service could not be read on w1 (unknown)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := change.CommandsFromNodes("agent.service", "worker", tt.nodes, poolOf, tt.reads)
			var probs []string
			for _, p := range problems {
				probs = append(probs, phraseUnitProblem(p))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("commands %q, want %q", got, tt.want)
			}
			if len(probs) != len(tt.probs) {
				t.Fatalf("problems %q, want %d like %q", probs, len(tt.probs), tt.probs)
			}
			for i, p := range tt.probs {
				if !strings.Contains(probs[i], p) {
					t.Errorf("problem %q, want it to contain %q", probs[i], p)
				}
			}
		})
	}
}

func TestPoolRole(t *testing.T) {
	label := func(role string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{manifests.RoleLabel: role}}
	}
	in := func(roles ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: manifests.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles}}}
	}
	for _, tt := range []struct {
		pool    string
		sel     *metav1.LabelSelector
		want    string
		wantErr string
	}{
		{"worker", label("worker"), "worker", ""},
		{"infra", in("worker", "infra"), "infra", ""},
		{"arbiter", in("arbiter"), "arbiter", ""},
		{"odd", in("a", "b"), "", "selects several roles (a, b); name one with --role"},
		{"bare", nil, "", "does not select MachineConfigs by"},
	} {
		p := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: tt.pool}, Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: tt.sel}}
		got, err := poolRole(p)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %q %v, want %q %q", tt.pool, got, err, tt.want, tt.wantErr)
		}
	}
}

// wrapPlan on a cluster with a worker and a custom infra pool: wrapping
// for the worker role creates 99-kubens-wrap-worker, reaches both pools
// and reboots them; the same target again is unchanged; unwrapping the last
// unit deletes the object.
func TestWrapPlan(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{mcfixture.Pool("worker", "worker"), mcfixture.Pool("infra", "worker", "infra"), mcfixture.Pool("master", "master")}
	kubens := mcfixture.Managed(mcfixture.MC("99-kubens-worker", "worker", map[string]bool{manifests.UnitName: true}))
	snap := mcp.Snapshot{Pools: pools, MachineConfigs: []mcfgv1.MachineConfig{mcfixture.MC("00-worker", "worker", nil), kubens}}
	text, err := wrap.DropIn("agent.service", []string{"-/usr/bin/agent --flag"})
	if err != nil {
		t.Fatal(err)
	}
	target := &change.WrapTarget{Role: "worker", Before: map[string]string{}, After: map[string]string{"agent.service": text}, Added: []string{"agent.service"}}
	plan, err := change.PlanWrap(snap, []*change.WrapTarget{target}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].Action != change.Create || plan.Changes[0].Want == nil || !manifests.IsManagedWrap(plan.Changes[0].Want) {
		t.Fatalf("changes %+v ", plan.Changes)
	}
	var out bytes.Buffer
	printPlan(&out, plan)
	for _, want := range []string{
		"Plan to run host services inside the Kubernetes mount namespace",
		"create    99-kubens-wrap-worker",
		"wrap      agent.service on role worker: ExecStart=-/usr/bin/kubensenter /usr/bin/agent --flag",
		"infra      2 nodes", "worker     2 nodes",
		"kubens.service stays enabled, but the merged config changes: nodes REBOOT",
		"REBOOT every node of pools infra, worker (4 nodes)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pool master") && !strings.Contains(out.String(), "Note: pool master") {
		t.Errorf("master is not reached: %s", out.String())
	}
	exps := plan.Expectations()
	if len(exps) != 2 || exps[0].Wrapped["agent.service"] != text || exps[0].Present[0] != "99-kubens-wrap-worker" {
		t.Errorf("expectations %+v", exps)
	}

	// The object as applied: the same plan again changes nothing.
	have := plan.Changes[0].Want.DeepCopy()
	snap.MachineConfigs = append(snap.MachineConfigs, *have)
	same := &change.WrapTarget{Role: "worker", Have: have, Before: map[string]string{"agent.service": text}, After: map[string]string{"agent.service": text}}
	plan, err = change.PlanWrap(snap, []*change.WrapTarget{same}, false)
	if err != nil || plan.Changes[0].Action != change.Unchanged || plan.SendsAnything() {
		t.Fatalf("second wrap: %+v %v", plan.Changes, err)
	}

	// Wrapping one more unit later updates the same object, keeping the
	// first; unwrapping it again takes the object back to one unit.
	textB, err := wrap.DropIn("b.service", []string{"/bin/b"})
	if err != nil {
		t.Fatal(err)
	}
	more := &change.WrapTarget{Role: "worker", Have: have, Before: map[string]string{"agent.service": text},
		After: map[string]string{"agent.service": text, "b.service": textB}, Added: []string{"b.service"}}
	plan, err = change.PlanWrap(snap, []*change.WrapTarget{more}, false)
	if err != nil || plan.Changes[0].Action != change.Update || plan.Changes[0].Want.Name != "99-kubens-wrap-worker" {
		t.Fatalf("wrap one more: %+v %v", plan.Changes, err)
	}
	if cfg, err := manifests.ParseConfig(plan.Changes[0].Want.Spec.Config.Raw); err != nil || strings.Join(manifests.WrappedUnits(cfg), ",") != "agent.service,b.service" {
		t.Fatalf("wrap one more renders %s (%v)", plan.Changes[0].Want.Spec.Config.Raw, err)
	}
	withB := plan.Changes[0].Want.DeepCopy()
	less := &change.WrapTarget{Role: "worker", Have: withB, Before: map[string]string{"agent.service": text, "b.service": textB},
		After: map[string]string{"agent.service": text}, Removed: []string{"b.service"}}
	plan, err = change.PlanWrap(snap, []*change.WrapTarget{less}, true)
	if err != nil || plan.Changes[0].Action != change.Update || !jsonEqual(plan.Changes[0].Want.Spec.Config.Raw, have.Spec.Config.Raw) {
		t.Fatalf("unwrap one of two: %+v %v", plan.Changes, err)
	}

	// Unwrapping the only unit deletes the object; pools lose the drop-in.
	gone := &change.WrapTarget{Role: "worker", Have: have, Before: map[string]string{"agent.service": text}, After: map[string]string{}, Removed: []string{"agent.service"}}
	plan, err = change.PlanWrap(snap, []*change.WrapTarget{gone}, true)
	if err != nil || plan.Changes[0].Action != change.Delete {
		t.Fatalf("unwrap: %+v %v", plan.Changes, err)
	}
	out.Reset()
	printPlan(&out, plan)
	if !strings.Contains(out.String(), "unwrap    agent.service on role worker: back to ExecStart=-/usr/bin/agent --flag") {
		t.Errorf("unwrap plan:\n%s", out.String())
	}
	exps = plan.Expectations()
	if len(exps) != 2 || len(exps[0].Wrapped) != 0 || exps[0].Wrapped == nil || exps[0].Absent[0] != "99-kubens-wrap-worker" {
		t.Errorf("unwrap expectations %+v", exps)
	}
}

// A pool without kubens.service enabled gets a note: kubensenter runs the
// unit as it is there.
func TestWrapPlanNotesPoolsWithoutEncapsulation(t *testing.T) {
	snap := mcp.Snapshot{Pools: []mcfgv1.MachineConfigPool{mcfixture.Pool("worker", "worker")}}
	text, _ := wrap.DropIn("agent.service", []string{"/bin/a"})
	plan, err := change.PlanWrap(snap, []*change.WrapTarget{{Role: "worker", Before: map[string]string{}, After: map[string]string{"agent.service": text}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printPlan(&out, plan)
	if !strings.Contains(out.String(), "Note: kubens.service is not enabled on pool worker: kubensenter runs the wrapped units in the host mount namespace") {
		t.Errorf("plan:\n%s", out.String())
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
