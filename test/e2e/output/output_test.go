// Package output holds the golden tests of every -o format, run through the
// built binary: render and version need no cluster; status, verify, enable
// and disable run against a real kube-apiserver with the OpenShift CRDs and
// the simulated Machine Config Operator, as test/e2e/control does. Rewrite the golden files with
// go test ./test/e2e/output -update.
package output

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

var pluginBin = e2eutil.PluginBinary{TempPrefix: "oc-kubens-output-bin-"}

// templates are a command's inline jsonpath (also printed as JSON) and
// go-template; the -file formats read testdata/templates/<command>.*.
type templates struct{ jsonpath, asJSON, goTemplate string }

// formatRun is one -o format and its golden file name.
type formatRun struct {
	golden string
	args   []string
}

// printFlagsFormats are the PrintFlags formats of a command whose
// templates are under testdata/templates/<command>.*.
func printFlagsFormats(t *testing.T, command string, tmpl templates) []formatRun {
	dir, err := filepath.Abs(filepath.Join("testdata", "templates"))
	if err != nil {
		t.Fatal(err)
	}
	return []formatRun{
		{"json", []string{"-o", "json"}},
		{"yaml", []string{"-o", "yaml"}},
		{"kyaml", []string{"-o", "kyaml"}},
		{"name", []string{"-o", "name"}},
		{"jsonpath", []string{"-o", "jsonpath=" + tmpl.jsonpath}},
		{"jsonpath-as-json", []string{"-o", "jsonpath-as-json=" + tmpl.asJSON}},
		{"jsonpath-file", []string{"-o", "jsonpath-file", "--template", filepath.Join(dir, command+".jsonpath")}},
		{"go-template", []string{"-o", "go-template=" + tmpl.goTemplate}},
		{"go-template-file", []string{"-o", "go-template-file=" + filepath.Join(dir, command+".tmpl")}},
	}
}

// runFormats runs command once per format and compares each output with
// testdata/<command>/<format>.golden.
func runFormats(t *testing.T, g e2eutil.Golden, command string, extra []string, runs []formatRun) {
	runFormatsIn(t, g, command, 0, append([]string{command}, extra...), runs)
}

// runFormatsIn runs args once per format, expecting exit code wantCode,
// and compares each output with testdata/<dir>/<format>.golden.
func runFormatsIn(t *testing.T, g e2eutil.Golden, dir string, wantCode int, args []string, runs []formatRun) {
	for _, r := range runs {
		t.Run(r.golden, func(t *testing.T) {
			g.Run(t, filepath.Join(dir, r.golden+".golden"), wantCode, append(append([]string{}, args...), r.args...)...)
		})
	}
}

func TestRenderFormats(t *testing.T) {
	g := e2eutil.Golden{Bin: pluginBin.Path(t)}
	runs := append(printFlagsFormats(t, "render", templates{
		jsonpath:   `{range .items[*]}{.metadata.name} {.metadata.labels.machineconfiguration\.openshift\.io/role}{"\n"}{end}`,
		asJSON:     `{.items[*].metadata.name}`,
		goTemplate: `{{range .items}}{{.metadata.name}}: {{len .spec.config.systemd.units}} unit(s){{"\n"}}{{end}}`,
	}), formatRun{"default", nil})
	runFormats(t, g, "render", []string{"--role", "master", "--role", "worker"}, runs)

	// The default is byte-identical with the unit suite's golden file, and
	// -o json with its JSON one: the formats users had before PrintFlags.
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for golden, args := range map[string][]string{"render_default.golden": {"render"}, "render_json.golden": {"render", "-o", "json"}} {
		want, err := os.ReadFile(filepath.Join(repo, "pkg", "plugin", "testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, g.Bin, args...); got != string(want) {
			t.Errorf("%s differs from pkg/plugin/testdata/%s:\n%s", strings.Join(args, " "), golden, got)
		}
	}

	g.Run(t, "render/bad-format.golden", 1, "render", "-o", "wide")
}

func TestVersionFormats(t *testing.T) {
	bin := pluginBin.Path(t)
	g := e2eutil.Golden{Bin: bin, Normalize: versionNormalizer(t, bin)}
	runs := append(printFlagsFormats(t, "version", templates{
		jsonpath:   `{.kind} {.version}{"\n"}`,
		asJSON:     `{.version}`,
		goTemplate: `{{.apiVersion}} {{.platform}}{{"\n"}}`,
	}), formatRun{"default", nil})
	runFormats(t, g, "version", nil, runs)
	g.Run(t, "version/bad-format.golden", 1, "version", "-o", "wide")
}

// versionNormalizer replaces the build stamps (version, commit, date, Go
// version, platform) with <field>, by key where the output names the
// field and by value elsewhere (name, templates).
func versionNormalizer(t *testing.T, bin string) func(string) string {
	var info map[string]string
	raw := run(t, bin, "version", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, raw)
	}
	byKey := regexp.MustCompile(`(?m)^(\s*"?(version|commit|date|goVersion|platform)"?: "?)[^",\n]*`)
	text := regexp.MustCompile(`(?m)^(Version|Git commit|Build date|Go version|Platform):(\s+).*$`)
	textKey := map[string]string{"Version": "version", "Git commit": "commit", "Build date": "date", "Go version": "goVersion", "Platform": "platform"}
	// YAML quotes a stamp that would read as another type (a build date is
	// a timestamp, a commit may be all digits); the placeholder needs none.
	yamlQuoted := regexp.MustCompile(`(?m)^((version|commit|date|goVersion|platform): )"(<[a-zA-Z]+>)"$`)
	return func(s string) string {
		s = byKey.ReplaceAllString(s, "${1}<$2>")
		s = yamlQuoted.ReplaceAllString(s, "${1}$3")
		s = text.ReplaceAllStringFunc(s, func(line string) string {
			m := text.FindStringSubmatch(line)
			return m[1] + ":" + m[2] + "<" + textKey[m[1]] + ">"
		})
		// What is left names the version or the platform only: -o name and
		// this suite's templates print no other stamp.
		s = strings.ReplaceAll(s, info["platform"], "<platform>")
		return strings.ReplaceAll(s, info["version"], "<version>")
	}
}

// run runs the binary and returns its stdout; it must succeed.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return string(out)
}

// TestStatusFormats runs status against a real apiserver whose pools the
// simulated MCO has rolled out: 1 master, 2 workers with encapsulation on
// (99-kubens-worker).
func TestStatusFormats(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	kubeconfig := startCluster(t)
	bin := pluginBin.Path(t)
	// Rendered config names carry a hash of their content: it becomes as
	// many #, so that the table columns stay aligned.
	hash := regexp.MustCompile(`(rendered-[a-z]+-)([0-9a-f]{32,64})`)
	g := e2eutil.Golden{Bin: bin, Args: []string{"--kubeconfig", kubeconfig},
		Normalize: func(s string) string {
			return hash.ReplaceAllStringFunc(s, func(name string) string {
				m := hash.FindStringSubmatch(name)
				return m[1] + strings.Repeat("#", len(m[2]))
			})
		}}
	runs := append(printFlagsFormats(t, "status", templates{
		jsonpath:   `{range .pools[*]}{.name}={.kubens} {.readyMachineCount}/{.machineCount}{"\n"}{end}`,
		asJSON:     `{.pools[*].name}`,
		goTemplate: `{{range .nodes}}{{.name}} {{.pool}} {{.state}} {{.kubens}}{{"\n"}}{{end}}`,
	}),
		formatRun{"default", nil},
		formatRun{"wide", []string{"-o", "wide"}},
		formatRun{"no-headers", []string{"--no-headers"}},
		formatRun{"wide-no-headers", []string{"-o", "wide", "--no-headers"}},
	)
	runFormats(t, g, "status", nil, runs)
	g.Run(t, "status/bad-format.golden", 1, "status", "-o", "xml")
}

// TestChangeFormats runs verify, enable and disable against a real
// apiserver whose pools the simulated MCO has rolled out, as for status.
// The nodes have no kubelet, so verify's probe pods stay Pending and every
// node ends Unknown(Timeout) after --timeout (exit 1); EXPECTED still comes
// from the pools' rendered configs. enable runs as client and server dry
// runs (create 99-kubens-master, 99-kubens-worker unchanged); disable as
// dry runs after a real enable --yes --wait (delete both). With -o, stdout
// holds the objects and stderr the plan: both are compared.
func TestChangeFormats(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	kubeconfig := startCluster(t)
	bin := pluginBin.Path(t)
	g := e2eutil.Golden{Bin: bin, Args: []string{"--kubeconfig", kubeconfig}, Normalize: clusterNormalizer()}

	t.Run("verify", func(t *testing.T) {
		runs := append(printFlagsFormats(t, "verify", templates{
			jsonpath:   `{range .nodes[*]}{.node} {.state}({.reason}) expected {.expected}{"\n"}{end}`,
			asJSON:     `{.summary}`,
			goTemplate: `{{range .nodes}}{{.node}}: {{.message}}{{"\n"}}{{end}}`,
		}),
			formatRun{"default", nil},
			formatRun{"wide", []string{"-o", "wide"}},
		)
		runFormatsIn(t, g, "verify", 1, []string{"verify", "master-0", "worker-0", "--image", "busybox:1.36", "--timeout", "3s"}, runs)
		g.Run(t, "verify/bad-format.golden", 2, "verify", "master-0", "--image", "busybox:1.36", "-o", "xml")
	})

	changeRuns := func(t *testing.T, command string) []formatRun {
		return append(printFlagsFormats(t, command, templates{
			jsonpath:   `{range .items[*]}{.metadata.name} {.metadata.labels.machineconfiguration\.openshift\.io/role}{"\n"}{end}`,
			asJSON:     `{.items[*].metadata.name}`,
			goTemplate: `{{range .items}}{{.metadata.name}}: {{range .spec.config.systemd.units}}{{.name}} enabled={{.enabled}}{{end}}{{"\n"}}{{end}}`,
		}), formatRun{"default", nil})
	}
	for _, dryRun := range []string{"client", "server"} {
		t.Run("enable/"+dryRun, func(t *testing.T) {
			runFormatsIn(t, g, filepath.Join("enable", "dry-run-"+dryRun), 0,
				[]string{"enable", "--dry-run=" + dryRun}, changeRuns(t, "enable"))
		})
	}
	g.Run(t, "enable/bad-format.golden", 1, "enable", "--dry-run=client", "-o", "xml")

	// A real enable, rolled out, so that disable has both configs to delete.
	run(t, bin, "enable", "--yes", "--wait", "--timeout", "2m", "--kubeconfig", kubeconfig)
	for _, dryRun := range []string{"client", "server"} {
		t.Run("disable/"+dryRun, func(t *testing.T) {
			runFormatsIn(t, g, filepath.Join("disable", "dry-run-"+dryRun), 0,
				[]string{"disable", "--dry-run=" + dryRun}, changeRuns(t, "disable"))
		})
	}
	g.Run(t, "disable/bad-format.golden", 1, "disable", "--dry-run=client", "-o", "xml")
}

// clusterNormalizer replaces what differs between clusters and runs: the
// hashes in rendered config names (as many #, so that table columns stay
// aligned), uids, resourceVersions, timestamps and verify's random
// namespace suffix.
func clusterNormalizer() func(string) string {
	hash := regexp.MustCompile(`(rendered-[a-z]+-)([0-9a-f]{32,64})`)
	uid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	rv := regexp.MustCompile(`("?resourceVersion"?:\s*)"[0-9]+"`)
	ts := regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	ns := regexp.MustCompile(`(oc-kubens-verify-)[a-z0-9]{5}\b`)
	return func(s string) string {
		s = hash.ReplaceAllStringFunc(s, func(name string) string {
			m := hash.FindStringSubmatch(name)
			return m[1] + strings.Repeat("#", len(m[2]))
		})
		s = uid.ReplaceAllString(s, "<uid>")
		s = rv.ReplaceAllString(s, `${1}"<resourceVersion>"`)
		s = ts.ReplaceAllString(s, "<timestamp>")
		return ns.ReplaceAllString(s, "${1}<random>")
	}
}

// startCluster starts a control plane with three object-only nodes,
// 99-kubens-worker and the simulated MCO, waits until both pools are
// rolled out, and returns the admin kubeconfig.
func startCluster(t *testing.T) string {
	t.Helper()
	cp := controlplane.StartForTest(t, controlplane.Options{}, 3*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := cp.RESTConfig()
	nodes := map[string][]string{"master-0": {"master"}, "worker-0": {"worker"}, "worker-1": {"worker"}}
	if err := e2eutil.CreateNodes(ctx, cfg, nodes, true); err != nil {
		t.Fatal(err)
	}
	mcfg := mcfgclient.NewForConfigOrDie(cfg)
	mcs, err := manifests.Render(manifests.RenderOptions{Roles: []string{"worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, mc := range mcs {
		if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mco, err := mcosim.Start(context.Background(), cfg, nil, mcosim.Options{
		RenderDelay: 100 * time.Millisecond, StepDelay: 50 * time.Millisecond, RebootDuration: 100 * time.Millisecond,
		ResyncPeriod: 5 * time.Second, Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	t.Cleanup(mco.Stop)

	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pools, err := mcfg.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
		if err != nil || len(pools.Items) != 2 {
			return false, nil
		}
		for i := range pools.Items {
			if !rolledOut(&pools.Items[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("pools not rolled out: %v", err)
	}
	return cp.KubeconfigPath
}

// rolledOut: the pool's status describes its spec, every machine runs the
// rendered config, and the Updated condition is true.
func rolledOut(p *mcfgv1.MachineConfigPool) bool {
	if p.Status.ObservedGeneration != p.Generation || p.Status.Configuration.Name == "" ||
		p.Status.Configuration.Name != p.Spec.Configuration.Name ||
		p.Status.MachineCount == 0 || p.Status.UpdatedMachineCount != p.Status.MachineCount || p.Status.ReadyMachineCount != p.Status.MachineCount {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == mcfgv1.MachineConfigPoolUpdated {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
