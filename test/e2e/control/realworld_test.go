package control

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
)

// The MachineConfigs real clusters hold (test/testdata/realworld: Ignition
// 2.2.0 from CI tooling and ZTP, the telco container-mount-namespace
// mechanism with and without enabled, disable configs, same-name objects
// that are not ours, arbiter and custom pools), applied to a real API server
// with the simulated MCO. For each: status, enable's plan and
// --dry-run=server, enable itself, wait and verify give the right answer,
// none of them hangs, and nothing of what we did not create changes.
func TestRealWorldMachineConfigs(t *testing.T) {
	type poolWant map[string]string // pool -> kubens state in status
	tests := []struct {
		name     string
		pools    []controlplane.Pool
		nodes    map[string][]string
		fixtures []string
		before   poolWant
		// enabledBy lists, per pool, MCs status must name in ENABLED BY.
		enabledBy map[string][]string
		ztp       []string // pools status must flag as ZTP
		// plan lines of enable --dry-run=server, and its exit code.
		plan     []string
		planCode int
		// enableArgs are extra flags for enable --yes --wait; nil skips it.
		enableArgs []string
		enableCode int
		after      poolWant
		// verify after everything: node -> "state/expected".
		verify map[string]string
	}{
		{
			name: "Ignition 2.2 configs: one without kubens, one from CI tooling enabling it",
			fixtures: []string{"ign22-load-sctp-module-worker.yaml", "ign22-load-sctp-module-master.yaml",
				"ci-99-custom-enable-kubens-worker.yaml", "no-role-99-crio-disable-wipe.yaml"},
			before:    poolWant{"master": "disabled", "worker": "enabled"},
			enabledBy: map[string][]string{"worker": {"99-custom-enable-kubens-worker"}},
			plan: []string{"after: kubens.service enabled, merged config unchanged: no rollout, no reboot",
				"after: kubens.service disabled -> enabled, new rendered config: nodes REBOOT",
				"REBOOT every node of pools master (1 node)",
				"created (server dry run)"},
			enableArgs: []string{},
			after:      poolWant{"master": "enabled", "worker": "enabled"},
			verify:     map[string]string{"master-0": "Encapsulated/Encapsulated", "worker-0": "Encapsulated/Encapsulated", "worker-1": "Encapsulated/Encapsulated"},
		},
		{
			name:     "ZTP container-mount-namespace with and without enabled",
			fixtures: []string{"ztp-container-mount-namespace-worker-noenabled.yaml", "ztp-container-mount-namespace-master-ign310.yaml"},
			before:   poolWant{"master": "disabled", "worker": "disabled"},
			ztp:      []string{"master", "worker"},
			plan: []string{"Note: pool master uses the ZTP container-mount-namespace.service", "Note: pool worker uses the ZTP container-mount-namespace.service",
				"WARNING: pool worker would run two encapsulation mechanisms",
				"WARNING: container-mount-namespace-and-kubelet-conf-worker also carries kubelet housekeeping tuning",
				"refusing to enable: pool master, worker already runs kubelet and CRI-O in the ZTP"},
			planCode: 1,
			after:    poolWant{"master": "disabled", "worker": "disabled"},
			verify:   map[string]string{"master-0": "Encapsulated/Encapsulated", "worker-0": "Encapsulated/Encapsulated", "worker-1": "Encapsulated/Encapsulated"},
		},
		{
			name:     "disable configs that sort before ours (2.2.0, the CI tool's and the enhancement's)",
			fixtures: []string{"enhancement-99-custom-disable-kubens-worker.yaml", "ci-99-custom-enable-kubens-worker-disabled.yaml"},
			before:   poolWant{"master": "disabled", "worker": "disabled"},
			plan:     []string{"after: kubens.service disabled -> enabled, new rendered config: nodes REBOOT", "REBOOT every node of pools master, worker (3 nodes)"},
			// The plan is right, no --force needed: ours sorts after both.
			enableArgs: []string{},
			after:      poolWant{"master": "enabled", "worker": "enabled"},
			verify:     map[string]string{"master-0": "Encapsulated/Encapsulated", "worker-0": "Encapsulated/Encapsulated"},
		},
		{
			name:     "a later unmanaged config keeps it off: refused, nothing applied",
			fixtures: []string{"99-zz-worker-keep-kubens-off.yaml"},
			before:   poolWant{"master": "disabled", "worker": "disabled"},
			plan: []string{"WARNING: kubens.service would NOT be enabled on pool worker after this change: 99-zz-worker-keep-kubens-off sets it later",
				"refusing to enable"},
			planCode:   1,
			enableArgs: []string{},
			enableCode: 1,
			after:      poolWant{"master": "disabled", "worker": "disabled"},
			verify:     map[string]string{"master-0": "NotEncapsulated/NotEncapsulated", "worker-0": "NotEncapsulated/NotEncapsulated"},
		},
		{
			name:     "a drop-in-only kubens.service entry keeps our enabled",
			fixtures: []string{"kubens-dropin-only-worker.yaml"},
			before:   poolWant{"master": "disabled", "worker": "disabled"},
			plan:     []string{"after: kubens.service disabled -> enabled"},
			// the merged state after ours is enabled: no refusal.
			enableArgs: []string{},
			after:      poolWant{"master": "enabled", "worker": "enabled"},
			verify:     map[string]string{"worker-0": "Encapsulated/Encapsulated"},
		},
		{
			name:      "same-name objects we did not create: left exactly as they are",
			fixtures:  []string{"foreign-99-kubens-worker.yaml", "telco-core-99-kubens-master.yaml"},
			before:    poolWant{"master": "enabled", "worker": "enabled"},
			enabledBy: map[string][]string{"master": {"99-kubens-master"}, "worker": {"99-kubens-worker"}},
			plan: []string{"not-ours  99-kubens-worker  (exists and was not created by oc-kubens; holds kernelArguments nosmt; units site-agent.service",
				"not-ours  99-kubens-master", "Nothing to change"},
			enableArgs: []string{},
			after:      poolWant{"master": "enabled", "worker": "enabled"},
			verify:     map[string]string{"master-0": "Encapsulated/Encapsulated", "worker-1": "Encapsulated/Encapsulated"},
		},
		{
			name: "arbiter pool and a custom infra pool",
			pools: []controlplane.Pool{
				{Name: "arbiter", Labels: map[string]string{controlplane.BuiltInLabel: ""}},
				{Name: "infra", Roles: []string{"worker", "infra"}},
			},
			nodes:    map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}, "infra-0": {"worker", "infra"}, "arbiter-0": {"arbiter"}},
			fixtures: []string{"50-arbiter-site-tuning.yaml", "00-infra-keep-kubens-off.yaml"},
			before:   poolWant{"arbiter": "enabled", "infra": "disabled", "master": "disabled", "worker": "disabled"},
			plan: []string{"Note: pool arbiter (1 node) is not changed", "add --role arbiter",
				"WARNING: kubens.service would NOT be enabled on pool infra after this change: 00-infra-keep-kubens-off",
				"refusing to enable"},
			planCode: 1,
			// With --force it applies and waits for the merged state:
			// infra stays off, and the wait does not hang on it.
			enableArgs: []string{"--force"},
			after:      poolWant{"arbiter": "enabled", "infra": "disabled", "master": "enabled", "worker": "enabled"},
			verify: map[string]string{"arbiter-0": "Encapsulated/Encapsulated", "infra-0": "NotEncapsulated/NotEncapsulated",
				"worker-0": "Encapsulated/Encapsulated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, simOptions{Nodes: tt.nodes, ExtraPools: tt.pools, ReadyNodes: true})
			kc := s.cp.KubeconfigPath
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			e2eutil.StartAgent(ctx, t, s.cfg, e2eutil.AgentOptions{Report: s.truthReport(t)})

			applied := s.applyFixtures(t, tt.fixtures)
			s.waitSettled(t)

			st := statusJSON(t, kc)
			if got := st.kubens(); !reflect.DeepEqual(got, map[string]string(tt.before)) {
				t.Errorf("status before enable: kubens per pool = %v, want %v", got, tt.before)
			}
			for pool, want := range tt.enabledBy {
				for _, w := range want {
					if !contains(st.pool(pool).EnabledBy, w) {
						t.Errorf("status: pool %s ENABLED BY %v lacks %s", pool, st.pool(pool).EnabledBy, w)
					}
				}
			}
			for _, p := range tt.ztp {
				if !st.pool(p).ZTP {
					t.Errorf("status: pool %s not flagged ZTP", p)
				}
			}

			dry := run(t, kc, "enable", "--dry-run=server", "--yes")
			if dry.code != tt.planCode {
				t.Errorf("enable --dry-run=server exit %d, want %d", dry.code, tt.planCode)
			}
			mustContain(t, "enable --dry-run=server", dry.stdout+dry.stderr, tt.plan...)
			if n := len(s.managedMCs(t)); n != 0 {
				t.Fatalf("dry run left %d managed MachineConfigs", n)
			}

			if tt.enableArgs != nil {
				args := append([]string{"enable", "--yes", "--wait", "--timeout", "90s"}, tt.enableArgs...)
				r := run(t, kc, args...)
				if r.code != tt.enableCode {
					t.Fatalf("enable exit %d, want %d", r.code, tt.enableCode)
				}
			}
			w := run(t, kc, "wait", "--timeout", "60s")
			if w.code != 0 {
				t.Errorf("wait exit %d, want 0", w.code)
			}
			if got := statusJSON(t, kc).kubens(); !reflect.DeepEqual(got, map[string]string(tt.after)) {
				t.Errorf("status after enable: kubens per pool = %v, want %v", got, tt.after)
			}

			v := run(t, kc, "verify", "--all-nodes", "-o", "json", "--image", "registry.example/tools:1", "--timeout", "30s")
			var rep struct {
				Nodes []struct{ Node, State, Expected, Mechanism string }
			}
			if err := json.Unmarshal([]byte(v.stdout), &rep); err != nil {
				t.Fatalf("verify -o json: %v\n%s", err, v)
			}
			got := map[string]string{}
			for _, n := range rep.Nodes {
				got[n.Node] = n.State + "/" + n.Expected
			}
			for node, want := range tt.verify {
				if got[node] != want {
					t.Errorf("verify: node %s is %q, want %q (all: %v)", node, got[node], want, got)
				}
			}

			// Nothing we did not create was changed, taken over or
			// deleted, through enable and then disable.
			if tt.enableArgs != nil && tt.enableCode == 0 {
				if r := run(t, kc, "disable", "--yes", "--wait", "--timeout", "90s"); r.code != 0 {
					t.Errorf("disable exit %d", r.code)
				}
			}
			s.mustBeUntouched(t, applied)
		})
	}
}

// applyFixtures creates the named test/testdata/realworld MachineConfigs
// and returns them as the server stored them.
func (s *sim) applyFixtures(t *testing.T, files []string) []mcfgv1.MachineConfig {
	t.Helper()
	var out []mcfgv1.MachineConfig
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "realworld", f))
		if err != nil {
			t.Fatal(err)
		}
		var mc mcfgv1.MachineConfig
		if err := yaml.UnmarshalStrict(data, &mc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Create(context.Background(), &mc, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s: %v", f, err)
		}
		out = append(out, *got)
	}
	return out
}

// mustBeUntouched fails unless every object is still there, unchanged.
func (s *sim) mustBeUntouched(t *testing.T, mcs []mcfgv1.MachineConfig) {
	t.Helper()
	for _, want := range mcs {
		got, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Get(context.Background(), want.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("MachineConfig %s we did not create: %v", want.Name, err)
			continue
		}
		if got.ResourceVersion != want.ResourceVersion || !reflect.DeepEqual(got.Labels, want.Labels) || !reflect.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("MachineConfig %s we did not create was changed:\nbefore %+v %s\nafter  %+v %s", want.Name, want.Labels, want.Spec.Config.Raw, got.Labels, got.Spec.Config.Raw)
		}
	}
}

// waitSettled waits, independently of the plugin, until every pool has
// rendered every input MC it selects and rolled the result out.
func (s *sim) waitSettled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if s.settled(t) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("pools did not settle within 90s")
}

func (s *sim) settled(t *testing.T) bool {
	ctx := context.Background()
	pools, err := s.mcfg.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	mcs, err := s.mcfg.MachineconfigurationV1().MachineConfigs().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, p := range pools.Items {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.MachineConfigSelector)
		if err != nil {
			t.Fatal(err)
		}
		src := sourceNames(&p)
		for _, mc := range mcs.Items {
			if !strings.HasPrefix(mc.Name, "rendered-") && sel.Matches(labels.Set(mc.Labels)) && !contains(src, mc.Name) {
				return false
			}
		}
		if p.Status.Configuration.Name != p.Spec.Configuration.Name || !updated(&p) {
			return false
		}
	}
	return true
}

// truthReport decides what the probe would find on a node from the
// rendered config the node runs (see configReport).
func (s *sim) truthReport(t *testing.T) func(context.Context, string) string {
	return func(ctx context.Context, node string) string {
		n, err := s.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Errorf("agent: %v", err)
			return e2eutil.ProbeReport(e2eutil.NodePlain)
		}
		return s.configReport(ctx, t, node, n.Annotations["machineconfiguration.openshift.io/currentConfig"])
	}
}

// configReport is the probe's finding on a node booted with a rendered
// config, read with the Ignition library itself (not the plugin's code):
// kubens.service enabled -> encapsulated by kubens;
// container-mount-namespace.service there -> encapsulated by ZTP; else
// plain. It is what an RHCOS node does with its units after the reboot.
func (s *sim) configReport(ctx context.Context, t *testing.T, node, config string) string {
	mc, err := s.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, config, metav1.GetOptions{})
	if err != nil {
		t.Errorf("agent: node %s: %v", node, err)
		return e2eutil.ProbeReport(e2eutil.NodePlain)
	}
	cfg, _, err := ign3.ParseCompatibleVersion(mc.Spec.Config.Raw)
	if err != nil {
		t.Errorf("agent: rendered config %s: %v", mc.Name, err)
	}
	kind := e2eutil.NodePlain
	for _, u := range cfg.Systemd.Units {
		switch {
		case u.Name == "kubens.service" && u.Enabled != nil && *u.Enabled:
			kind = e2eutil.NodeKubens
		case u.Name == "container-mount-namespace.service" && kind == e2eutil.NodePlain:
			kind = e2eutil.NodeZTP
		}
	}
	return e2eutil.ProbeReport(kind)
}

type statusPool struct {
	Name      string   `json:"name"`
	Kubens    string   `json:"kubens"`
	EnabledBy []string `json:"enabledBy"`
	ZTP       bool     `json:"ztpContainerMountNamespace"`
}

type statusDoc struct {
	Pools []statusPool `json:"pools"`
}

func statusJSON(t *testing.T, kc string) statusDoc {
	t.Helper()
	r := run(t, kc, "status", "-o", "json")
	var d statusDoc
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil {
		t.Fatalf("status -o json: %s", r)
	}
	return d
}

func (d statusDoc) kubens() map[string]string {
	out := map[string]string{}
	for _, p := range d.Pools {
		out[p.Name] = p.Kubens
	}
	return out
}

func (d statusDoc) pool(name string) statusPool {
	for _, x := range d.Pools {
		if x.Name == name {
			return x
		}
	}
	return statusPool{}
}
