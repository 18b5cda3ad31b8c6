package krew

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

// The seven platforms the release serves: OpenShift's four Linux
// architectures, macOS on both, Windows.
var wantPlatforms = []string{
	"darwin/amd64", "darwin/arm64",
	"linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x",
	"windows/amd64",
}

// downloadOnly are released as archives but left out of .krew.yaml: krew's
// validator (v0.4.4, the one krew-index runs) knows no linux/s390x and
// refuses a manifest that names it.
var downloadOnly = []string{"linux/s390x"}

// krewPlatforms are the platforms .krew.yaml lists.
func krewPlatforms() []string {
	var out []string
	for _, p := range wantPlatforms {
		if !slices.Contains(downloadOnly, p) {
			out = append(out, p)
		}
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// renderOffline renders .krew.yaml against a server that answers every path
// with the same bytes: enough to read the platforms without real archives.
func renderOffline(t *testing.T, tag string) *Manifest {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("placeholder"))
	}))
	t.Cleanup(srv.Close)
	out, err := Render(readFile(t, filepath.Join(repoRoot(t), ".krew.yaml")), tag, srv.URL+"/", srv.Client())
	if err != nil {
		t.Fatalf("render .krew.yaml: %v", err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatalf("rendered .krew.yaml is not YAML: %v\n%s", err, out)
	}
	return m
}

// goreleaserNames expands .goreleaser.yaml's archive name template for each
// of its targets, as goreleaser would for a tag.
func goreleaserNames(t *testing.T, tag string) map[string]string {
	t.Helper()
	var cfg struct {
		ProjectName string `json:"project_name"`
		Builds      []struct {
			Binary  string   `json:"binary"`
			Env     []string `json:"env"`
			Flags   []string `json:"flags"`
			Ldflags []string `json:"ldflags"`
			Targets []string `json:"targets"`
		} `json:"builds"`
		Archives []struct {
			NameTemplate    string   `json:"name_template"`
			Formats         []string `json:"formats"`
			FormatOverrides []struct {
				GOOS    string   `json:"goos"`
				Formats []string `json:"formats"`
			} `json:"format_overrides"`
			Files []struct {
				Src string `json:"src"`
			} `json:"files"`
		} `json:"archives"`
		Checksum struct {
			NameTemplate string `json:"name_template"`
		} `json:"checksum"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(repoRoot(t), ".goreleaser.yaml")), &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf(".goreleaser.yaml: want one build and one archive, got %d and %d", len(cfg.Builds), len(cfg.Archives))
	}
	b, a := cfg.Builds[0], cfg.Archives[0]
	if b.Binary != "kubectl-kubens" {
		t.Errorf(".goreleaser.yaml: binary %q, want kubectl-kubens (the name krew links)", b.Binary)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf(".goreleaser.yaml: builds must be static and reproducible (CGO_ENABLED=0, -trimpath); env=%v flags=%v", b.Env, b.Flags)
	}
	var srcs []string
	for _, f := range a.Files {
		srcs = append(srcs, f.Src)
	}
	// The same contents as make dist's archives (.krew.yaml lists them).
	for _, want := range []string{"LICENSE", "kubectl_complete-kubens"} {
		if !slices.Contains(srcs, want) {
			t.Errorf(".goreleaser.yaml: archives must carry %s like make dist's (krew's validator refuses an archive without a LICENSE); files=%v", want, srcs)
		}
	}
	if !slices.ContainsFunc(b.Ldflags, func(f string) bool {
		return strings.Contains(f, "github.com/oc-kubens/oc-kubens/internal/version.version={{ .Tag }}")
	}) {
		t.Errorf(".goreleaser.yaml: ldflags must stamp the tag into internal/version as make dist does; ldflags=%v", b.Ldflags)
	}
	expand := func(tmpl, goos, goarch string) string {
		r := strings.NewReplacer("{{ .ProjectName }}", cfg.ProjectName, "{{ .Tag }}", tag, "{{ .Os }}", goos, "{{ .Arch }}", goarch)
		s := r.Replace(tmpl)
		if strings.Contains(s, "{{") {
			t.Fatalf(".goreleaser.yaml: name template %q uses fields this test does not expand", tmpl)
		}
		return s
	}
	names := map[string]string{}
	for _, target := range b.Targets {
		goos, goarch, _ := strings.Cut(target, "_")
		format := a.Formats[0]
		for _, o := range a.FormatOverrides {
			if o.GOOS == goos {
				format = o.Formats[0]
			}
		}
		names[goos+"/"+goarch] = expand(a.NameTemplate, goos, goarch) + "." + format
	}
	names["checksums"] = expand(cfg.Checksum.NameTemplate, "", "")
	return names
}

// makeDistNames asks the Makefile which files `make dist` writes for tag.
func makeDistNames(t *testing.T, tag string) []string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		ci.SkipOrFail(t, "make not installed")
	}
	cmd := exec.Command("make", "-s", "--no-print-directory", "dist-names", "DIST_TAG="+tag)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make dist-names: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// TestReleaseNamesAgree checks that .krew.yaml, .goreleaser.yaml and
// `make dist` name the same archives for the same platforms, and that the
// manifest keeps the promises krew users read (bin name, LICENSE, caveats).
func TestReleaseNamesAgree(t *testing.T) {
	const tag = "v1.2.3"
	m := renderOffline(t, tag)
	gr := goreleaserNames(t, tag)
	mk := makeDistNames(t, tag)

	var manifestPlatforms []string
	manifestNames := map[string]string{}
	for _, p := range m.Spec.Platforms {
		osArch := p.OSArch()
		manifestPlatforms = append(manifestPlatforms, osArch)
		manifestNames[osArch] = p.URI[strings.LastIndex(p.URI, "/")+1:]
		wantBin := "kubectl-kubens"
		if p.Selector.MatchLabels["os"] == "windows" {
			wantBin += ".exe"
		}
		if p.Bin != wantBin {
			t.Errorf("%s: bin %q, want %q", osArch, p.Bin, wantBin)
		}
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
		}
		if !slices.Contains(from, "LICENSE") || !slices.Contains(from, wantBin) {
			t.Errorf("%s: files %v must include %s and LICENSE", osArch, from, wantBin)
		}
	}
	slices.Sort(manifestPlatforms)
	if !slices.Equal(manifestPlatforms, krewPlatforms()) {
		t.Errorf(".krew.yaml platforms = %v, want %v", manifestPlatforms, krewPlatforms())
	}

	var mkArchives []string
	for _, n := range mk {
		if !strings.HasSuffix(n, "_checksums.txt") {
			mkArchives = append(mkArchives, n)
		} else if n != gr["checksums"] {
			t.Errorf("checksums file: make dist writes %q, goreleaser %q", n, gr["checksums"])
		}
	}
	if len(mkArchives) != len(wantPlatforms) {
		t.Errorf("make dist-names lists %d archives, want %d: %v", len(mkArchives), len(wantPlatforms), mkArchives)
	}
	for _, p := range wantPlatforms {
		name, ok := manifestNames[p]
		if !ok {
			// Download only: goreleaser and make dist still make it.
			name = fmt.Sprintf("oc-kubens_%s_%s.tar.gz", tag, strings.ReplaceAll(p, "/", "_"))
		}
		if gr[p] != name {
			t.Errorf("%s: .krew.yaml expects %q, .goreleaser.yaml makes %q", p, name, gr[p])
		}
		if !slices.Contains(mkArchives, name) {
			t.Errorf("%s: .krew.yaml expects %q, make dist writes %v", p, name, mkArchives)
		}
	}

	if m.Metadata.Name != "kubens" {
		t.Errorf("plugin name %q, want kubens", m.Metadata.Name)
	}
	if m.Spec.Version != tag {
		t.Errorf("spec.version %q, want the tag %q", m.Spec.Version, tag)
	}
	if want := "https://" + modulePath(t); m.Spec.Homepage != want {
		t.Errorf("homepage %q, want %q (from the module path)", m.Spec.Homepage, want)
	}
	for _, phrase := range []string{"Technology Preview", "REBOOTS EVERY NODE", "kubectx", "`ns`"} {
		if !strings.Contains(m.Spec.Caveats, phrase) {
			t.Errorf("caveats do not mention %q:\n%s", phrase, m.Spec.Caveats)
		}
	}
}

func modulePath(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot(t), "go.mod"))), "\n") {
		if mod, ok := strings.CutPrefix(line, "module "); ok {
			return strings.TrimSpace(mod)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}
