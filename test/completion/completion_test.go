// Package completion drives tab completion against a real kube-apiserver:
// node and pool names come from the cluster, through cobra's __complete entry
// point (what every shell script calls) and through a real kubectl's plugin
// completion (kubectl_complete-kubens).
package completion_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

var nodes = map[string]string{
	"master-0": "master", "worker-a": "worker", "worker-b": "worker", "infra-0": "infra",
}

// printFormats are the -o values cli-runtime's PrintFlags offer, in its
// order; the table commands add wide.
const printFormats = "json yaml kyaml name go-template go-template-file template templatefile jsonpath jsonpath-as-json jsonpath-file"

func startCluster(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ExtraPools: []controlplane.Pool{{Name: "infra", Roles: []string{"worker", "infra"}}},
	})
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })
	kube, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Node objects are enough: completion reads names and role labels only.
	for name, role := range nodes {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"node-role.kubernetes.io/" + role: ""}}}
		if _, err := kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return cp
}

// complete runs `oc kubens __complete ARGS...` in process and returns the
// offered values and the directive line.
func complete(t *testing.T, kubeconfig string, args ...string) ([]string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := plugin.NewCmdKubens(streams, "oc kubens")
	root.SetArgs(append([]string{"__complete", "--kubeconfig", kubeconfig}, args...))
	start := time.Now()
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %v: %v\n%s", args, err, errOut.String())
	}
	t.Logf("__complete %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return parse(t, out.String())
}

func parse(t *testing.T, out string) ([]string, string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, ":") {
		t.Fatalf("no directive line in:\n%s", out)
	}
	var values []string
	for _, l := range lines[:len(lines)-1] {
		if strings.HasPrefix(l, "[Debug]") || l == "" {
			continue
		}
		values = append(values, l)
	}
	return values, last
}

func names(values []string) string {
	var n []string
	for _, v := range values {
		name, _, _ := strings.Cut(v, "\t")
		n = append(n, name)
	}
	return strings.Join(n, " ")
}

func TestCompletionFromCluster(t *testing.T) {
	cp := startCluster(t)
	kc := cp.KubeconfigPath

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"exec node names", []string{"exec", ""}, "infra-0 master-0 worker-a worker-b"},
		{"exec node prefix", []string{"exec", "wor"}, "worker-a worker-b"},
		{"exec takes one node", []string{"exec", "worker-a", ""}, ""},
		{"verify skips typed nodes", []string{"verify", "worker-a", ""}, "infra-0 master-0 worker-b"},
		{"wait --pool", []string{"wait", "--pool", ""}, "infra master worker"},
		{"verify --pool prefix", []string{"verify", "--pool", "in"}, "infra"},
		{"enable --role from pools", []string{"enable", "--role", ""}, "infra master worker"},
		{"status -o", []string{"status", "-o", ""}, printFormats + " wide"},
		{"version -o", []string{"version", "-o", ""}, printFormats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, directive := complete(t, kc, tt.args...)
			if got := names(values); got != tt.want {
				t.Errorf("__complete %s = %q, want %q", strings.Join(tt.args, " "), got, tt.want)
			}
			if directive != ":4" { // ShellCompDirectiveNoFileComp
				t.Errorf("directive %s, want :4 (no file completion)", directive)
			}
		})
	}

	// Node descriptions carry the roles.
	values, _ := complete(t, kc, "exec", "infra")
	if len(values) != 1 || values[0] != "infra-0\tinfra" {
		t.Errorf("exec infra<TAB> = %q, want one value \"infra-0\\tinfra\"", values)
	}
}

// TestKubectlPluginCompletion goes through a real kubectl (1.37): kubectl
// finds kubectl_complete-kubens on PATH, which calls the plugin binary's
// __complete. The binary is built here from this tree.
func TestKubectlPluginCompletion(t *testing.T) {
	cp := startCluster(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-kubens"), "./cmd/oc-kubens")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := os.ReadFile(filepath.Join(root, "kubectl_complete-kubens"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kubectl_complete-kubens"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(testenv.K8sBinDir(), "kubectl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "m"}, "master-0"},
		{[]string{"wait", "--pool", ""}, "infra master worker"},
		{[]string{"verify", "-o", ""}, printFormats + " wide"},
	} {
		cmd := exec.Command(kubectl, append([]string{"__complete", "kubens"}, tc.args...)...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "KUBECONFIG=" + cp.KubeconfigPath}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl __complete kubens %v: %v", tc.args, err)
		}
		values, _ := parse(t, string(out))
		if got := names(values); got != tc.want {
			t.Errorf("kubectl __complete kubens %s = %q, want %q\n%s", strings.Join(tc.args, " "), got, tc.want, out)
		}
	}
	fmt.Fprintln(os.Stderr) // keep go test -v output readable after the subprocesses
}
