package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{golden: "render_default.golden"},
		{golden: "render_default.golden", args: []string{"--role", "worker", "--role", "master"}},
		{golden: "render_default.golden", args: []string{"-o", "yaml"}},
		{golden: "render_arbiter.golden", args: []string{"--role", "arbiter"}},
		{golden: "render_infra.golden", args: []string{"--role", "infra"}},
		{golden: "render_disabled.golden", args: []string{"--disabled"}},
		{golden: "render_json.golden", args: []string{"-o", "json"}},
		{golden: "render_wrap.golden", args: []string{"--role", "worker", "--wrap", `node-agent.service=-/usr/local/bin/node-agent --label "two words" cost=$$5 unit=%n`, "--wrap", "b.service=/bin/b"}},
		// Standard kubectl flags are accepted and ignored: render never
		// contacts a cluster.
		{golden: "render_default.golden", args: []string{"--kubeconfig", "/nonexistent", "--context", "nowhere"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{tt.golden}, tt.args...), " "), func(t *testing.T) {
			out, errOut, code := run(t, "oc-kubens", append([]string{"render"}, tt.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if *update && len(tt.args) > 0 && tt.golden == "render_default.golden" {
				return // only the plain run writes the shared golden file
			}
			golden(t, tt.golden, out)

			again, _, _ := run(t, "oc-kubens", append([]string{"render"}, tt.args...)...)
			if again != out {
				t.Error("output is not byte-stable across runs")
			}
		})
	}
}

// TestRenderOutputParses checks the printed objects decode back into the
// expected MachineConfigs, in both formats, and pass the validator again.
func TestRenderOutputParses(t *testing.T) {
	yamlOut, _, _ := run(t, "oc-kubens", "render", "--role", "infra", "--role", "worker", "--disabled")
	docs := strings.Split(yamlOut, "\n---\n")
	jsonOut, _, _ := run(t, "oc-kubens", "render", "--role", "infra", "--role", "worker", "--disabled", "-o", "json")
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 || len(docs) != 2 {
		t.Fatalf("got %s/%s with %d items and %d YAML documents, want v1/List with 2 and 2", list.APIVersion, list.Kind, len(list.Items), len(docs))
	}
	for i, want := range []string{"99-kubens-infra", "99-kubens-worker"} {
		for format, raw := range map[string][]byte{"yaml": []byte(docs[i]), "json": list.Items[i]} {
			mc := decodeMC(t, raw)
			if mc.Name != want || !manifests.IsManaged(mc) {
				t.Errorf("%s item %d: name %q managed %v, want %q managed", format, i, mc.Name, manifests.IsManaged(mc), want)
			}
			if err := manifests.Validate(mc); err != nil {
				t.Errorf("%s item %d: %v", format, i, err)
			}
			enabled, found, err := manifests.UnitEnabled(mc.Spec.Config.Raw, manifests.UnitName)
			if err != nil || !found || enabled {
				t.Errorf("%s item %d: UnitEnabled = %v, %v, %v; want false, true, nil", format, i, enabled, found, err)
			}
		}
	}
}

func TestRenderBadInput(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "empty role", args: []string{"--role", ""}, wantErr: "role must not be empty"},
		{name: "bad role", args: []string{"--role", "Bad Role!"}, wantErr: `invalid role "Bad Role!"`},
		{name: "one bad among good", args: []string{"--role", "worker", "--role", "Infra"}, wantErr: `invalid role "Infra"`},
		{name: "comma list", args: []string{"--role", "master,worker"}, wantErr: "name one role per flag"},
		{name: "xml", args: []string{"-o", "xml"}, wantErr: `unsupported output format "xml"`},
		{name: "stray argument", args: []string{"worker"}, wantErr: `takes no arguments, got "worker" (see 'oc kubens render --help')`},
		{name: "unknown flag", args: []string{"--roles", "x"}, wantErr: "unknown flag: --roles"},
		{name: "flag without value", args: []string{"--role"}, wantErr: "flag needs an argument"},
		{name: "wrap without a command", args: []string{"--wrap", "a.service"}, wantErr: `"a.service": want UNIT=CMD`},
		{name: "wrap a socket", args: []string{"--wrap", "a.socket=/bin/a"}, wantErr: "a.socket"},
		{name: "wrap with argv0", args: []string{"--wrap", "a.service=@/bin/a a"}, wantErr: `the "@" prefix`},
		{name: "wrap twice", args: []string{"--wrap", "a.service=/bin/a", "--wrap", "a.service=/bin/b"}, wantErr: "a.service is given twice"},
		{name: "wrap and disabled", args: []string{"--wrap", "a.service=/bin/a", "--disabled"}, wantErr: "--wrap and --disabled do not go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, "oc-kubens", append([]string{"render"}, tt.args...)...)
			checkOneLineError(t, out, errOut, code, tt.wantErr)
		})
	}
}

func checkOneLineError(t *testing.T, out, errOut string, code int, want string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout not empty: %q", out)
	}
	if !strings.HasPrefix(errOut, "error: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("stderr is not one 'error: ...' line: %q", errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q does not contain %q", errOut, want)
	}
}

func decodeMC(t *testing.T, raw []byte) *mcfgv1.MachineConfig {
	t.Helper()
	mc := &mcfgv1.MachineConfig{}
	if err := yaml.UnmarshalStrict(raw, mc); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return mc
}
