package krew

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

type krewEnv struct {
	distDir, tag, toolsDir, kubectl string
}

func krewTestEnv(t *testing.T) krewEnv {
	t.Helper()
	e := krewEnv{
		distDir:  os.Getenv("KUBENS_KREW_DIST_DIR"),
		tag:      os.Getenv("KUBENS_KREW_TAG"),
		toolsDir: os.Getenv("KUBENS_KREW_TOOLS_DIR"),
		kubectl:  os.Getenv("KUBENS_KREW_KUBECTL"),
	}
	if e.distDir == "" {
		t.Skip("run through `make krew-test`: it builds the archives, krew's tools and kubectl, and sets KUBENS_KREW_*")
	}
	for name, v := range map[string]string{"KUBENS_KREW_TAG": e.tag, "KUBENS_KREW_TOOLS_DIR": e.toolsDir, "KUBENS_KREW_KUBECTL": e.kubectl} {
		if v == "" {
			t.Fatalf("%s is not set (make krew-test sets it)", name)
		}
	}
	return e
}

// TestKrewInstall is the install a krew user does, with krew's own tools and
// only loopback traffic.
func TestKrewInstall(t *testing.T) {
	e := krewTestEnv(t)
	start := time.Now()
	defer func() { t.Logf("krew install test took %s", time.Since(start).Round(time.Millisecond)) }()

	sums := readChecksums(t, e)
	checkArchives(t, e, sums)

	// The release server: make dist's folder on a loopback port, laid out as
	// GitHub serves release assets (/<tag>/<file>).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/"+e.tag+"/", http.StripPrefix("/"+e.tag, http.FileServer(http.Dir(e.distDir))))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	prefix := "http://" + ln.Addr().String() + "/"

	work := t.TempDir()
	rendered, err := Render(readFile(t, filepath.Join(repoRoot(t), ".krew.yaml")), e.tag, prefix, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("render .krew.yaml as krew-release-bot does: %v", err)
	}
	m, err := Parse(rendered)
	if err != nil {
		t.Fatal(err)
	}
	// The bot computed each sum by downloading; they must be make dist's.
	for _, p := range m.Spec.Platforms {
		name := p.URI[strings.LastIndex(p.URI, "/")+1:]
		if sums[name] != p.SHA256 {
			t.Errorf("%s: rendered sha256 %s, checksums file %s", name, p.SHA256, sums[name])
		}
	}
	// krew takes the plugin name from the file name: kubens.yaml.
	manifest := filepath.Join(work, "full", "kubens.yaml")
	writeFile(t, manifest, rendered)
	t.Logf("rendered manifest:\n%s", rendered)

	// PATH for krew and its validator: a real kubectl, and krew as the
	// kubectl-krew plugin (the validator runs `kubectl krew install`).
	toolBin := filepath.Join(work, "toolbin")
	mustMkdir(t, toolBin)
	mustSymlink(t, e.kubectl, filepath.Join(toolBin, "kubectl"))
	mustSymlink(t, filepath.Join(e.toolsDir, "krew"), filepath.Join(toolBin, "kubectl-krew"))
	home := filepath.Join(work, "home")
	mustMkdir(t, home)
	baseEnv := []string{
		"PATH=" + toolBin + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"KREW_NO_UPGRADE_CHECK=1",
		// Nothing here may leave the machine: a proxy that does not exist
		// makes any non-loopback request fail at once (Go never proxies
		// loopback).
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=",
	}

	// The whole manifest, as krew-index's CI validates it: the validator
	// installs every spec.platforms entry (KREW_OS/KREW_ARCH) from the
	// archives.
	t.Run("validate-krew-manifest", func(t *testing.T) {
		path := filepath.Join(work, "validator", "kubens.yaml")
		writeFile(t, path, rendered)
		out := run(t, baseEnv, filepath.Join(e.toolsDir, "validate-krew-manifest"), "-manifest", path)
		want := fmt.Sprintf("all %d spec.platforms installed fine", len(m.Spec.Platforms))
		if !strings.Contains(out, want) {
			t.Fatalf("validator did not report %q:\n%s", want, out)
		}
	})

	// The user's install: this machine's archive, from the file, into a
	// fresh KREW_ROOT; then the plugin through kubectl.
	root := filepath.Join(work, "krew-root")
	env := append(slices.Clone(baseEnv), "KREW_ROOT="+root)
	archive := filepath.Join(e.distDir, fmt.Sprintf("oc-kubens_%s_%s_%s.tar.gz", e.tag, runtime.GOOS, runtime.GOARCH))
	out := run(t, env, "kubectl", "krew", "install", "--manifest="+manifest, "--archive="+archive)
	if !strings.Contains(out, "Installed plugin: kubens") {
		t.Errorf("krew install did not say it installed kubens:\n%s", out)
	}
	for _, phrase := range []string{"Technology Preview", "REBOOTS EVERY NODE"} {
		if !strings.Contains(out, phrase) {
			t.Errorf("krew install did not show the caveat %q", phrase)
		}
	}
	// As a user with krew's bin folder on PATH, and the completion script
	// linked next to it as the caveat says.
	userEnv := append(slices.Clone(env), "PATH="+filepath.Join(root, "bin")+":"+toolBin+":/usr/bin:/bin")
	mustSymlink(t, filepath.Join(root, "store", "kubens", e.tag, "kubectl_complete-kubens"), filepath.Join(root, "bin", "kubectl_complete-kubens"))

	// (kubectl krew list needs a plugin index, which needs the network; the
	// receipt is what it would read.)
	if _, err := os.Stat(filepath.Join(root, "receipts", "kubens.yaml")); err != nil {
		t.Errorf("krew wrote no install receipt: %v", err)
	}
	out = run(t, userEnv, "kubectl", "plugin", "list")
	if !strings.Contains(out, filepath.Join(root, "bin", "kubectl-kubens")) {
		t.Errorf("kubectl plugin list does not show %s:\n%s", filepath.Join(root, "bin", "kubectl-kubens"), out)
	}
	out = run(t, userEnv, "kubectl", "kubens", "version")
	if !strings.Contains(out, e.tag) {
		t.Errorf("kubectl kubens version does not print %s:\n%s", e.tag, out)
	}
	var info struct{ Version, Platform string }
	out = run(t, userEnv, "kubectl", "kubens", "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Version != e.tag || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("kubectl kubens version -o json = %+v (%v), want version %s on %s/%s:\n%s", info, err, e.tag, runtime.GOOS, runtime.GOARCH, out)
	}
	out = run(t, userEnv, "kubectl", "kubens", "--help")
	if !strings.Contains(out, "kubectl kubens") {
		t.Errorf("help under kubectl should say `kubectl kubens`:\n%s", out)
	}
	// kubectl (>= 1.26) completes plugin arguments through
	// kubectl_complete-kubens, which asks the plugin's __complete.
	out = run(t, userEnv, "kubectl", "__complete", "kubens", "")
	for _, sub := range []string{"version", "render"} {
		if !strings.Contains(out, sub) {
			t.Errorf("kubectl __complete kubens '' does not offer %q:\n%s", sub, out)
		}
	}
}

func readChecksums(t *testing.T, e krewEnv) map[string]string {
	t.Helper()
	path := filepath.Join(e.distDir, "oc-kubens_"+e.tag+"_checksums.txt")
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		sums[f[1]] = f[0]
	}
	if len(sums) != len(wantPlatforms) {
		t.Fatalf("%s lists %d archives, want %d", path, len(sums), len(wantPlatforms))
	}
	return sums
}

// checkArchives opens every archive: the binary for the right OS and CPU,
// static on Linux, LICENSE, the completion script; and reports the sizes.
func checkArchives(t *testing.T, e krewEnv, sums map[string]string) {
	t.Helper()
	for _, p := range wantPlatforms {
		goos, goarch, _ := strings.Cut(p, "/")
		ext, bin := "tar.gz", "kubectl-kubens"
		if goos == "windows" {
			ext, bin = "zip", "kubectl-kubens.exe"
		}
		name := fmt.Sprintf("oc-kubens_%s_%s_%s.%s", e.tag, goos, goarch, ext)
		if _, ok := sums[name]; !ok {
			t.Errorf("%s is not in the checksums file", name)
		}
		path := filepath.Join(e.distDir, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		files := readArchive(t, path)
		var names []string
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		if want := []string{"LICENSE", bin, "kubectl_complete-kubens"}; !slices.Equal(names, sortedCopy(want)) {
			t.Errorf("%s holds %v, want %v", name, names, sortedCopy(want))
		}
		if err := checkBinary(files[bin], goos, goarch); err != nil {
			t.Errorf("%s: %s: %v", name, bin, err)
		}
		t.Logf("archive %-45s %9d bytes (binary %d bytes)", name, st.Size(), len(files[bin]))
	}
}

func sortedCopy(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name] = b
		}
		return files
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s: %s has owner %d/%d %q; want root, unnamed (reproducible)", path, h.Name, h.Uid, h.Gid, h.Uname)
		}
		files[h.Name] = b
	}
	return files
}

// checkBinary reads the executable's header: right format and machine, and on
// Linux no program interpreter (a static binary, CGO_ENABLED=0).
func checkBinary(b []byte, goos, goarch string) error {
	r := bytes.NewReader(b)
	switch goos {
	case "linux":
		f, err := elf.NewFile(r)
		if err != nil {
			return err
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390}[goarch]
		if f.Machine != want {
			return fmt.Errorf("ELF machine %v, want %v", f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return errors.New("has a program interpreter: not static")
			}
		}
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			return err
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			return fmt.Errorf("Mach-O CPU %v, want %v", f.Cpu, want)
		}
	case "windows":
		f, err := pe.NewFile(r)
		if err != nil {
			return err
		}
		if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			return fmt.Errorf("PE machine %#x, want amd64", f.Machine)
		}
	}
	return nil
}

// run runs a command with exactly env (nothing inherited) and a time limit,
// and returns its combined output, failing the test on a non-zero exit.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path := name
	if !strings.Contains(name, "/") {
		for _, kv := range env {
			if dirs, ok := strings.CutPrefix(kv, "PATH="); ok {
				for _, d := range filepath.SplitList(dirs) {
					if st, err := os.Stat(filepath.Join(d, name)); err == nil && !st.IsDir() {
						path = filepath.Join(d, name)
						break
					}
				}
			}
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out.String())
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out.String()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
