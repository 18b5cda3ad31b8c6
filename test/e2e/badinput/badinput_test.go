// Package badinput runs the built plugin binary on bad input: mistyped
// flags and values, broken kubeconfigs, a cluster without the MachineConfig
// API, a user without rights, a pool with an invalid selector, a
// MachineConfig that is not Ignition, node names at the length limits and
// hostile probe reports from a fake kubelet. Every case must end with its
// documented exit code and, on failure, exactly one "error: " line, with no
// panic and no write to the cluster (verify's own temporary namespace
// excepted, which must be gone afterwards).
package badinput

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// Exit codes, as documented: every command exits 1 on an error (Execute in
// pkg/plugin/root.go, docs/architecture.md); verify exits 1 when a node is
// not in the --expect state and 2 when it could not run at all (its help).
const (
	exitError      = 1
	verifyNotAsExp = 1
	verifyCannot   = 2
)

var pluginBin = e2eutil.PluginBinary{TempPrefix: "oc-kubens-badinput-bin-"}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout:\n%s--- stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runBinary runs the built binary with stdin from /dev/null, a fresh HOME
// (no ~/.kube/config, no discovery cache of an earlier case) and no
// KUBECONFIG from the environment. The process is killed after limit.
func runBinary(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, pluginBin.Path(t), args...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("oc-kubens %q did not end within %s:\n%s", args, limit, r)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// cluster is one control plane with object-only nodes and an admin client.
type cluster struct {
	cp   *controlplane.ControlPlane
	kube kubernetes.Interface
	mcfg mcfgclient.Interface
	cfg  *rest.Config
}

func startCluster(t *testing.T, o controlplane.Options, nodes map[string][]string) *cluster {
	t.Helper()
	cp := controlplane.StartForTest(t, o, 3*time.Minute)
	c := &cluster{cp: cp, cfg: cp.RESTConfig()}
	c.kube = kubernetes.NewForConfigOrDie(c.cfg)
	c.mcfg = mcfgclient.NewForConfigOrDie(c.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e2eutil.CreateNodes(ctx, c.cfg, nodes, true); err != nil {
		t.Fatal(err)
	}
	return c
}

// snapshot maps every object a command could write (MachineConfigs, pools,
// nodes, namespaces, cluster role bindings) to its resourceVersion:
// two equal snapshots mean nothing was created, changed or deleted.
func (c *cluster) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(kind string, items []metav1.Object) {
		for _, o := range items {
			out[kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	mcs, err := c.mcfg.MachineconfigurationV1().MachineConfigs().List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	pools, err := c.mcfg.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nss, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crs, err := c.kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []metav1.Object
	if mcs != nil {
		for i := range mcs.Items {
			objs = append(objs, &mcs.Items[i])
		}
	}
	add("machineconfig", objs)
	objs = nil
	if pools != nil {
		for i := range pools.Items {
			objs = append(objs, &pools.Items[i])
		}
	}
	add("machineconfigpool", objs)
	objs = nil
	for i := range nodes.Items {
		objs = append(objs, &nodes.Items[i])
	}
	add("node", objs)
	objs = nil
	for i := range nss.Items {
		// verify's own namespaces come and go; verifyNamespacesDeleted
		// and verifyNamespacesGone account for them.
		if _, ok := nss.Items[i].Labels[vfy.RunLabel]; !ok {
			objs = append(objs, &nss.Items[i])
		}
	}
	add("namespace", objs)
	objs = nil
	for i := range crs.Items {
		objs = append(objs, &crs.Items[i])
	}
	add("clusterrolebinding", objs)
	return out
}

// verifyNamespacesDeleted checks that verify deleted the namespaces it
// made: each is gone or on its way out (the namespace controller takes a
// few seconds to empty one, so the table does not wait for each).
func (c *cluster) verifyNamespacesDeleted(t *testing.T) {
	t.Helper()
	l, err := c.kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range l.Items {
		if ns.DeletionTimestamp == nil {
			t.Errorf("verify left namespace %s behind", ns.Name)
		}
	}
}

// verifyNamespacesGone waits until no namespace of a verify run is left:
// verify deletes its own; the namespace controller then empties and
// removes it.
func (c *cluster) verifyNamespacesGone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		l, err := c.kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: vfy.RunLabel})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, ns := range l.Items {
				names = append(names, fmt.Sprintf("%s (%s)", ns.Name, ns.Status.Phase))
			}
			t.Fatalf("verify left namespaces behind: %s", strings.Join(names, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diff lists what changed between two snapshots.
func diff(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		switch w, ok := after[k]; {
		case !ok:
			out = append(out, "deleted "+k)
		case w != v:
			out = append(out, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, "created "+k)
		}
	}
	sort.Strings(out)
	return out
}

// testCase is one command line and what it must do.
type testCase struct {
	name string
	args []string
	code int
	// stderr lists what the error line must say.
	stderr []string
	// report: verify printed its table and exits 1 because a node is not
	// as expected; that is a result, not an error, so there is no
	// "error: " line. stdout lists what the table must say.
	report bool
	stdout []string
	// verifyRun: verify creates (and must delete) its namespace.
	verifyRun bool
	// limit bounds the run (default 2 minutes: no case may hang).
	limit time.Duration
}

// goroutineDump matches the start of a Go panic or fatal error trace.
var goroutineDump = regexp.MustCompile(`(?m)^(panic: |fatal error: |goroutine \d+ \[)`)

// rawControl matches what must never reach the terminal raw: escape
// sequences, carriage returns, NUL and other C0 controls (tab and newline
// are fine).
var rawControl = regexp.MustCompile("[\x00-\x08\x0b-\x1f\x7f]")

func (tc testCase) check(t *testing.T, c *cluster) {
	t.Helper()
	before := c.snapshot(t)
	limit := tc.limit
	if limit == 0 {
		limit = 2 * time.Minute
	}
	r := runBinary(t, limit, tc.args...)
	t.Logf("oc-kubens %q -> %s", tc.args, r)
	if r.code != tc.code {
		t.Errorf("exit %d, want %d", r.code, tc.code)
	}
	all := r.stdout + r.stderr
	if goroutineDump.MatchString(all) {
		t.Errorf("output carries a panic or goroutine dump")
	}
	if loc := rawControl.FindStringIndex(all); loc != nil {
		t.Errorf("output carries a raw control character %q at %d", all[loc[0]:loc[1]], loc[0])
	}
	var errLines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "error:") {
			errLines = append(errLines, l)
		}
	}
	switch {
	case tc.code == 0 || tc.report:
		if len(errLines) != 0 {
			t.Errorf("%d error lines, want none: %q", len(errLines), errLines)
		}
	case len(errLines) != 1:
		t.Errorf("%d error lines, want exactly one: %q", len(errLines), errLines)
	default:
		for _, w := range tc.stderr {
			if !strings.Contains(errLines[0], w) {
				t.Errorf("error line lacks %q: %s", w, errLines[0])
			}
		}
	}
	for _, w := range tc.stdout {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout lacks %q", w)
		}
	}
	if tc.verifyRun {
		c.verifyNamespacesDeleted(t)
	}
	if d := diff(before, c.snapshot(t)); len(d) > 0 {
		t.Errorf("the command wrote to the cluster: %s", strings.Join(d, ", "))
	}
}

// writeKubeconfig writes a kubeconfig for server with the given client
// certificate, trusting the cluster's CA.
func writeKubeconfig(t *testing.T, c *cluster, name, server string, cert, key []byte) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.cp.CAPEM()}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// Node names at the limits: a 253-character DNS subdomain made of 63-character
// labels, and a 63-character single label.
var (
	label63 = strings.Repeat("a", 62) + "z"
	name253 = strings.Join([]string{strings.Repeat("b", 63), strings.Repeat("c", 63), strings.Repeat("d", 63), strings.Repeat("e", 61)}, ".")
)

// hostileReports are termination messages a broken or malicious probe (or
// kubelet) could leave, by node name.
func hostileReports() map[string]string {
	good := e2eutil.ProbeReport(e2eutil.NodePlain)
	body := strings.TrimPrefix(good, vfy.ReportHeader+"\n")
	return map[string]string{
		// The kubelet keeps at most 4096 bytes; a status written by
		// something else may carry more.
		"hostile-oversized-4097": good + strings.Repeat("x", 4097-len(good)),
		"hostile-oversized-1mib": good + strings.Repeat("y", 1<<20),
		"hostile-binary":         "\x00\x01\x02\xff\xfe\x7fELF\x00\x00" + good,
		"hostile-duplicate-key":  strings.Replace(good, "end\n", "pid1.mnt=4026531841\nend\n", 1),
		"hostile-newlines":       strings.Replace(good, "kubelet.pid=2345\n", "kubelet.pid=2345\r\n\n\n", 1),
		"hostile-escape":         strings.Replace(good, "runtime.name=crio", "runtime.name=\x1b[2J\x1b[31mcrio\x1b]0;pwned\x07", 1),
		"hostile-value-newline":  strings.Replace(good, "unit.kubens.enabled=disabled", "unit.kubens.enabled=disabled\nerror: forged line", 1),
		"hostile-forged-version": "kubens-probe v9\n" + body,
		"hostile-version-escape": "kubens-probe v1\x1b[8m\n" + body,
		"hostile-empty":          "",
	}
}

// TestBadInput is the table: one control plane with the MachineConfig API
// and object-only nodes (no MCO, so nothing else writes to pools or nodes
// while the snapshot is compared), one without it, and a fake kubelet
// that answers verify's pods with the reports above.
func TestBadInput(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	reports := hostileReports()
	nodes := map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}, label63: {"worker"}, name253: {"worker"}}
	for n := range reports {
		nodes[n] = []string{"worker"}
	}
	c := startCluster(t, controlplane.Options{Logf: t.Logf}, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	plain := e2eutil.ProbeReport(e2eutil.NodePlain)
	e2eutil.StartAgent(ctx, t, c.cfg, e2eutil.AgentOptions{
		Report: func(_ context.Context, node string) string {
			if r, ok := reports[node]; ok {
				return r
			}
			return plain
		},
	})
	admin := c.cp.KubeconfigPath
	kc := func(path string, args ...string) []string { return append(args, "--kubeconfig", path) }

	// Kubeconfigs that cannot work.
	garbage := filepath.Join(t.TempDir(), "garbage.kubeconfig")
	if err := os.WriteFile(garbage, []byte("\x00\x01 not: [yaml\n\x1b[31m"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key, err := c.cp.IssueExpiredClientCert("kubens-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	expired := writeKubeconfig(t, c, "expired", c.cp.APIServerURL, cert, key)
	cert, key, err = c.cp.IssueClientCert("kubens-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := writeKubeconfig(t, c, "unreachable", fmt.Sprintf("https://127.0.0.1:%d", closedPort(t)), cert, key)
	// bob has no rights at all.
	bob, err := c.cp.UserKubeconfig("bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	// alice may read pools and MachineConfigs, not write them.
	alice := readOnlyUser(t, c, "alice")

	const fast = 30 * time.Second // a refused connection must not be retried for long
	vimg := []string{"--image", "busybox:1.36"}
	verifyArgs := func(args ...string) []string {
		return kc(admin, append(append([]string{"verify"}, args...), vimg...)...)
	}

	cases := []testCase{
		// Flags and values.
		{name: "unknown command", args: kc(admin, "enabel"), code: exitError, stderr: []string{`unknown command "enabel"`, `did you mean "enable"`}},
		{name: "unknown flag", args: kc(admin, "status", "--frobnicate"), code: exitError, stderr: []string{"unknown flag: --frobnicate", "--help"}},
		{name: "unknown flag verify", args: kc(admin, "verify", "--all-nodes", "--frobnicate"), code: verifyCannot, stderr: []string{"unknown flag: --frobnicate"}},
		{name: "bad role", args: kc(admin, "enable", "--yes", "--role", "Not_A-Role!"), code: exitError, stderr: []string{"invalid role"}},
		{name: "comma roles", args: kc(admin, "enable", "--yes", "--role", "master,worker"), code: exitError, stderr: []string{"invalid role"}},
		{name: "role with escape", args: kc(admin, "render", "--role", "w\x1b[31m\norker"), code: exitError, stderr: []string{"--role"}},
		{name: "bad output", args: kc(admin, "status", "-o", "bogus"), code: exitError, stderr: []string{"bogus"}},
		{name: "bad output verify", args: verifyArgs("--all-nodes", "-o", "bogus"), code: verifyCannot, stderr: []string{"bogus"}},
		{name: "broken jsonpath", args: kc(admin, "status", "-o", "jsonpath={.items[0"), code: exitError, stderr: []string{"jsonpath"}},
		{name: "missing jsonpath key", args: kc(admin, "render", "--allow-missing-template-keys=false", "-o", "jsonpath={.nope}"), code: exitError, stderr: []string{"nope is not found"}},
		{name: "negative parallelism", args: verifyArgs("--all-nodes", "--parallelism", "-1"), code: verifyCannot, stderr: []string{"--parallelism must be at least 1"}},
		{name: "zero parallelism", args: verifyArgs("--all-nodes", "--parallelism", "0"), code: verifyCannot, stderr: []string{"--parallelism must be at least 1"}},
		{name: "zero timeout", args: verifyArgs("--all-nodes", "--timeout", "0s"), code: verifyCannot, stderr: []string{"--timeout"}},
		{name: "negative wait timeout", args: kc(admin, "wait", "--timeout", "-5m"), code: exitError, stderr: []string{"--timeout must be positive"}},
		{name: "not a duration", args: kc(admin, "wait", "--timeout", "soon"), code: exitError, stderr: []string{"soon"}},
		{name: "nodes and all-nodes", args: verifyArgs("worker-0", "--all-nodes"), code: verifyCannot, stderr: []string{"exactly one of"}},
		{name: "pool and selector", args: verifyArgs("--pool", "worker", "-l", "a=b"), code: verifyCannot, stderr: []string{"exactly one of"}},
		{name: "bad expect", args: verifyArgs("--all-nodes", "--expect", "sideways"), code: verifyCannot, stderr: []string{"--expect"}},
		{name: "bad pull policy", args: verifyArgs("--all-nodes", "--image-pull-policy", "Sometimes"), code: verifyCannot, stderr: []string{"--image-pull-policy"}},
		{name: "bad label selector", args: verifyArgs("-l", "a in (b"), code: verifyCannot},
		{name: "extra args", args: kc(admin, "status", "extra", "args"), code: exitError, stderr: []string{"takes no arguments"}},
		{name: "wrap and disabled", args: kc(admin, "render", "--wrap", "a.service=/bin/a", "--disabled"), code: exitError, stderr: []string{"--wrap and --disabled"}},
		{name: "no terminal no yes", args: kc(admin, "enable"), code: exitError},
		// Kubeconfig.
		{name: "kubeconfig missing", args: kc("/nonexistent/kubeconfig", "status"), code: exitError, stderr: []string{"/nonexistent/kubeconfig"}},
		{name: "kubeconfig missing verify", args: kc("/nonexistent/kubeconfig", "verify", "--all-nodes"), code: verifyCannot, stderr: []string{"/nonexistent/kubeconfig"}},
		{name: "kubeconfig garbage", args: kc(garbage, "status"), code: exitError},
		{name: "kubeconfig garbage enable", args: kc(garbage, "enable", "--yes"), code: exitError},
		{name: "wrong context", args: kc(admin, "status", "--context", "nowhere"), code: exitError, stderr: []string{`context "nowhere" does not exist`}},
		{name: "expired certificate", args: kc(expired, "status"), code: exitError, stderr: []string{"credentials"}},
		{name: "expired certificate enable", args: kc(expired, "enable", "--yes"), code: exitError, stderr: []string{"credentials"}},
		{name: "expired certificate verify", args: kc(expired, "verify", "--all-nodes"), code: verifyCannot, stderr: []string{"credentials"}},
		{name: "unreachable status", args: kc(unreachable, "status"), code: exitError, stderr: []string{"connection refused"}, limit: fast},
		{name: "unreachable enable", args: kc(unreachable, "enable", "--yes"), code: exitError, stderr: []string{"connection refused"}, limit: fast},
		{name: "unreachable wait", args: kc(unreachable, "wait"), code: exitError, stderr: []string{"connection refused"}, limit: fast},
		{name: "unreachable verify", args: kc(unreachable, "verify", "--all-nodes"), code: verifyCannot, stderr: []string{"connection refused"}, limit: fast},
		// RBAC.
		{name: "no rights status", args: kc(bob, "status"), code: exitError, stderr: []string{"not allowed", "cluster administrator"}},
		{name: "no rights enable", args: kc(bob, "enable", "--yes"), code: exitError, stderr: []string{"not allowed", "cluster administrator"}},
		{name: "no rights verify", args: kc(bob, append([]string{"verify", "--all-nodes"}, vimg...)...), code: verifyCannot, stderr: []string{"not allowed"}},
		{name: "read-only enable", args: kc(alice, "enable", "--yes"), code: exitError, stderr: []string{"not allowed to create/patch", "nothing was changed"}},
		{name: "read-only disable, nothing to do", args: kc(alice, "disable", "--yes"), code: 0, stdout: []string{"Nothing to change"}},
		// Node names at the limits.
		{name: "long names status", args: kc(admin, "status", "-o", "wide"), code: 0, stdout: []string{name253, label63}},
		{name: "long names verify", args: verifyArgs(name253, label63, "--expect", "not-encapsulated"), code: 0, verifyRun: true, stdout: []string{name253, label63}},
		{name: "long names verify json", args: verifyArgs(name253, "--expect", "not-encapsulated", "-o", "json"), code: 0, verifyRun: true, stdout: []string{name253}},
		{name: "name too long", args: verifyArgs(name253 + "x"), code: verifyCannot},
	}
	// Hostile reports: the node is Unknown(BadReport), verify exits 1 with
	// its table, and nothing of the report reaches the terminal raw.
	var hostile []string
	for n := range reports {
		hostile = append(hostile, n)
	}
	sort.Strings(hostile)
	for _, n := range hostile {
		cases = append(cases, testCase{name: "report " + strings.TrimPrefix(n, "hostile-"), args: verifyArgs(n, "--expect", "not-encapsulated", "-o", "wide"),
			code: verifyNotAsExp, report: true, verifyRun: true, stdout: []string{n, "Unknown(BadReport)"}})
	}
	cases = append(cases, testCase{name: "reports all at once json", args: verifyArgs(append(hostile, "--expect", "not-encapsulated", "-o", "json")...),
		code: verifyNotAsExp, report: true, verifyRun: true, stdout: []string{`"BadReport"`}})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, c) })
	}
	// Every namespace verify made is really removed, pods and all.
	c.verifyNamespacesGone(t)

	// A pool whose selectors do not parse: every command that reads pools
	// says which pool and why; nothing is written.
	t.Run("invalid selector", func(t *testing.T) {
		pool := &mcfgv1.MachineConfigPool{
			ObjectMeta: metav1.ObjectMeta{Name: "broken"},
			Spec: mcfgv1.MachineConfigPoolSpec{
				MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: mcfgv1.MachineConfigRoleLabelKey, Operator: metav1.LabelSelectorOpIn, Values: []string{"worker", "broken"}},
					{Key: "tier", Operator: "Sometimes", Values: []string{"x"}},
				}},
				NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"not a valid key!": ""}},
			},
		}
		if _, err := c.mcfg.MachineconfigurationV1().MachineConfigPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.mcfg.MachineconfigurationV1().MachineConfigPools().Delete(ctx, pool.Name, metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
		}()
		for _, tc := range []testCase{
			{name: "status", args: kc(admin, "status"), code: exitError, stderr: []string{"broken"}},
			{name: "enable", args: kc(admin, "enable", "--yes"), code: exitError, stderr: []string{"broken"}},
			{name: "disable", args: kc(admin, "disable", "--yes"), code: exitError, stderr: []string{"broken"}},
			{name: "wait", args: kc(admin, "wait"), code: exitError, stderr: []string{"broken"}},
			{name: "verify pool", args: verifyArgs("--pool", "broken"), code: verifyCannot, stderr: []string{"pool broken: invalid nodeSelector"}},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.check(t, c) })
		}
	})

	// oc-kubens' own config exists: a user who may read but not delete it
	// is refused, and nothing is deleted.
	t.Run("read-only with managed config", func(t *testing.T) {
		mcs, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, mc := range mcs {
			if _, err := c.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name, metav1.DeleteOptions{}); err != nil {
					t.Error(err)
				}
			}()
		}
		for _, tc := range []testCase{
			{name: "disable", args: kc(alice, "disable", "--yes"), code: exitError, stderr: []string{"not allowed", "nothing was changed"}},
			{name: "disable no rights", args: kc(bob, "disable", "--yes"), code: exitError, stderr: []string{"not allowed"}},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.check(t, c) })
		}
	})

	// A MachineConfig whose spec.config is not an Ignition config (the API
	// only insists on a JSON object).
	t.Run("config not ignition", func(t *testing.T) {
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "50-garbage-worker", Labels: map[string]string{mcfgv1.MachineConfigRoleLabelKey: "worker"}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: mustJSON(t, map[string]any{
				"ignition": "not an object",
				"systemd":  map[string]any{"units": "\x1b[31mnot a list"},
			})}},
		}
		if _, err := c.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name, metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
		}()
		for _, tc := range []testCase{
			{name: "status", args: kc(admin, "status"), code: 0},
			{name: "enable", args: kc(admin, "enable", "--yes"), code: exitError, stderr: []string{"refusing to enable", "nothing was changed"}, stdout: []string{"CANNOT FORECAST: MachineConfig 50-garbage-worker"}},
			{name: "enable dry-run", args: kc(admin, "enable", "--dry-run=client"), code: exitError, stderr: []string{"refusing to enable"}, stdout: []string{"CANNOT FORECAST: MachineConfig 50-garbage-worker"}},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.check(t, c) })
		}
	})

	// Plain Kubernetes: no MachineConfig API.
	t.Run("no machineconfig api", func(t *testing.T) {
		k := startCluster(t, controlplane.Options{NoMachineConfigCRDs: true}, map[string][]string{"node-0": {"worker"}})
		for _, tc := range []testCase{
			{name: "status", args: kc(k.cp.KubeconfigPath, "status"), code: exitError, stderr: []string{"no MachineConfig API"}},
			{name: "enable", args: kc(k.cp.KubeconfigPath, "enable", "--yes"), code: exitError, stderr: []string{"no MachineConfig API"}},
			{name: "disable", args: kc(k.cp.KubeconfigPath, "disable", "--yes"), code: exitError, stderr: []string{"no MachineConfig API"}},
			{name: "wait", args: kc(k.cp.KubeconfigPath, "wait"), code: exitError, stderr: []string{"no MachineConfig API"}},
			{name: "wrap", args: kc(k.cp.KubeconfigPath, "wrap", "--yes", "a.service"), code: exitError},
			{name: "verify pool", args: kc(k.cp.KubeconfigPath, "verify", "--pool", "worker", "--image", "busybox:1.36"), code: verifyCannot},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.check(t, k) })
		}
	})
}

// readOnlyUser writes a kubeconfig for user, who may read pools and
// MachineConfigs but not write them, and waits until RBAC says so.
func readOnlyUser(t *testing.T, c *cluster, user string) string {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "mc-reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{mcfgv1.GroupName}, Resources: []string{"machineconfigs", "machineconfigpools"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := c.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-mc-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if _, err := c.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path, err := c.cp.UserKubeconfig(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	mc := mcfgclient.NewForConfigOrDie(cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := mc.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
		if err == nil {
			return path
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC never let %s list pools: %v", user, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
