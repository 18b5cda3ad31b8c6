package plugin

import (
	"bytes"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func TestPlanPrint(t *testing.T) {
	on := map[string]bool{manifests.UnitName: true}
	off := mcp.Forecast{Kubens: mcp.UnitDisabled}
	infraPool, workerPool := mcfixture.Pool("infra", "worker", "infra"), mcfixture.Pool("worker", "worker")
	ours := []mcfgv1.MachineConfig{mcfixture.MC("99-kubens-worker", "worker", on)}
	rollout := func(p mcfgv1.MachineConfigPool) mcp.Outcome {
		return mcp.Outcome{Pool: p.Name, Before: mcp.ForecastPool(&p, nil), After: mcp.ForecastPool(&p, ours)}
	}
	p := &change.Plan{
		Verb:    "enable",
		Changes: []change.Change{{Name: "99-kubens-master", Action: change.Unchanged}, {Name: "99-kubens-worker", Action: change.Create}},
		Pools: []change.PoolPlan{
			{Name: "infra", Machines: 1, MaxUnavailable: 1, MCs: []string{"99-kubens-worker"}, Outcome: rollout(infraPool)},
			{Name: "master", Machines: 1, MaxUnavailable: 1, MCs: []string{"99-kubens-master"}, Outcome: mcp.Outcome{Pool: "master", Before: off, After: off}},
			{Name: "worker", Machines: 2, MaxUnavailable: 1, MCs: []string{"99-kubens-worker"}, Paused: true, Outcome: rollout(workerPool)},
		},
		Unreached:  []change.UnreachedPool{{Name: "arbiter", Machines: 1, Selector: "machineconfiguration.openshift.io/role in (arbiter)"}},
		Others:     map[string][]string{"worker": {"99-custom-enable-kubens-worker"}},
		ZTP:        []string{"master"},
		SingleNode: false,
	}
	var b bytes.Buffer
	printPlan(&b, p)
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
	printPlan(&b, p)
	if !strings.Contains(b.String(), "SINGLE-NODE") {
		t.Error("no single-node warning")
	}
}

func TestConfirmPlan(t *testing.T) {
	plan := &change.Plan{Verb: "enable"}
	streams := func(in string) (genericiooptions.IOStreams, *bytes.Buffer) {
		out := &bytes.Buffer{}
		return genericiooptions.IOStreams{In: strings.NewReader(in), Out: out, ErrOut: out}, out
	}
	s, _ := streams("")
	if err := confirmPlan(s, false, false, plan, s.Out); err == nil || !strings.Contains(err.Error(), "stdin is not a terminal") {
		t.Fatalf("no terminal, no --yes: %v", err)
	}
	if err := confirmPlan(s, false, true, plan, s.Out); err != nil {
		t.Fatalf("--yes: %v", err)
	}
	s, out := streams("y\n")
	if err := confirmPlan(s, true, false, plan, s.Out); err != nil || !strings.Contains(out.String(), "[y/N]") {
		t.Fatalf("answered y: %v %q", err, out)
	}
	s, _ = streams("\n")
	if err := confirmPlan(s, true, false, plan, s.Out); err == nil || !strings.Contains(err.Error(), "aborted") {
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

// Each MachineConfig gets kubectl's line with its operation and the dry-run
// mark; a wrap config that neither exists nor will gets none.
func TestPrintResultsLines(t *testing.T) {
	mc := func(name string) *mcfgv1.MachineConfig {
		m := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
		m.SetGroupVersionKind(mcfgv1.GroupVersion.WithKind("MachineConfig"))
		return m
	}
	results := []change.Result{
		{Change: change.Change{Name: "99-kubens-master", Action: change.Create}, Object: mc("99-kubens-master"), Operation: change.OpCreated},
		{Change: change.Change{Name: "99-kubens-wrap-master", Action: change.Unchanged}},
		{Change: change.Change{Name: "99-kubens-worker", Action: change.Foreign}, Object: mc("99-kubens-worker"), Operation: change.OpLeft},
	}
	o := newChangeOptions()
	o.DryRun = cmdutil.DryRunServer
	var b bytes.Buffer
	if err := o.printResults(&b, results); err != nil {
		t.Fatal(err)
	}
	want := "machineconfig.machineconfiguration.openshift.io/99-kubens-master created (server dry run)\n" +
		"machineconfig.machineconfiguration.openshift.io/99-kubens-worker left as it is (not created by oc-kubens) (server dry run)\n"
	if b.String() != want {
		t.Fatalf("got:\n%swant:\n%s", b.String(), want)
	}
}
