// Package verify is the end-to-end suite of `oc kubens verify` and
// `oc kubens exec`: the plugin runs against a real etcd + kube-apiserver and
// real nodes (own PID and mount namespace, containerd, kubelet) that are
// plain, encapsulated the way kubens.service does it, or split; the debug
// pods run the real probe in the busybox tools image.
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// imageFlags make the debug pods use the tools image every node imported.
var imageFlags = []string{"--image", images.ToolsImage, "--image-pull-policy", "Never"}

func startCluster(t *testing.T, o harness.Options) *harness.Cluster {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o.Logf = t.Logf
	c, err := harness.Up(ctx, o)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	t.Logf("cluster %s up in %s", c.Name, c.StartDuration.Round(time.Millisecond))
	return c
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout:\n%s--- stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run executes the plugin in-process as `oc kubens args...`.
func run(t *testing.T, c *harness.Cluster, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	// --kubeconfig right after the subcommand: anything after "--" belongs
	// to exec's remote command.
	full := append([]string{"oc-kubens", args[0], "--kubeconfig", c.KubeconfigPath()}, args[1:]...)
	start := time.Now()
	code := plugin.Execute(full, streams)
	r := result{stdout: out.String(), stderr: errOut.String(), code: code, took: time.Since(start)}
	t.Logf("oc kubens %s -> %s", strings.Join(args, " "), r)
	return r
}

// verifyJSON runs verify -o json and decodes the report.
func verifyJSON(t *testing.T, c *harness.Cluster, args ...string) (*vfy.VerifyReport, result) {
	t.Helper()
	r := run(t, c, append(append([]string{"verify", "-o", "json"}, imageFlags...), args...)...)
	var rep vfy.VerifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify -o json printed no report: %v\n%s", err, r)
	}
	return &rep, r
}

func byNode(rep *vfy.VerifyReport) map[string]vfy.NodeResult {
	m := map[string]vfy.NodeResult{}
	for _, n := range rep.Nodes {
		m[n.Node] = n
	}
	return m
}

// wantStates checks each node's state (node names without the cluster prefix).
func wantStates(t *testing.T, c *harness.Cluster, rep *vfy.VerifyReport, want map[string]vfy.State) {
	t.Helper()
	got := byNode(rep)
	for short, st := range want {
		n := got[c.NodeName(short)]
		if n.State != st {
			t.Errorf("%s: state %s (%s: %s), want %s", short, n.State, n.Reason, n.Message, st)
		}
	}
}

// noLeftovers waits until no namespace of ours is left (deleting a
// namespace takes the namespace controller a few seconds).
func noLeftovers(t *testing.T, kube kubernetes.Interface, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		nss, err := kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, ns := range nss.Items {
			if ns.Labels[vfy.RunLabel] != "stale-test" {
				left = append(left, ns.Name+"("+string(ns.Status.Phase)+")")
			}
		}
		pods, err := kube.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			left = append(left, "pod "+p.Namespace+"/"+p.Name)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind after %s: %s", within, strings.Join(left, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var pluginBin = e2eutil.PluginBinary{TempPrefix: "oc-kubens-e2e-verify-"}

// pluginBinary is $OC_KUBENS_BIN or a fresh static build.
func pluginBinary(t testing.TB) string {
	t.Helper()
	return pluginBin.Path(t)
}

// hostMountPoints lists the mount points PID 1 of a node sees.
func hostMountPoints(t *testing.T, n *node.Node) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", n.InitPID()))
	if err != nil {
		t.Fatal(err)
	}
	return mountPoints(string(data))
}

func mountPoints(mountinfo string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			m[f[4]] = true
		}
	}
	return m
}

func yamlToJSONBytes(b []byte) ([]byte, error) { return yaml.YAMLToJSON(b) }
