package mcosim_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

func (e *env) applyFixture(name string) *mcfgv1.MachineConfig {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		e.t.Fatal(err)
	}
	mc := &mcfgv1.MachineConfig{}
	if err := yaml.UnmarshalStrict(b, mc); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.mcfg.MachineconfigurationV1().MachineConfigs().Create(e.ctx, mc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return mc
}

// with is e for a subtest: failures end the subtest, not its parent.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) createMCObject(mc *mcfgv1.MachineConfig) {
	e.t.Helper()
	if _, err := e.mcfg.MachineconfigurationV1().MachineConfigs().Create(e.ctx, mc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// Real Ignition 2.2.0 MachineConfigs (ZTP's load-sctp-module, the CI's
// kubens enablement) render and roll out, as the MCO converts 2.2 to 3.x.
func TestIgnition22MachineConfigs(t *testing.T) {
	e := newEnv(t)
	e.nodes(map[string][]string{"w1": {"worker"}})
	r := &recorder{kube: e.kube}
	e.start(r, fast)
	before := e.pool("worker").Spec.Configuration.Name

	sctp := e.applyFixture("load-sctp-module-2.2.yaml")
	kubens := e.applyFixture("kubens-enable-2.2.yaml")
	e.eventually(30*time.Second, "worker rolled out with both 2.2 configs", func() (bool, string) {
		p := e.pool("worker")
		ok, line := poolDoneOf(p, 1)
		rd := cond(p, mcfgv1.MachineConfigPoolRenderDegraded)
		if rd.Status == corev1.ConditionTrue {
			e.t.Fatalf("RenderDegraded: %s", rd.Message)
		}
		return ok && p.Spec.Configuration.Name != before &&
			contains(sourceNames(p), sctp.Name) && contains(sourceNames(p), kubens.Name), line + " " + rd.Message
	})
	rendered, err := e.mcfg.MachineconfigurationV1().MachineConfigs().Get(e.ctx, e.pool("worker").Spec.Configuration.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw := string(rendered.Spec.Config.Raw)
	if !strings.Contains(raw, `"version":"3.5.0"`) || !strings.Contains(raw, `"path":"/etc/modules-load.d/sctp-load.conf"`) ||
		!strings.Contains(raw, `"source":"data:text/plain;charset=utf-8,sctp"`) {
		t.Errorf("rendered config lacks the 2.2 file: %s", raw)
	}
	// The two configs may land in one render or two (a render already
	// due can pick up the first alone): the last reboot is the one to check.
	if calls := r.list(); len(calls) == 0 || calls[len(calls)-1] != "w1=true" {
		t.Errorf("reboots = %v, want w1 into encapsulation last", calls)
	}
}

// What ValidateMachineConfig and ValidateMachineConfigSize refuse makes the
// pool RenderDegraded with the MCO's message (which does not name the
// config) and no reason; the pool stays where it was.
func TestRenderValidation(t *testing.T) {
	e := newEnv(t)
	e.nodes(map[string][]string{"w1": {"worker"}})
	e.start(nil, fast)
	before := e.pool("worker").Spec.Configuration.Name

	bigFile := func(name, path string) *mcfgv1.MachineConfig {
		data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 700_000))
		return &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{mcosim.RoleLabel: "worker"}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"` +
				path + `","contents":{"source":"data:;base64,` + data + `"}}]}}`)}},
		}
	}
	withSpec := func(name string, mod func(*mcfgv1.MachineConfigSpec)) *mcfgv1.MachineConfig {
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{mcosim.RoleLabel: "worker"}},
			Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"}}`)}},
		}
		mod(&mc.Spec)
		return mc
	}
	const prefix = "Failed to render configuration for pool worker: "
	tests := []struct {
		name string
		mcs  []*mcfgv1.MachineConfig
		want string // whole message, or its start when it ends in "..."
	}{
		{"kernel type", []*mcfgv1.MachineConfig{withSpec("99-rt", func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "rt" })},
			prefix + "could not generate rendered MachineConfig: kernelType=rt is invalid"},
		{"extension", []*mcfgv1.MachineConfig{withSpec("99-ext", func(s *mcfgv1.MachineConfigSpec) { s.Extensions = []string{"wireshark"} })},
			prefix + "could not generate rendered MachineConfig: invalid extensions found: [wireshark]"},
		{"setuid file", []*mcfgv1.MachineConfig{withSpec("99-suid", func(s *mcfgv1.MachineConfigSpec) {
			s.Config.Raw = []byte(`{"ignition":{"version":"2.2.0"},"storage":{"files":[{"path":"/usr/local/bin/x","filesystem":"root","mode":2541}]}}`)
		})}, prefix + "could not generate rendered MachineConfig: invalid mode 04755 for /usr/local/bin/x, cannot exceed 0777"},
		{"unknown Ignition version", []*mcfgv1.MachineConfig{withSpec("99-future", func(s *mcfgv1.MachineConfigSpec) {
			s.Config.Raw = []byte(`{"ignition":{"version":"4.0.0"}}`)
		})}, prefix + "could not generate rendered MachineConfig: parsing Ignition config failed: unknown version. Supported spec versions: 2.2,3.0,3.1,3.2,3.3,3.4,3.5"},
		{"too large together", []*mcfgv1.MachineConfig{bigFile("50-big-a", "/etc/a"), bigFile("50-big-b", "/etc/b")},
			prefix + "size validation failed: rendered MachineConfig rendered-worker-..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.with(t)
			for _, mc := range tt.mcs {
				e.createMCObject(mc)
			}
			e.eventually(15*time.Second, "RenderDegraded", func() (bool, string) {
				p := e.pool("worker")
				rd := cond(p, mcfgv1.MachineConfigPoolRenderDegraded)
				msgOK := rd.Message == tt.want
				if rest, ok := strings.CutSuffix(tt.want, "..."); ok {
					msgOK = strings.HasPrefix(rd.Message, rest)
				}
				return rd.Status == corev1.ConditionTrue && rd.Reason == "" && msgOK &&
					cond(p, mcfgv1.MachineConfigPoolDegraded).Status == corev1.ConditionTrue, poolLine(p) + " " + rd.Message
			})
			p := e.pool("worker")
			rd := cond(p, mcfgv1.MachineConfigPoolRenderDegraded)
			for _, mc := range tt.mcs {
				if strings.Contains(rd.Message, mc.Name) {
					t.Errorf("message names %s, the MCO's does not: %s", mc.Name, rd.Message)
				}
			}
			if p.Spec.Configuration.Name != before {
				t.Errorf("the pool moved to %s", p.Spec.Configuration.Name)
			}
			for _, mc := range tt.mcs {
				e.deleteMC(mc.Name)
			}
			e.eventually(15*time.Second, "render recovers", func() (bool, string) {
				p := e.pool("worker")
				return cond(p, mcfgv1.MachineConfigPoolRenderDegraded).Status == corev1.ConditionFalse &&
					cond(p, mcfgv1.MachineConfigPoolDegraded).Status == corev1.ConditionFalse, poolLine(p)
			})
		})
	}
}

// A pool the render controller has not initialised gets no status from the
// node controller: no counts, no conditions. Only a failing render writes
// its RenderDegraded.
func TestUnrenderedPoolHasNoStatus(t *testing.T) {
	infra := controlplane.Pool{Name: "infra", Roles: []string{"worker", "infra"}}

	t.Run("bootstrap with a config that cannot render", func(t *testing.T) {
		e := newEnv(t, infra)
		e.nodes(map[string][]string{"w1": {"worker"}, "i1": {"worker", "infra"}})
		bad := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "50-infra-rt", Labels: map[string]string{mcosim.RoleLabel: "infra"}},
			Spec:       mcfgv1.MachineConfigSpec{KernelType: "rt"},
		}
		e.createMCObject(bad)
		m := e.start(nil, fast)
		// The render has failed, and then every controller has looked at
		// the pools again.
		e.eventually(30*time.Second, "RenderDegraded on infra", func() (bool, string) {
			p := e.pool("infra")
			return cond(p, mcfgv1.MachineConfigPoolRenderDegraded).Status == corev1.ConditionTrue, poolLine(p)
		})
		e.lookedAgain(m, []string{"infra", "worker"}, []string{"w1", "i1"})
		p := e.pool("infra")
		want := "Failed to render configuration for pool infra: could not generate rendered MachineConfig: kernelType=rt is invalid"
		if len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Type != mcfgv1.MachineConfigPoolRenderDegraded ||
			p.Status.Conditions[0].Status != corev1.ConditionTrue || p.Status.Conditions[0].Message != want {
			t.Errorf("conditions = %+v, want only RenderDegraded=True %q", p.Status.Conditions, want)
		}
		if p.Status.MachineCount != 0 || p.Status.ObservedGeneration != 0 || p.Status.Configuration.Name != "" {
			t.Errorf("status of an unrendered pool: %s", poolLine(p))
		}
		if ok, line := e.poolDone("worker", 1)(); !ok {
			t.Errorf("worker: %s", line)
		}

		e.deleteMC(bad.Name)
		e.eventually(30*time.Second, "infra rendered and done", e.poolDone("infra", 1))
	})

	t.Run("pool created at runtime", func(t *testing.T) {
		e := newEnv(t)
		e.nodes(map[string][]string{"w1": {"worker"}, "i1": {"worker", "infra"}})
		e.start(nil, fast)
		w, err := e.mcfg.MachineconfigurationV1().MachineConfigPools().Watch(e.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", "infra").String(),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := e.mcfg.MachineconfigurationV1().MachineConfigPools().Create(e.ctx, infra.Object(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		seenUnrendered := 0
		for {
			var ev watch.Event
			select {
			case ev = <-w.ResultChan():
			case <-deadline:
				t.Fatal("infra pool did not finish rolling out")
			}
			p, ok := ev.Object.(*mcfgv1.MachineConfigPool)
			if !ok {
				t.Fatalf("watch: %v", ev.Object)
			}
			if p.Spec.Configuration.Name == "" {
				seenUnrendered++
				if !equality.Semantic.DeepEqual(p.Status, mcfgv1.MachineConfigPoolStatus{}) {
					t.Fatalf("status before the first render: %s", poolLine(p))
				}
				continue
			}
			if ok, _ := e.poolDone("infra", 1)(); ok {
				break
			}
		}
		if seenUnrendered == 0 {
			t.Error("never saw the pool before its render")
		}
	})
}
