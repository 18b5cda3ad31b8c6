// Package output holds the golden tests of every -o format, run through the
// built binary: render and version need no cluster; status runs against a
// real kube-apiserver with the OpenShift CRDs and the simulated Machine
// Config Operator, as test/e2e/control does. Rewrite the golden files with
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
	for _, r := range runs {
		t.Run(r.golden, func(t *testing.T) {
			g.Run(t, filepath.Join(command, r.golden+".golden"), 0, append(append([]string{command}, extra...), r.args...)...)
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
	return func(s string) string {
		s = byKey.ReplaceAllString(s, "${1}<$2>")
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

// startCluster starts a control plane with three object-only nodes,
// 99-kubens-worker and the simulated MCO, waits until both pools are
// rolled out, and returns the admin kubeconfig.
func startCluster(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(context.Background()); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
	})
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
