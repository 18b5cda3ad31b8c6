package controlplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// One control plane serves every read-mostly test of the package; tests
// that stop it or need another shape start their own.
var shared struct {
	once sync.Once
	cp   *controlplane.ControlPlane
	err  error
}

var infraPool = controlplane.Pool{Name: "infra", Roles: []string{"worker", "infra"}}

func sharedControlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cp, shared.err = controlplane.Start(ctx, controlplane.Options{
			ExtraPools: []controlplane.Pool{infraPool},
			Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, "controlplane: "+f+"\n", a...) },
		})
		if shared.err == nil {
			reportResources(t, shared.cp)
		}
	})
	if shared.err != nil {
		t.Fatalf("starting the control plane: %v", shared.err)
	}
	return shared.cp
}

// crashEnv makes the test binary start a control plane and die by SIGKILL,
// as a test binary killed by a timeout or by hand would.
const crashEnv = "KUBENS_CONTROLPLANE_CRASH"

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		cp, err := controlplane.Start(context.Background(), controlplane.Options{NoMachineConfigCRDs: true})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{"pids": cp.PIDs(), "dir": cp.State.Dir()})
		os.Stdout.Sync()
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	code := m.Run()
	if shared.cp != nil {
		if err := shared.cp.Stop(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the shared control plane: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// reportResources logs the start-up time and each daemon's RSS: the numbers
// the cluster budget is checked against.
func reportResources(t *testing.T, cp *controlplane.ControlPlane) {
	t.Logf("control plane started in %s", cp.StartDuration.Round(time.Millisecond))
	for name, pid := range cp.PIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				t.Logf("%s RSS: %s", name, strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")))
			}
		}
	}
}

func TestCRDsEstablished(t *testing.T) {
	cp := sharedControlPlane(t)
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range []string{
		"machineconfigs.machineconfiguration.openshift.io",
		"machineconfigpools.machineconfiguration.openshift.io",
		"machineconfigurations.operator.openshift.io", // the node disruption policy
	} {
		crd, err := dyn.Resource(gvr).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		established := false
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s not Established: %v", name, conds)
		}
	}
}

func TestPoolsShapedLikeOpenShift(t *testing.T) {
	cp := sharedControlPlane(t)
	mc, err := mcfgclient.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pool         string
		labels       map[string]string
		mcSelector   metav1.LabelSelector
		nodeSelector map[string]string
	}{
		{
			pool: "master",
			labels: map[string]string{
				"machineconfiguration.openshift.io/mco-built-in":                  "",
				"pools.operator.machineconfiguration.openshift.io/master":         "",
				"operator.machineconfiguration.openshift.io/required-for-upgrade": "",
			},
			mcSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"machineconfiguration.openshift.io/role": "master"}},
			nodeSelector: map[string]string{"node-role.kubernetes.io/master": ""},
		},
		{
			pool: "worker",
			labels: map[string]string{
				"machineconfiguration.openshift.io/mco-built-in":          "",
				"pools.operator.machineconfiguration.openshift.io/worker": "",
			},
			mcSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"machineconfiguration.openshift.io/role": "worker"}},
			nodeSelector: map[string]string{"node-role.kubernetes.io/worker": ""},
		},
		{
			pool: "infra",
			mcSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "machineconfiguration.openshift.io/role", Operator: metav1.LabelSelectorOpIn, Values: []string{"worker", "infra"},
			}}},
			nodeSelector: map[string]string{"node-role.kubernetes.io/infra": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.pool, func(t *testing.T) {
			p, err := mc.MachineconfigurationV1().MachineConfigPools().Get(context.Background(), tt.pool, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !equalMaps(p.Labels, tt.labels) {
				t.Errorf("labels = %v, want %v", p.Labels, tt.labels)
			}
			if got, want := mustJSON(t, p.Spec.MachineConfigSelector), mustJSON(t, &tt.mcSelector); got != want {
				t.Errorf("machineConfigSelector = %s, want %s", got, want)
			}
			if p.Spec.NodeSelector == nil || !equalMaps(p.Spec.NodeSelector.MatchLabels, tt.nodeSelector) {
				t.Errorf("nodeSelector = %v, want matchLabels %v", p.Spec.NodeSelector, tt.nodeSelector)
			}
			// A fresh cluster leaves maxUnavailable unset (one node at a time).
			if p.Spec.MaxUnavailable != nil || p.Spec.Paused {
				t.Errorf("maxUnavailable = %v, paused = %v; want unset, false", p.Spec.MaxUnavailable, p.Spec.Paused)
			}
		})
	}
}

// The apiserver never looks inside spec.config (Ignition is free-form to it),
// but it does enforce the MachineConfig schema, strictly when asked.
func TestMachineConfigSchemaValidation(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx := context.Background()
	mcs, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker", "master"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mcfgclient.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mcs {
		created, err := mc.MachineconfigurationV1().MachineConfigs().Create(ctx, m, metav1.CreateOptions{FieldValidation: "Strict"})
		if err != nil {
			t.Fatalf("rendered MachineConfig %s refused with strict validation: %v", m.Name, err)
		}
		if string(created.Spec.Config.Raw) == "" || created.Labels[manifests.RoleLabel] == "" {
			t.Errorf("%s came back without its config or role label: %+v", m.Name, created.ObjectMeta)
		}
		t.Cleanup(func() { mc.MachineconfigurationV1().MachineConfigs().Delete(ctx, m.Name, metav1.DeleteOptions{}) })
	}

	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := mcfgv1.GroupVersion.WithResource("machineconfigs")
	base := func() map[string]any {
		var obj map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, mcs[0])), &obj); err != nil {
			t.Fatal(err)
		}
		delete(obj["metadata"].(map[string]any), "creationTimestamp")
		return obj
	}
	tests := []struct {
		name    string
		mutate  func(obj map[string]any)
		wantErr string
	}{
		{"unknown spec field", func(o map[string]any) { o["spec"].(map[string]any)["kernelArgz"] = []any{"x"} }, `unknown field "spec.kernelArgz"`},
		{"unknown top-level field", func(o map[string]any) { o["status"] = map[string]any{"x": 1} }, `unknown field`},
		{"fips is not a string", func(o map[string]any) { o["spec"].(map[string]any)["fips"] = "yes" }, `spec.fips`},
		{"kernelArguments is not a list", func(o map[string]any) { o["spec"].(map[string]any)["kernelArguments"] = "quiet" }, `spec.kernelArguments`},
		{"config is not an object", func(o map[string]any) { o["spec"].(map[string]any)["config"] = "ignition" }, `spec.config`},
		{"osImageURL is not a string", func(o map[string]any) { o["spec"].(map[string]any)["osImageURL"] = 5 }, `spec.osImageURL`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := base()
			obj["metadata"].(map[string]any)["name"] = fmt.Sprintf("malformed-%d", i)
			tt.mutate(obj)
			_, err := dyn.Resource(gvr).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{FieldValidation: "Strict"})
			if err == nil {
				dyn.Resource(gvr).Delete(ctx, obj["metadata"].(map[string]any)["name"].(string), metav1.DeleteOptions{})
				t.Fatalf("malformed MachineConfig accepted")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// A user from UserKubeconfig is a real, unprivileged identity.
func TestUserKubeconfigIsNotAdmin(t *testing.T) {
	cp := sharedControlPlane(t)
	path, err := cp.UserKubeconfig("alice", []string{"dev"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mcfgclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mc.MachineconfigurationV1().MachineConfigPools().List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing pools as alice: err = %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("error does not name the user: %v", err)
	}
}

// A kubelet-style client (system:node:<name>) is recognised by the Node
// authorizer and NodeRestriction: it may create its own Node object.
func TestNodeIdentityCanRegister(t *testing.T) {
	cp := sharedControlPlane(t)
	cert, key, err := cp.IssueClientCert("system:node:probe", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cp.RESTConfig()
	cfg.CertData, cfg.KeyData = cert, key
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	node := map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "probe"}}
	body, _ := json.Marshal(node)
	if err := cs.CoreV1().RESTClient().Post().Resource("nodes").Body(body).Do(ctx).Error(); err != nil {
		t.Fatalf("node creating itself: %v", err)
	}
	admin := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	t.Cleanup(func() { admin.CoreV1().Nodes().Delete(ctx, "probe", metav1.DeleteOptions{}) })
	// NodeRestriction: a node may not give itself a node-role label.
	patch := []byte(`{"metadata":{"labels":{"node-role.kubernetes.io/master":""}}}`)
	err = cs.CoreV1().RESTClient().Patch("application/merge-patch+json").Resource("nodes").Name("probe").Body(patch).Do(ctx).Error()
	if !apierrors.IsForbidden(err) {
		t.Errorf("node labelling itself with a node-role: err = %v, want Forbidden", err)
	}
}

// Plain Kubernetes, and the whole life cycle: after Stop no process and no
// state folder is left.
func TestPlainStartStopLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{NoMachineConfigCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plain control plane started in %s", cp.StartDuration.Round(time.Millisecond))
	pids := cp.PIDs()
	dir := cp.State.Dir()
	if len(pids) != 3 {
		t.Errorf("daemons = %v, want etcd, kube-apiserver, kube-controller-manager", pids)
	}

	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		if g.Name == mcfgv1.GroupName {
			t.Errorf("plain Kubernetes serves %s", g.Name)
		}
	}
	// The controller manager works: a deleted namespace goes away.
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "doomed-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s still there 30s after deletion", ns.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}

	begin := time.Now()
	if err := cp.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stopped in %s", time.Since(begin).Round(time.Millisecond))
	for name, pid := range pids {
		if testenv.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state folder %s still there after Stop (err %v)", dir, err)
	}
	if err := cp.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A daemon that cannot start makes Start fail with the end of its log, and
// leaves nothing behind.
func TestStartFailureCarriesLogTail(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	before, _ := testenv.LiveRuns()
	binDir := t.TempDir()
	fake := "#!/bin/sh\necho 'fake kube-apiserver: refusing to start' >&2\nexit 3\n"
	if err := os.WriteFile(binDir+"/kube-apiserver", []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.Start(context.Background(), controlplane.Options{NoMachineConfigCRDs: true, K8sBinDir: binDir})
	if err == nil {
		t.Fatal("Start with a failing kube-apiserver succeeded")
	}
	t.Logf("Start error, as a user sees it:\n%v", err)
	if !strings.Contains(err.Error(), "kube-apiserver") || !strings.Contains(err.Error(), "refusing to start") {
		t.Errorf("error does not name the failing daemon and quote its log: %v", err)
	}
	// Other test binaries may start and stop clusters meanwhile: only a new
	// live run owned by this process would be ours.
	after, _ := testenv.LiveRuns()
	for _, dir := range after {
		if slices.Contains(before, dir) {
			continue
		}
		var st struct{ Owner int }
		if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil && json.Unmarshal(b, &st) == nil && st.Owner == os.Getpid() {
			t.Errorf("failed Start left its run %s", dir)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A run that dies without Stop: the kernel takes its daemons with it
// (Pdeathsig), and the next run removes its state folder.
func TestCrashedRunIsCleanedByTheNext(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	out, err := cmd.Output()
	var crashed struct {
		PIDs map[string]int `json:"pids"`
		Dir  string         `json:"dir"`
	}
	if jerr := json.Unmarshal(out, &crashed); jerr != nil || len(crashed.PIDs) != 3 {
		t.Fatalf("crashing run: %v / %v: %s", err, jerr, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for name, pid := range crashed.PIDs {
		for testenv.ProcessAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if testenv.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) outlived its crashed owner", name, pid)
		}
	}
	if _, err := os.Stat(crashed.Dir); err != nil {
		t.Fatalf("the crashed run's folder is already gone (%v); the test proves nothing", err)
	}
	if err := testenv.CleanStale(); err != nil {
		t.Fatalf("CleanStale: %v", err)
	}
	if _, err := os.Stat(crashed.Dir); !os.IsNotExist(err) {
		t.Errorf("stale folder %s survived CleanStale", crashed.Dir)
	}
}
