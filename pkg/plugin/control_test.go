package plugin

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func TestCompareMC(t *testing.T) {
	want, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	w := want[0]
	seedStyle := w.DeepCopy() // made by hand from the docs: no managed label, reordered JSON
	delete(seedStyle.Labels, manifests.ManagedByLabel)
	seedStyle.Spec.Config = runtime.RawExtension{Raw: []byte(`{"systemd":{"units":[{"name":"kubens.service","enabled":true}]},"ignition":{"version":"3.2.0"}}`)}
	disabled := w.DeepCopy()
	disabled.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"enabled":false,"name":"kubens.service"}]}}`)}
	extra := w.DeepCopy()
	extra.Spec.KernelArguments = []string{"nosmt"}
	// Item 5 of issue 9: a same-name object somebody else made, with more
	// in it than ours, is never updated (the units list is atomic under
	// server-side apply, so an update would drop their units).
	foreign := extra.DeepCopy()
	delete(foreign.Labels, manifests.ManagedByLabel)
	foreignUnits := seedStyle.DeepCopy()
	foreignUnits.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"site-agent.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}}`)}
	foreignOff := disabled.DeepCopy()
	delete(foreignOff.Labels, manifests.ManagedByLabel)
	// Ours, but a wrap config (enable --role wrap-worker would name its
	// config like wrap's): not enable's to take over.
	wrapConfig := w.DeepCopy()
	wrapConfig.Labels[manifests.ComponentLabel] = manifests.ComponentWrap
	tests := []struct {
		name string
		have *mcfgv1.MachineConfig
		want string
	}{
		{"missing", nil, actionCreate},
		{"same", w.DeepCopy(), actionUnchanged},
		// Made by hand from the docs: the same config, but not ours to
		// label, change or delete.
		{"hand-made from the docs", seedStyle, actionForeign},
		{"different config", disabled, actionUpdate},
		{"someone else's fields in ours", extra, actionUpdate},
		{"not ours, kernel arguments", foreign, actionForeign},
		{"not ours, another unit", foreignUnits, actionForeign},
		{"not ours, disabled", foreignOff, actionForeign},
		{"ours, but a wrap config", wrapConfig, actionForeign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compareMC(tt.have, w); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPlanPrint(t *testing.T) {
	on := map[string]bool{manifests.UnitName: true}
	off := mcp.Forecast{Kubens: mcp.UnitDisabled}
	infraPool, workerPool := testPool("infra", "worker", "infra"), testPool("worker", "worker")
	ours := []mcfgv1.MachineConfig{testMC("99-kubens-worker", "worker", on)}
	rollout := func(p mcfgv1.MachineConfigPool) mcp.Outcome {
		return mcp.Outcome{Pool: p.Name, Before: mcp.ForecastPool(&p, nil), After: mcp.ForecastPool(&p, ours)}
	}
	p := &rolloutPlan{
		Verb:    "enable",
		Changes: []mcChange{{Name: "99-kubens-master", Action: actionUnchanged}, {Name: "99-kubens-worker", Action: actionCreate}},
		Pools: []poolPlan{
			{Name: "infra", Machines: 1, MaxUnavailable: 1, MCs: []string{"99-kubens-worker"}, Outcome: rollout(infraPool)},
			{Name: "master", Machines: 1, MaxUnavailable: 1, MCs: []string{"99-kubens-master"}, Outcome: mcp.Outcome{Pool: "master", Before: off, After: off}},
			{Name: "worker", Machines: 2, MaxUnavailable: 1, MCs: []string{"99-kubens-worker"}, Paused: true, Outcome: rollout(workerPool)},
		},
		Unreached:  []unreachedPool{{Name: "arbiter", Machines: 1, Selector: "machineconfiguration.openshift.io/role in (arbiter)"}},
		Others:     map[string][]string{"worker": {"99-custom-enable-kubens-worker"}},
		ZTP:        []string{"master"},
		SingleNode: false,
	}
	var b bytes.Buffer
	p.print(&b)
	for _, want := range []string{
		"create    99-kubens-worker",
		"unchanged 99-kubens-master  (already as wanted)",
		"worker     2 nodes, maxUnavailable 1, via 99-kubens-worker, PAUSED",
		"after: kubens.service disabled -> enabled, new rendered config: nodes REBOOT",
		"after: kubens.service disabled, merged config unchanged: no rollout, no reboot",
		"Note: pool arbiter (1 node) is not changed: it selects MachineConfigs by \"machineconfiguration.openshift.io/role in (arbiter)\"",
		"add --role arbiter",
		"Note: kubens.service is already enabled on pool worker by 99-custom-enable-kubens-worker.",
		"Note: pool master uses the ZTP container-mount-namespace.service",
		"REBOOT every node of pools infra, worker (3 nodes)",
		"WARNING: kubens.service would NOT be enabled on pool master",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "SINGLE-NODE") {
		t.Error("single-node warning on a multi-node cluster")
	}
	p.SingleNode = true
	b.Reset()
	p.print(&b)
	if !strings.Contains(b.String(), "SINGLE-NODE") {
		t.Error("no single-node warning")
	}
}

func TestConfirmPlan(t *testing.T) {
	plan := &rolloutPlan{Verb: "enable"}
	streams := func(in string) (genericiooptions.IOStreams, *bytes.Buffer) {
		out := &bytes.Buffer{}
		return genericiooptions.IOStreams{In: strings.NewReader(in), Out: out, ErrOut: out}, out
	}
	s, _ := streams("")
	if err := confirmPlan(s, false, false, plan); err == nil || !strings.Contains(err.Error(), "stdin is not a terminal") {
		t.Fatalf("no terminal, no --yes: %v", err)
	}
	if err := confirmPlan(s, false, true, plan); err != nil {
		t.Fatalf("--yes: %v", err)
	}
	s, out := streams("y\n")
	if err := confirmPlan(s, true, false, plan); err != nil || !strings.Contains(out.String(), "[y/N]") {
		t.Fatalf("answered y: %v %q", err, out)
	}
	s, _ = streams("\n")
	if err := confirmPlan(s, true, false, plan); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("answered nothing: %v", err)
	}
}

func TestProgressPrinter(t *testing.T) {
	var b bytes.Buffer
	p := &progressPrinter{w: &b, last: map[string]string{}}
	a := []mcp.PoolProgress{{Pool: "worker", Phase: mcp.PhaseRender, Total: 2}}
	p.update(a)
	p.update(a) // unchanged: no new line
	p.connectionLost(errString("connection refused"))
	p.connectionLost(errString("connection refused"))
	p.update([]mcp.PoolProgress{{Pool: "worker", Phase: mcp.PhaseRollout, Total: 2, Updated: 1}})
	want := "worker: Rendering 0/2 updated, 0 ready, 0 degraded\n" +
		"Lost the API server (connection refused); retrying (a single-node cluster is unreachable while it reboots)...\n" +
		"Connection to the API server is back.\n" +
		"worker: Updating 1/2 updated, 0 ready, 0 degraded\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	tty := &progressPrinter{w: &b, tty: true, last: map[string]string{}}
	tty.update(a)
	tty.update(a)
	if got := b.String(); !strings.Contains(got, "\x1b[1A\x1b[2Kworker: Rendering") {
		t.Fatalf("tty redraw missing: %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPrintStatus(t *testing.T) {
	rep := mcp.Report{Pools: []mcp.PoolStatus{{Name: "worker", Kubens: mcp.UnitDisabled, DesiredKubens: mcp.UnitEnabled, PendingChange: true,
		Updating: true, MachineCount: 3, ReadyMachineCount: 2, UpdatedMachineCount: 1, EnabledBy: []string{"99-kubens-worker"},
		Wrapped: []string{"agent.service", "other.service"}}, {Name: "master", Kubens: mcp.UnitEnabled, Wrapped: []string{}}},
		Nodes: []mcp.NodeStatus{{Name: "w1", Pool: "worker", Kubens: mcp.UnitDisabled, State: "Working", CurrentConfig: "r1", DesiredConfig: "r2"}}}
	var b bytes.Buffer
	if err := printStatus(&b, rep, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker  disabled  -> enabled", "99-kubens-worker  agent.service,other.service\n", "w1    worker  disabled  Working  r1       r2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	// WRAPPED is the last column, "-" for a pool that wraps nothing.
	lines := strings.Split(b.String(), "\n")
	if h := strings.Fields(lines[0]); h[len(h)-1] != "WRAPPED" || h[len(h)-3] != "ENABLED" {
		t.Errorf("header %q", lines[0])
	}
	if f := strings.Fields(lines[2]); f[0] != "master" || f[len(f)-1] != "-" || f[len(f)-2] != "-" {
		t.Errorf("master row %q", lines[2])
	}
}

func TestEnableExpectations(t *testing.T) {
	desired, err := manifests.Render(manifests.RenderOptions{Roles: []string{"master", "worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	off, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name string) mcfgv1.MachineConfigPool {
		return mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{manifests.RoleLabel: name}}}}
	}
	snap := mcp.Snapshot{Pools: []mcfgv1.MachineConfigPool{pool("master"), pool("worker")}, MachineConfigs: []mcfgv1.MachineConfig{*off[0]}}
	reach, err := mcp.Reach(snap.Pools, desired)
	if err != nil {
		t.Fatal(err)
	}
	plan := planEnable(snap, desired, reach)
	if a := actionOf(plan, "99-kubens-worker"); a != actionUpdate {
		t.Fatalf("action on our disabled config = %s, want update", a)
	}
	got := enableExpectations(snap, plan)
	// Every reached pool waits for the merged state in its new rendered
	// config, not only where an MC of the same name existed.
	want := []mcp.Expectation{
		{Pool: "master", Present: []string{"99-kubens-master"}, Unit: "kubens.service", UnitState: mcp.UnitEnabled},
		{Pool: "worker", Present: []string{"99-kubens-worker"}, Unit: "kubens.service", UnitState: mcp.UnitEnabled},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
