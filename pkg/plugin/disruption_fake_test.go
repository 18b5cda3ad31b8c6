package plugin

import (
	"context"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/change"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// noneForKubensPolicy is MachineConfiguration/cluster with a node
// disruption policy of None for kubens.service, its status caught up.
func noneForKubensPolicy() *opv1.MachineConfiguration {
	mc := &opv1.MachineConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Generation: 1}}
	mc.Spec.NodeDisruptionPolicy.Units = []opv1.NodeDisruptionPolicySpecUnit{{Name: "kubens.service",
		Actions: []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}}}
	mc.Status.ObservedGeneration = 1
	mc.Status.NodeDisruptionPolicyStatus.ClusterPolicies.Units = []opv1.NodeDisruptionPolicyStatusUnit{{Name: "kubens.service",
		Actions: []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.NoneStatusAction}}}}
	return mc
}

// Hazard 1 on fake clients: the plan shows the effective action; enable
// and disable refuse a non-Reboot action without --force and send nothing,
// and go ahead with it.
func TestNodeDisruptionPolicyRefusal(t *testing.T) {
	ctx := context.Background()
	t.Run("default: Reboot shown", func(t *testing.T) {
		f := newFakeOpenShift(t, fcCluster()...)
		o := &EnableOptions{clusterOptions: f.options()}
		o.Yes = true
		if err := o.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if out := f.out.String(); !strings.Contains(out, "Node disruption: Reboot (no node disruption policy covers kubens.service)") {
			t.Errorf("plan:\n%s", out)
		}
	})
	for _, verb := range []string{"enable", "disable"} {
		t.Run(verb+" with None for kubens.service", func(t *testing.T) {
			objs := fcCluster()
			if verb == "disable" {
				objs = oursOnBoth(t)
			}
			for _, force := range []bool{false, true} {
				f := newFakeOpenShift(t, objs...)
				if err := f.op.Tracker().Add(noneForKubensPolicy()); err != nil {
					t.Fatal(err)
				}
				var err error
				if verb == "enable" {
					o := &EnableOptions{clusterOptions: f.options(), Force: force}
					o.Yes = true
					err = o.Run(ctx)
				} else {
					o := &DisableOptions{clusterOptions: f.options(), Force: force}
					o.Yes = true
					err = o.Run(ctx)
				}
				out := f.out.String()
				for _, w := range []string{"node disruption policy (MachineConfiguration/cluster): unit kubens.service -> None: nodes will NOT reboot",
					"updated WITHOUT rebooting it (action None)"} {
					if !strings.Contains(out, w) {
						t.Errorf("force=%v: plan lacks %q:\n%s", force, w, out)
					}
				}
				if strings.Contains(out, "drain and REBOOT") {
					t.Errorf("force=%v: plan promises a reboot:\n%s", force, out)
				}
				if !force {
					want := "refusing to " + verb + ": the node disruption policy in MachineConfiguration/cluster gives unit kubens.service the action None"
					if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--force") {
						t.Errorf("error %v, want %q", err, want)
					}
					if w := f.writes(); len(w) != 0 {
						t.Errorf("refused but sent %v", w)
					}
					continue
				}
				if err != nil {
					t.Errorf("--force: %v", err)
				}
				if w := f.writes(); len(w) != 2 {
					t.Errorf("--force sent %v, want 2 writes", w)
				}
			}
		})
	}
}

// Single-node and compact clusters: the plan says the API server goes
// away while the control-plane nodes reboot.
func TestPlanSaysTheAPIGoesAway(t *testing.T) {
	master, worker := mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")
	worker.Status.MachineCount = 0
	for _, tt := range []struct {
		name                string
		singleNode, compact bool
		want                string
	}{
		{"single node", true, true, "SINGLE-NODE cluster: its only node reboots, so every workload and the API server itself are down"},
		{"compact", false, true, "COMPACT cluster (every node is a control-plane node): the API server on each node goes away while that node reboots"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			master.Status.MachineCount = 3
			if tt.singleNode {
				master.Status.MachineCount = 1
			}
			plan, err := change.PlanEnable(mcp.Snapshot{Pools: []mcfgv1.MachineConfigPool{master, worker}}, change.EnableRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if plan.SingleNode != tt.singleNode || plan.Compact != tt.compact {
				t.Fatalf("SingleNode=%v Compact=%v", plan.SingleNode, plan.Compact)
			}
			var b strings.Builder
			printPlan(&b, plan)
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("plan lacks %q:\n%s", tt.want, b.String())
			}
		})
	}
}

// Hazard 2 on fake clients: enable on a pool in ZTP refuses without
// --force, names the config to remove and the housekeeping tuning it
// carries, and sends nothing.
func TestEnableRefusesOnZTPPool(t *testing.T) {
	ztp := mcfixture.ZTP("container-mount-namespace-and-kubelet-conf-worker", "worker", true)
	for _, force := range []bool{false, true} {
		f := newFakeOpenShift(t, fcCluster(&ztp)...)
		o := &EnableOptions{clusterOptions: f.options(), Force: force}
		o.Yes = true
		err := o.Run(context.Background())
		out := f.out.String()
		for _, w := range []string{"WARNING: pool worker would run two encapsulation mechanisms", "Split",
			"remove container-mount-namespace-and-kubelet-conf-worker first",
			"WARNING: container-mount-namespace-and-kubelet-conf-worker also carries kubelet housekeeping tuning"} {
			if !strings.Contains(out, w) {
				t.Errorf("force=%v: plan lacks %q:\n%s", force, w, out)
			}
		}
		if force {
			if err != nil || len(f.writes()) != 2 {
				t.Errorf("--force: %v, sent %v", err, f.writes())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "refusing to enable: pool worker already runs kubelet and CRI-O in the ZTP container-mount-namespace.service") {
			t.Errorf("error %v", err)
		}
		if w := f.writes(); len(w) != 0 {
			t.Errorf("refused but sent %v", w)
		}
	}
}
