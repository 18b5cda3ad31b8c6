// Package control is the end-to-end suite of enable, disable, wait and
// status: the plugin runs (in-process through plugin.Execute, and a few times
// as the built binary) against a real etcd + kube-apiserver with the
// OpenShift CRDs and the simulated Machine Config Operator (test/mcosim);
// the main flow also runs on real nodes that reboot in and out of
// encapsulation.
package control

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// sim is a control plane with object-only nodes driven by the simulated MCO:
// no kubelets, so reboots are instant and the fault tests stay fast.
type sim struct {
	cp   *controlplane.ControlPlane
	mco  *mcosim.MCO
	kube kubernetes.Interface
	mcfg mcfgclient.Interface
	cfg  *rest.Config
}

type simOptions struct {
	// Nodes maps a node name to its node-role (master, worker, infra ...).
	Nodes      map[string][]string
	ExtraPools []controlplane.Pool
	// RenderDelay defaults to 1s; the race test wants the real 5s.
	RenderDelay time.Duration
	NoMCO       bool // plain Kubernetes: no CRDs, no pools, no simulator
	// ReadyNodes gives the object-only nodes a Ready condition, for verify
	// runs whose debug pods an agent completes.
	ReadyNodes bool
	// WatchCache: controlplane.Options.WatchCache, for the benchmarks.
	WatchCache bool
}

var defaultNodes = map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}, "worker-1": {"worker"}}

func startSim(t testing.TB, o simOptions) *sim {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cp := controlplane.StartForTest(t, controlplane.Options{ExtraPools: o.ExtraPools, NoMachineConfigCRDs: o.NoMCO, WatchCache: o.WatchCache}, 2*time.Minute)
	// Thousands of nodes (the benchmarks) take minutes to create on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(len(o.Nodes))*50*time.Millisecond)
	defer cancel()
	s := &sim{cp: cp, cfg: cp.RESTConfig()}
	s.kube = kubernetes.NewForConfigOrDie(s.cfg)
	s.mcfg = mcfgclient.NewForConfigOrDie(s.cfg)
	nodes := o.Nodes
	if nodes == nil {
		nodes = defaultNodes
	}
	if err := e2eutil.CreateNodes(ctx, s.cfg, nodes, o.ReadyNodes); err != nil {
		t.Fatal(err)
	}
	if o.NoMCO {
		return s
	}
	if o.RenderDelay == 0 {
		o.RenderDelay = time.Second
	}
	mco, err := mcosim.Start(context.Background(), s.cfg, nil, mcosim.Options{
		RenderDelay: o.RenderDelay, StepDelay: 100 * time.Millisecond, RebootDuration: 200 * time.Millisecond,
		ResyncPeriod: 5 * time.Second, Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	s.mco = mco
	t.Cleanup(mco.Stop)
	return s
}

// result is one run of the plugin.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// run executes the plugin in-process, as `oc kubens args...`, with stdin
// from a buffer (so never a terminal).
func run(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	full := append([]string{"oc-kubens"}, args...)
	full = append(full, "--kubeconfig", kubeconfig)
	code := plugin.Execute(full, streams)
	r := result{stdout: out.String(), stderr: errOut.String(), code: code}
	t.Logf("oc kubens %s -> %s", strings.Join(args, " "), r)
	return r
}

var pluginBin = e2eutil.PluginBinary{TempPrefix: "oc-kubens-e2e-bin-"}

// pluginBinary is $OC_KUBENS_BIN (make sets it to bin/oc-kubens) or a fresh
// static build.
func pluginBinary(t *testing.T) string {
	t.Helper()
	return pluginBin.Path(t)
}

// runBinary runs the built binary with stdin from /dev/null.
func runBinary(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	cmd := exec.Command(pluginBinary(t), append(args, "--kubeconfig", kubeconfig)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("oc-kubens %s -> %s", strings.Join(args, " "), r)
	return r
}

func (s *sim) pool(t testing.TB, name string) *mcfgv1.MachineConfigPool {
	t.Helper()
	p, err := s.mcfg.MachineconfigurationV1().MachineConfigPools().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *sim) managedMCs(t *testing.T) []mcfgv1.MachineConfig {
	t.Helper()
	l, err := s.mcfg.MachineconfigurationV1().MachineConfigs().List(context.Background(), metav1.ListOptions{
		LabelSelector: manifests.ManagedByLabel + "=" + manifests.ManagedByValue})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func (s *sim) renderedNames(t *testing.T) []string {
	t.Helper()
	l, err := s.mcfg.MachineconfigurationV1().MachineConfigs().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mc := range l.Items {
		if strings.HasPrefix(mc.Name, "rendered-") {
			out = append(out, mc.Name)
		}
	}
	return out
}

func (s *sim) nodeAnnotations(t *testing.T) map[string]string {
	t.Helper()
	l, err := s.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range l.Items {
		out[n.Name] = n.Annotations["machineconfiguration.openshift.io/currentConfig"] + "/" + n.Annotations["machineconfiguration.openshift.io/state"]
	}
	return out
}

func updated(p *mcfgv1.MachineConfigPool) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == mcfgv1.MachineConfigPoolUpdated {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func sourceNames(p *mcfgv1.MachineConfigPool) []string {
	var out []string
	for _, s := range p.Spec.Configuration.Source {
		out = append(out, s.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mustContain fails unless every want is in s.
func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
