package realworld_test

// These tests keep the real-world-shaped MachineConfig fixtures honest: each
// file must decode as MachineConfig(s), its Ignition config must pass the
// Ignition library the Machine Config Operator uses for that spec version
// (2.2 configs also through the MCO's 2.2 -> 3.1 conversion), and the
// conclusions README.md states about each fixture and about pools built from
// them must hold. Other packages read the YAML files by path; nothing here is
// exported.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ignconv "github.com/coreos/ign-converter/translate/v24tov31"
	ign22 "github.com/coreos/ignition/config/v2_2"
	ign23 "github.com/coreos/ignition/config/v2_3"
	ign24 "github.com/coreos/ignition/config/v2_4"
	ign35 "github.com/coreos/ignition/v2/config/v3_5"
	ign35types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	roleLabel = "machineconfiguration.openshift.io/role"
	kubens    = "kubens.service"
	cmns      = "container-mount-namespace.service"

	// What the Ignition configs of the fixtures say about kubens.service.
	enabled  = "enabled"  // listed with enabled: true
	disabled = "disabled" // listed with enabled: false
	unset    = "unset"    // not listed, or listed without "enabled" (drop-ins only)

	// The Ignition warning for an enabled unit whose contents lack [Install].
	warnNoInstall = "has no install section"
)

// expectation is what README.md says about one fixture file.
type expectation struct {
	names   []string // metadata.name per MachineConfig document, in order
	roles   []string // role label per document; "" = no role label
	ign     string   // spec.config.ignition.version of every document
	kubens  string   // kubens.service state in each document's own config
	ztp     bool     // carries the ZTP container-mount-namespace mechanism
	warning []string // Ignition warnings that are part of the shape
}

var fixtures = map[string]expectation{
	"ign22-load-sctp-module-worker.yaml": {
		names: []string{"load-sctp-module-worker"}, roles: []string{"worker"},
		ign: "2.2.0", kubens: unset,
	},
	"ign22-load-sctp-module-master.yaml": {
		names: []string{"load-sctp-module-master"}, roles: []string{"master"},
		ign: "2.2.0", kubens: unset,
	},
	"ci-99-custom-enable-kubens-worker.yaml": {
		names: []string{"99-custom-enable-kubens-worker"}, roles: []string{"worker"},
		ign: "2.2.0", kubens: enabled,
	},
	"ci-99-custom-enable-kubens-worker-disabled.yaml": {
		names: []string{"99-custom-enable-kubens-worker"}, roles: []string{"worker"},
		ign: "2.2.0", kubens: disabled,
	},
	"ci-enable-kubens-stream.yaml": {
		names: []string{"99-custom-enable-kubens-master", "99-custom-enable-kubens-worker"},
		roles: []string{"master", "worker"},
		ign:   "2.2.0", kubens: enabled,
	},
	"enhancement-99-custom-disable-kubens-worker.yaml": {
		names: []string{"99-custom-disable-kubens-worker"}, roles: []string{"worker"},
		ign: "2.2.0", kubens: disabled,
	},
	"ztp-container-mount-namespace-worker-enabled.yaml": {
		names: []string{"container-mount-namespace-and-kubelet-conf-worker"}, roles: []string{"worker"},
		ign: "3.2.0", kubens: unset, ztp: true, warning: []string{warnNoInstall},
	},
	"ztp-container-mount-namespace-worker-noenabled.yaml": {
		names: []string{"container-mount-namespace-and-kubelet-conf-worker"}, roles: []string{"worker"},
		ign: "3.2.0", kubens: unset, ztp: true,
	},
	"ztp-container-mount-namespace-master-ign310.yaml": {
		names: []string{"container-mount-namespace"}, roles: []string{"master"},
		// "filesystem" is a 2.x key the early ZTP configs kept; 3.x ignores it.
		ign: "3.1.0", kubens: unset, ztp: true, warning: []string{warnNoInstall, "unused key filesystem"},
	},
	"foreign-99-kubens-worker.yaml": {
		names: []string{"99-kubens-worker"}, roles: []string{"worker"},
		ign: "3.2.0", kubens: enabled,
	},
	"99-zz-worker-keep-kubens-off.yaml": {
		names: []string{"99-zz-worker-keep-kubens-off"}, roles: []string{"worker"},
		ign: "3.2.0", kubens: disabled,
	},
	"00-infra-keep-kubens-off.yaml": {
		names: []string{"00-infra-keep-kubens-off"}, roles: []string{"infra"},
		ign: "3.2.0", kubens: disabled,
	},
	"kubens-dropin-only-worker.yaml": {
		names: []string{"99-kubens-worker-local-dropin"}, roles: []string{"worker"},
		ign: "3.4.0", kubens: unset,
	},
	"50-arbiter-site-tuning.yaml": {
		names: []string{"50-arbiter-site-tuning"}, roles: []string{"arbiter"},
		ign: "3.2.0", kubens: enabled,
	},
	"no-role-99-crio-disable-wipe.yaml": {
		names: []string{"99-crio-disable-wipe"}, roles: []string{""},
		ign: "3.2.0", kubens: unset,
	},
	"telco-core-99-kubens-master.yaml": {
		names: []string{"99-kubens-master"}, roles: []string{"master"},
		ign: "3.2.0", kubens: enabled,
	},
}

// loaded is one MachineConfig document with its config upgraded to 3.5.
type loaded struct {
	mc       *mcfgv1.MachineConfig
	version  string
	cfg      ign35types.Config
	warnings []string
}

// readDocs splits a YAML stream into its non-empty documents.
func readDocs(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: splitting YAML documents: %v", path, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: invalid YAML: %v", path, err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue // comment-only or empty document, e.g. after a trailing ---
		}
		docs = append(docs, doc)
	}
}

// parseIgnition validates raw with the library the MCO uses for its version
// and returns it upgraded to 3.5, with the report's warnings.
func parseIgnition(raw []byte) (string, ign35types.Config, []string, error) {
	var head struct {
		Ignition struct {
			Version string `json:"version"`
		} `json:"ignition"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", ign35types.Config{}, nil, err
	}
	v := head.Ignition.Version
	var warnings []string
	if strings.HasPrefix(v, "2.") {
		if v != "2.2.0" {
			return v, ign35types.Config{}, nil, errors.New("only Ignition 2.2.0 is expected among 2.x fixtures")
		}
		cfg2, rpt, err := ign22.Parse(raw)
		if err != nil {
			return v, ign35types.Config{}, nil, errors.New(err.Error() + ": " + rpt.String())
		}
		for _, e := range rpt.Entries {
			warnings = append(warnings, e.String())
		}
		// The MCO's convertIgnition2to3: 2.2 -> 2.3 -> 2.4 -> 3.1 with only
		// the root filesystem known.
		cfg31, err := ignconv.Translate(ign24.Translate(ign23.Translate(cfg2)), map[string]string{"root": "/"})
		if err != nil {
			return v, ign35types.Config{}, warnings, errors.New("2.2 -> 3.1 conversion: " + err.Error())
		}
		raw, err = json.Marshal(cfg31)
		if err != nil {
			return v, ign35types.Config{}, warnings, err
		}
	}
	cfg, rpt, err := ign35.ParseCompatibleVersion(raw)
	if err != nil {
		return v, ign35types.Config{}, warnings, errors.New(err.Error() + ": " + rpt.String())
	}
	for _, e := range rpt.Entries {
		warnings = append(warnings, e.String())
	}
	return v, cfg, warnings, nil
}

func load(t *testing.T, file string) []loaded {
	t.Helper()
	var out []loaded
	for i, doc := range readDocs(t, file) {
		mc := &mcfgv1.MachineConfig{}
		if err := yaml.UnmarshalStrict(doc, mc); err != nil {
			t.Fatalf("%s doc %d: not a MachineConfig: %v", file, i, err)
		}
		if mc.APIVersion != "machineconfiguration.openshift.io/v1" || mc.Kind != "MachineConfig" {
			t.Fatalf("%s doc %d: apiVersion/kind %s/%s", file, i, mc.APIVersion, mc.Kind)
		}
		v, cfg, warnings, err := parseIgnition(mc.Spec.Config.Raw)
		if err != nil {
			t.Fatalf("%s doc %d (%s): Ignition %s: %v", file, i, mc.Name, v, err)
		}
		out = append(out, loaded{mc: mc, version: v, cfg: cfg, warnings: warnings})
	}
	return out
}

// unitState is what cfg says about the enablement of unit.
func unitState(cfg ign35types.Config, unit string) string {
	state := unset
	for _, u := range cfg.Systemd.Units {
		if u.Name != unit || u.Enabled == nil {
			continue
		}
		state = disabled
		if *u.Enabled {
			state = enabled
		}
	}
	return state
}

// hasZTP reports whether cfg defines container-mount-namespace.service and
// pulls it into crio.service or kubelet.service through a drop-in.
func hasZTP(cfg ign35types.Config) bool {
	var defined, wanted bool
	for _, u := range cfg.Systemd.Units {
		if u.Name == cmns && u.Contents != nil && *u.Contents != "" {
			defined = true
		}
		if u.Name != "crio.service" && u.Name != "kubelet.service" {
			continue
		}
		for _, d := range u.Dropins {
			if d.Contents != nil && strings.Contains(*d.Contents, "Wants="+cmns) {
				wanted = true
			}
		}
	}
	return defined && wanted
}

func TestFixturesMatchREADME(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
		t.Run(f, func(t *testing.T) {
			want, ok := fixtures[f]
			if !ok {
				t.Fatalf("no expectation for %s: add it to the table and to README.md", f)
			}
			if !bytes.Contains(readme, []byte("`"+f+"`")) {
				t.Errorf("README.md does not describe %s", f)
			}
			docs := load(t, f)
			if len(docs) != len(want.names) {
				t.Fatalf("%d MachineConfig documents, want %d", len(docs), len(want.names))
			}
			for i, d := range docs {
				if d.mc.Name != want.names[i] {
					t.Errorf("doc %d: name %q, want %q", i, d.mc.Name, want.names[i])
				}
				role, hasRole := d.mc.Labels[roleLabel]
				if role != want.roles[i] || (want.roles[i] == "" && hasRole) {
					t.Errorf("%s: role %q, want %q", d.mc.Name, role, want.roles[i])
				}
				for k := range d.mc.Labels {
					if strings.Contains(k, "oc-kubens") {
						t.Errorf("%s: carries oc-kubens label %s; fixtures are foreign objects", d.mc.Name, k)
					}
				}
				if d.version != want.ign {
					t.Errorf("%s: Ignition %s, want %s", d.mc.Name, d.version, want.ign)
				}
				if got := unitState(d.cfg, kubens); got != want.kubens {
					t.Errorf("%s: kubens.service %s, want %s", d.mc.Name, got, want.kubens)
				}
				if got := hasZTP(d.cfg); got != want.ztp {
					t.Errorf("%s: ZTP mechanism %v, want %v", d.mc.Name, got, want.ztp)
				}
				checkWarnings(t, d.mc.Name, d.warnings, want.warning)
			}
		})
	}
	for f := range fixtures {
		if !seen[f] {
			t.Errorf("expectation for %s but no such file", f)
		}
	}
}

// checkWarnings fails on any Ignition warning the shape does not explain and
// on an expected one that no longer appears.
func checkWarnings(t *testing.T, name string, got, allowed []string) {
	t.Helper()
	used := map[string]bool{}
	for _, w := range got {
		ok := false
		for _, a := range allowed {
			if strings.Contains(w, a) {
				ok, used[a] = true, true
			}
		}
		if !ok {
			t.Errorf("%s: unexpected Ignition warning: %s", name, w)
		}
	}
	for _, a := range allowed {
		if !used[a] {
			t.Errorf("%s: expected an Ignition warning containing %q, got %q", name, a, got)
		}
	}
}

// mergeForPool merges the configs a pool with the given roles selects, in the
// MCO's order: worker-role configs first, then the others, each by name.
// It returns the kubens.service state, whether ZTP is present, and how many
// configs the pool selected.
func mergeForPool(t *testing.T, roles []string, files []string) (string, bool, int) {
	t.Helper()
	var worker, other []loaded
	for _, f := range files {
		for _, d := range load(t, f) {
			role := d.mc.Labels[roleLabel]
			selected := false
			for _, r := range roles {
				selected = selected || (role != "" && role == r)
			}
			switch {
			case !selected:
			case role == "worker":
				worker = append(worker, d)
			default:
				other = append(other, d)
			}
		}
	}
	byName := func(s []loaded) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].mc.Name < s[j].mc.Name })
	}
	byName(worker)
	byName(other)
	ordered := append(worker, other...)
	if len(ordered) == 0 {
		return unset, false, 0
	}
	out := ordered[0].cfg
	for _, d := range ordered[1:] {
		out = ign35.Merge(out, d.cfg)
	}
	return unitState(out, kubens), hasZTP(out), len(ordered)
}

func TestPoolMergeConclusions(t *testing.T) {
	const noneSelected = "no role selected by none"
	var (
		master  = []string{"master"}
		worker  = []string{"worker"}
		infra   = []string{"worker", "infra"}
		arbiter = []string{"arbiter"}
	)
	for _, tc := range []struct {
		name   string
		roles  []string
		files  []string
		kubens string
		ztp    bool
	}{
		{"sctp only", worker, []string{"ign22-load-sctp-module-worker.yaml"}, unset, false},
		{"ci enable", worker, []string{"ci-99-custom-enable-kubens-worker.yaml", "ign22-load-sctp-module-worker.yaml"}, enabled, false},
		{"ci disable variant", worker, []string{"ci-99-custom-enable-kubens-worker-disabled.yaml"}, disabled, false},
		{"ci stream master", master, []string{"ci-enable-kubens-stream.yaml"}, enabled, false},
		{"ci stream worker", worker, []string{"ci-enable-kubens-stream.yaml"}, enabled, false},
		// "99-custom-disable-..." sorts before "99-kubens-...": the enable wins.
		{"enhancement disable vs 99-kubens", worker, []string{"enhancement-99-custom-disable-kubens-worker.yaml", "foreign-99-kubens-worker.yaml"}, enabled, false},
		{"ztp enabled", worker, []string{"ztp-container-mount-namespace-worker-enabled.yaml", "ign22-load-sctp-module-worker.yaml"}, unset, true},
		{"ztp noenabled", worker, []string{"ztp-container-mount-namespace-worker-noenabled.yaml"}, unset, true},
		{"ztp ign310 master", master, []string{"ztp-container-mount-namespace-master-ign310.yaml", "ign22-load-sctp-module-master.yaml"}, unset, true},
		{"zz keeps off", worker, []string{"foreign-99-kubens-worker.yaml", "99-zz-worker-keep-kubens-off.yaml"}, disabled, false},
		{"drop-in keeps enable", worker, []string{"foreign-99-kubens-worker.yaml", "kubens-dropin-only-worker.yaml"}, enabled, false},
		{"drop-in keeps disable", worker, []string{"enhancement-99-custom-disable-kubens-worker.yaml", "kubens-dropin-only-worker.yaml"}, disabled, false},
		{"drop-in alone", worker, []string{"kubens-dropin-only-worker.yaml"}, unset, false},
		{"all worker", worker, []string{"foreign-99-kubens-worker.yaml", "kubens-dropin-only-worker.yaml", "99-zz-worker-keep-kubens-off.yaml", "00-infra-keep-kubens-off.yaml"}, disabled, false},
		{"infra not in worker pool", worker, []string{"foreign-99-kubens-worker.yaml", "00-infra-keep-kubens-off.yaml"}, enabled, false},
		{"infra wins in infra pool", infra, []string{"foreign-99-kubens-worker.yaml", "00-infra-keep-kubens-off.yaml"}, disabled, false},
		{"infra inherits worker", infra, []string{"foreign-99-kubens-worker.yaml"}, enabled, false},
		{"arbiter", arbiter, []string{"50-arbiter-site-tuning.yaml", "foreign-99-kubens-worker.yaml"}, enabled, false},
		{noneSelected, worker, []string{"no-role-99-crio-disable-wipe.yaml"}, unset, false},
		{"telco-core master", master, []string{"telco-core-99-kubens-master.yaml", "ign22-load-sctp-module-master.yaml"}, enabled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, z, n := mergeForPool(t, tc.roles, tc.files)
			if n == 0 && tc.name != noneSelected {
				t.Fatalf("pool %v selects none of %v", tc.roles, tc.files)
			}
			if n != 0 && tc.name == noneSelected {
				t.Fatalf("pool %v selects %d config(s) from %v, want none", tc.roles, n, tc.files)
			}
			if k != tc.kubens || z != tc.ztp {
				t.Errorf("pool %v: kubens %s, ZTP %v; want %s, %v", tc.roles, k, z, tc.kubens, tc.ztp)
			}
		})
	}
}
