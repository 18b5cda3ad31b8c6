package manifests

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const seedFixture = "testdata/seed_mount_namespace_config.yaml"

func TestName(t *testing.T) {
	if got, want := Name("infra"), "99-kubens-infra"; got != want {
		t.Fatalf("Name(infra) = %q, want %q", got, want)
	}
}

func TestValidateRole(t *testing.T) {
	tests := []struct {
		role    string
		wantErr string
	}{
		{role: "master"},
		{role: "worker"},
		{role: "arbiter"},
		{role: "infra"},
		{role: "worker-cnf"},
		{role: "", wantErr: "must not be empty"},
		{role: "Bad Role!", wantErr: `invalid role "Bad Role!"`},
		{role: "Worker", wantErr: "invalid role"},
		{role: "-infra", wantErr: "invalid role"},
		{role: "a.b", wantErr: "invalid role"},
		{role: strings.Repeat("x", 64), wantErr: "invalid role"},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			err := ValidateRole(tt.role)
			checkErr(t, err, tt.wantErr)
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		opts      RenderOptions
		wantNames []string
		wantErr   string
	}{
		{name: "default roles", opts: RenderOptions{Enabled: true}, wantNames: []string{"99-kubens-master", "99-kubens-worker"}},
		{name: "sorted and deduplicated", opts: RenderOptions{Roles: []string{"worker", "infra", "worker", "arbiter"}, Enabled: true},
			wantNames: []string{"99-kubens-arbiter", "99-kubens-infra", "99-kubens-worker"}},
		{name: "disabled", opts: RenderOptions{Roles: []string{"worker"}}, wantNames: []string{"99-kubens-worker"}},
		{name: "bad role", opts: RenderOptions{Roles: []string{"master", "Bad Role!"}}, wantErr: `invalid role "Bad Role!"`},
		{name: "empty role", opts: RenderOptions{Roles: []string{""}}, wantErr: "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mcs, err := Render(tt.opts)
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			var names []string
			for _, mc := range mcs {
				names = append(names, mc.Name)
				if !IsManaged(mc) {
					t.Errorf("%s: not marked as managed: %v", mc.Name, mc.Labels)
				}
				role := strings.TrimPrefix(mc.Name, "99-kubens-")
				if mc.Labels[RoleLabel] != role {
					t.Errorf("%s: role label %q, want %q", mc.Name, mc.Labels[RoleLabel], role)
				}
				enabled, found, err := UnitEnabled(mc.Spec.Config.Raw, UnitName)
				if err != nil || !found || enabled != tt.opts.Enabled {
					t.Errorf("%s: UnitEnabled = %v, %v, %v; want %v, true, nil", mc.Name, enabled, found, err, tt.opts.Enabled)
				}
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("names = %v, want %v", names, tt.wantNames)
			}
		})
	}
}

// TestRenderMatchesSeed compares the rendered objects with the documented
// manual procedure field by field; only our marker label may differ.
func TestRenderMatchesSeed(t *testing.T) {
	seed := readSeedFixture(t)
	mcs, err := Render(RenderOptions{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(mcs) != len(seed) {
		t.Fatalf("rendered %d MachineConfigs, seed has %d", len(mcs), len(seed))
	}
	for i, mc := range mcs {
		got := mc.DeepCopy()
		delete(got.Labels, ManagedByLabel)
		want := seed[i]
		if got.APIVersion != want.APIVersion || got.Kind != want.Kind {
			t.Errorf("%s: type %s/%s, seed %s/%s", got.Name, got.APIVersion, got.Kind, want.APIVersion, want.Kind)
		}
		if !reflect.DeepEqual(got.ObjectMeta, want.ObjectMeta) {
			t.Errorf("%s: metadata differs from seed:\n got  %+v\n want %+v", got.Name, got.ObjectMeta, want.ObjectMeta)
		}
		gotCfg, wantCfg := decodeJSON(t, got.Spec.Config.Raw), decodeJSON(t, want.Spec.Config.Raw)
		if !reflect.DeepEqual(gotCfg, wantCfg) {
			t.Errorf("%s: spec.config differs from seed:\n got  %v\n want %v", got.Name, gotCfg, wantCfg)
		}
		got.Spec.Config, want.Spec.Config = runtime.RawExtension{}, runtime.RawExtension{}
		if !reflect.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("%s: spec differs from seed:\n got  %+v\n want %+v", got.Name, got.Spec, want.Spec)
		}
	}
}

// TestSeedFixtureMatchesSharedSeed keeps the fixture honest: when the shared
// folder sits beside the repository (it does in CI), the YAML block of step 1
// in the seed must equal our copy.
func TestSeedFixtureMatchesSharedSeed(t *testing.T) {
	pages, _ := filepath.Glob("../../../shared/seed/*.txt")
	if len(pages) == 0 {
		t.Skip("../shared/seed not present beside the repository; the fixture copy is used alone")
	}
	fixture, err := os.ReadFile(seedFixture)
	if err != nil {
		t.Fatal(err)
	}
	want := stripComments(fixture)
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		block, ok := seedYAMLBlock(string(text))
		if !ok {
			continue
		}
		if strings.TrimSpace(block) != strings.TrimSpace(want) {
			t.Fatalf("%s: step-1 YAML differs from %s; copy it again:\n%s", page, seedFixture, block)
		}
		return
	}
	t.Fatalf("no seed page under ../shared/seed has a mount_namespace_config.yaml block")
}

// seedYAMLBlock returns the first ```yaml block after the step that creates
// mount_namespace_config.yaml.
func seedYAMLBlock(text string) (string, bool) {
	_, after, ok := strings.Cut(text, "mount_namespace_config.yaml")
	if !ok {
		return "", false
	}
	_, after, ok = strings.Cut(after, "```yaml\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(after, "```")
	return block, ok
}

func stripComments(b []byte) string {
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func readSeedFixture(t *testing.T) []*mcfgv1.MachineConfig {
	t.Helper()
	b, err := os.ReadFile(seedFixture)
	if err != nil {
		t.Fatal(err)
	}
	var out []*mcfgv1.MachineConfig
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		mc := &mcfgv1.MachineConfig{}
		if err := yaml.UnmarshalStrict(doc, mc); err != nil {
			t.Fatalf("seed fixture: %v", err)
		}
		out = append(out, mc)
	}
	return out
}

func TestValidateShowsFieldPath(t *testing.T) {
	good, err := Render(RenderOptions{Roles: []string{"worker"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	withConfig := func(cfg string) *mcfgv1.MachineConfig {
		mc := good[0].DeepCopy()
		mc.Spec.Config.Raw = []byte(cfg)
		return mc
	}
	tests := []struct {
		name    string
		mc      *mcfgv1.MachineConfig
		wantErr []string
	}{
		{name: "valid", mc: good[0]},
		{
			name:    "unit name without .service",
			mc:      withConfig(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens","enabled":true}]}}`),
			wantErr: []string{`MachineConfig "99-kubens-worker"`, "spec.config.systemd.units[0].name", "invalid systemd unit extension"},
		},
		{
			name:    "second unit broken",
			mc:      withConfig(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"x.conf"}]}}`),
			wantErr: []string{"spec.config.systemd.units[1].name"},
		},
		{
			name:    "wrong version",
			mc:      withConfig(`{"ignition":{"version":"3.4.0"}}`),
			wantErr: []string{"spec.config.ignition.version", "3.2.0"},
		},
		{
			name:    "not JSON",
			mc:      withConfig(`{"ignition":`),
			wantErr: []string{"spec.config"},
		},
		{
			name:    "wrong type",
			mc:      withConfig(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":"yes"}]}}`),
			wantErr: []string{"spec.config"},
		},
		{
			name: "no role label",
			mc: func() *mcfgv1.MachineConfig {
				mc := good[0].DeepCopy()
				delete(mc.Labels, RoleLabel)
				return mc
			}(),
			wantErr: []string{"metadata.labels[machineconfiguration.openshift.io/role]"},
		},
		{name: "empty config", mc: withConfig(""), wantErr: []string{"spec.config: empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.mc)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIsManaged(t *testing.T) {
	mcs, err := Render(RenderOptions{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if !IsManaged(mcs[0]) {
		t.Error("rendered MachineConfig not managed")
	}
	seed := readSeedFixture(t)
	if IsManaged(seed[0]) {
		t.Error("hand-made seed MachineConfig reported as managed")
	}
	if IsManaged(nil) {
		t.Error("nil reported as managed")
	}
}

func TestUnitEnabled(t *testing.T) {
	tests := []struct {
		name                 string
		raw                  string
		wantEnabled, wantFnd bool
		wantErr              string
	}{
		{name: "enabled 3.2", raw: `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"enabled":true,"name":"kubens.service"}]}}`, wantEnabled: true, wantFnd: true},
		{name: "disabled", raw: `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"enabled":false,"name":"kubens.service"}]}}`, wantFnd: true},
		// A rendered config as the operator writes it: newer version, many
		// units with contents and dropins, fields the 3.2 parser lacks.
		{name: "rendered 3.5 with contents", raw: `{"ignition":{"version":"3.5.0"},"kernelArguments":{"shouldExist":["x"]},"storage":{"files":[]},` +
			`"systemd":{"units":[{"contents":"[Unit]\nDescription=a\n","enabled":true,"name":"crio.service","dropins":[{"name":"01-kubens.conf","contents":"x"}]},` +
			`{"contents":"[Unit]\n","name":"kubens.service"},{"enabled":true,"name":"kubens.service"}]}}`, wantEnabled: true, wantFnd: true},
		{name: "listed without enabled", raw: `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kubens.service","contents":"[Unit]\n"}]}}`, wantFnd: true},
		{name: "last entry wins", raw: `{"ignition":{"version":"3.1.0"},"systemd":{"units":[{"enabled":true,"name":"kubens.service"},{"enabled":false,"name":"kubens.service"}]}}`, wantFnd: true},
		{name: "other unit only", raw: `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"enabled":true,"name":"container-mount-namespace.service"}]}}`},
		{name: "no systemd", raw: `{"ignition":{"version":"3.0.0"}}`},
		// Ignition 2.2 is read the MCO's way: converted to 3.x.
		{name: "ignition 2.2 enabled", raw: `{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"enabled":true,"name":"kubens.service"}]}}`, wantEnabled: true, wantFnd: true},
		{name: "ignition 2.2 without kubens", raw: `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/modules-load.d/sctp-load.conf","mode":420,"contents":{"source":"data:,sctp"}}]}}`},
		{name: "ignition 2.2 last duplicate wins", raw: `{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"enabled":false,"name":"kubens.service"},{"enabled":true,"name":"kubens.service"}]}}`, wantEnabled: true, wantFnd: true},
		{name: "ignition 2.4 is not read by the MCO", raw: `{"ignition":{"version":"2.4.0"}}`, wantErr: "parsing Ignition 2.x config"},
		{name: "ignition 1", raw: `{"ignition":{"version":"1.0.0"}}`, wantErr: `unsupported Ignition version "1.0.0"`},
		{name: "future 3.9 rendered config", raw: `{"ignition":{"version":"3.9.0"},"newThing":{},"systemd":{"units":[{"enabled":true,"name":"kubens.service"}]}}`, wantEnabled: true, wantFnd: true},
		{name: "no version", raw: `{"systemd":{}}`, wantErr: "ignition.version is missing"},
		{name: "garbage", raw: `not json`, wantErr: "parsing Ignition config"},
		{name: "empty", raw: ``, wantErr: "empty Ignition config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enabled, found, err := UnitEnabled([]byte(tt.raw), UnitName)
			checkErr(t, err, tt.wantErr)
			if enabled != tt.wantEnabled || found != tt.wantFnd {
				t.Errorf("UnitEnabled = %v, %v; want %v, %v", enabled, found, tt.wantEnabled, tt.wantFnd)
			}
		})
	}
}

func decodeJSON(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
