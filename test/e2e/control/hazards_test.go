package control

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	opv1 "github.com/openshift/api/operator/v1"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
)

// Issue 14, hazards 1 and 2, on one simulated cluster (object-only nodes
// whose probe reports what the node really booted with):
//
//  1. the legacy ZTP mechanism on the worker pool: enable refuses, explains
//     the Split risk and that the ZTP config also carries kubelet
//     housekeeping tuning, and changes nothing;
//  2. a node disruption policy of None for kubens.service: enable refuses
//     without --force; with it the simulated MCO marks every node updated
//     without a reboot, wait finishes, status flags the nodes NOT
//     REBOOTED, and verify finds them not encapsulated against a config
//     that says they are.
func TestHazardsBeforeAnyReboot(t *testing.T) {
	s := startSim(t, simOptions{ReadyNodes: true})
	kc := s.cp.KubeconfigPath
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e2eutil.StartAgent(ctx, t, s.cfg, e2eutil.AgentOptions{Report: s.bootedReport(t)})
	s.waitSettled(t)
	s.markNodesBooted(t)

	// Hazard 2: ZTP on the worker pool.
	ztp := mcfixture.ZTP("container-mount-namespace-and-kubelet-conf-worker", "worker", true)
	if _, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, &ztp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitSettled(t)
	r := run(t, kc, "enable", "--yes")
	if r.code != 1 {
		t.Fatalf("enable on a ZTP pool: exit %d, want 1", r.code)
	}
	mustContain(t, "enable on a ZTP pool", r.stdout+r.stderr,
		"WARNING: pool worker would run two encapsulation mechanisms", "Split",
		"remove container-mount-namespace-and-kubelet-conf-worker first",
		"WARNING: container-mount-namespace-and-kubelet-conf-worker also carries kubelet housekeeping tuning",
		"refusing to enable: pool worker already runs kubelet and CRI-O in the ZTP container-mount-namespace.service", "--force")
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("refused enable left %d managed MachineConfigs", n)
	}
	// With --force the plan goes through (a server dry run: nothing kept).
	if r := run(t, kc, "enable", "--yes", "--force", "--dry-run=server"); r.code != 0 {
		t.Fatalf("enable --force --dry-run=server: exit %d", r.code)
	}
	if err := s.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, ztp.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// waitSettled looks for selected configs missing from the source,
	// not for deleted ones still in it: wait for the worker pool to have
	// rolled out a config without the ZTP one.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		p := s.pool(t, "worker")
		return !contains(sourceNames(p), ztp.Name) && p.Status.Configuration.Name == p.Spec.Configuration.Name && updated(p), nil
	}); err != nil {
		t.Fatalf("worker pool did not roll out the removal of %s: %v", ztp.Name, err)
	}
	s.waitSettled(t)

	// Hazard 1: the node disruption policy.
	op := operatorclient.NewForConfigOrDie(s.cfg)
	policy := &opv1.MachineConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cluster"}}
	policy.Spec.ManagementState = "Managed"
	policy.Spec.NodeDisruptionPolicy.Units = []opv1.NodeDisruptionPolicySpecUnit{{Name: "kubens.service",
		Actions: []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}}}
	// The API requires the SSH key entry; None is the operator's default.
	policy.Spec.NodeDisruptionPolicy.SSHKey.Actions = []opv1.NodeDisruptionPolicySpecAction{{Type: opv1.NoneSpecAction}}
	if _, err := op.OperatorV1().MachineConfigurations().Create(ctx, policy, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		t.Fatalf("creating MachineConfiguration/cluster: %v", err)
	}
	s.markNodesBooted(t) // the workers rebooted out of ZTP: now before the change

	r = run(t, kc, "enable", "--yes", "--wait", "--timeout", "60s")
	if r.code != 1 {
		t.Fatalf("enable under a None policy: exit %d, want 1", r.code)
	}
	mustContain(t, "enable under a None policy", r.stdout+r.stderr,
		"WARNING: node disruption policy (MachineConfiguration/cluster): unit kubens.service -> None: nodes will NOT reboot",
		"refusing to enable: the node disruption policy in MachineConfiguration/cluster gives unit kubens.service the action None", "--force")
	if strings.Contains(r.stdout, "drain and REBOOT") {
		t.Errorf("plan promises reboots under a None policy:\n%s", r.stdout)
	}
	if n := len(s.managedMCs(t)); n != 0 {
		t.Fatalf("refused enable left %d managed MachineConfigs", n)
	}

	r = run(t, kc, "enable", "--yes", "--wait", "--force", "--timeout", "90s")
	if r.code != 0 {
		t.Fatalf("enable --force: exit %d", r.code)
	}
	mustContain(t, "enable --force", r.stdout, "All pools updated")
	for _, n := range []string{"master-0", "worker-0", "worker-1"} {
		node, err := s.kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		booted, _ := s.mco.BootedConfig(n)
		if cur := node.Annotations["machineconfiguration.openshift.io/currentConfig"]; booted == cur || booted == "" {
			t.Errorf("node %s booted with %q and is at %q: the simulated MCO rebooted it despite the policy", n, booted, cur)
		}
	}

	st := run(t, kc, "status")
	if st.code != 0 {
		t.Fatalf("status: exit %d", st.code)
	}
	mustContain(t, "status", st.stdout+st.stderr,
		"WARNING: the node disruption policy in MachineConfiguration/cluster gives unit kubens.service the action None",
		"NOT REBOOTED since their current config was rendered: master-0, worker-0, worker-1")
	wide := run(t, kc, "status", "-o", "wide")
	mustContain(t, "status -o wide", wide.stdout, "NOT REBOOTED since its config was rendered")
	js := run(t, kc, "status", "-o", "json")
	var doc struct {
		Nodes []struct {
			Name        string `json:"name"`
			Kubens      string `json:"kubens"`
			NotRebooted bool   `json:"notRebooted"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil || len(doc.Nodes) != 3 {
		t.Fatalf("status -o json: %v\n%s", err, js)
	}
	for _, n := range doc.Nodes {
		if !n.NotRebooted || n.Kubens != "enabled" {
			t.Errorf("status -o json: node %s kubens=%s notRebooted=%v, want enabled and true", n.Name, n.Kubens, n.NotRebooted)
		}
	}

	// verify sees what runs: not encapsulated, against a config that says
	// it should be.
	v := run(t, kc, "verify", "--all-nodes", "-o", "json", "--image", "registry.example/tools:1", "--timeout", "30s")
	if v.code != 1 {
		t.Errorf("verify: exit %d, want 1 (not as expected)", v.code)
	}
	var rep struct {
		Nodes []struct{ Node, State, Expected string }
	}
	if err := json.Unmarshal([]byte(v.stdout), &rep); err != nil || len(rep.Nodes) != 3 {
		t.Fatalf("verify -o json: %v\n%s", err, v)
	}
	for _, n := range rep.Nodes {
		if n.State != "NotEncapsulated" || n.Expected != "Encapsulated" {
			t.Errorf("verify: node %s is %s, expected %s; want NotEncapsulated against Encapsulated", n.Node, n.State, n.Expected)
		}
	}

	// disable refuses the same way; --force is there too.
	r = run(t, kc, "disable", "--yes")
	if r.code != 1 {
		t.Fatalf("disable under a None policy: exit %d, want 1", r.code)
	}
	mustContain(t, "disable under a None policy", r.stdout+r.stderr, "refusing to disable: the node disruption policy")
	if n := len(s.managedMCs(t)); n != 2 {
		t.Errorf("refused disable left %d managed MachineConfigs, want 2", n)
	}
}

// bootedReport is the probe's finding on a node from the rendered config
// its machine last booted with (the simulated MCO knows; else the config
// it is at), read with the Ignition library: kubelet and CRI-O change
// mount namespace only when the node boots.
func (s *sim) bootedReport(t *testing.T) func(context.Context, string) string {
	return func(ctx context.Context, node string) string {
		name, ok := s.mco.BootedConfig(node)
		if !ok {
			n, err := s.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				t.Errorf("agent: %v", err)
				return e2eutil.ProbeReport(e2eutil.NodePlain)
			}
			name = n.Annotations["machineconfiguration.openshift.io/currentConfig"]
		}
		return s.configReport(ctx, t, node, name)
	}
}

// markNodesBooted sets each node's Ready condition as a kubelet reports it
// after its boot, a few seconds ago: what status judges reboots by.
func (s *sim) markNodesBooted(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	nodes, err := s.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := metav1.NewTime(time.Now().Add(-3 * time.Second))
	for _, item := range nodes.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := s.kube.CoreV1().Nodes().Get(ctx, item.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastTransitionTime: at, LastHeartbeatTime: at}}
			_, err = s.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
