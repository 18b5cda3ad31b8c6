// Package testenv answers the questions every integration test asks before it
// starts real cluster parts: may this test run here (root, Linux, binaries
// built), where is the repository, and where are the cluster binaries.
//
// The skip-or-fail rule is the same everywhere: outside CI a test that cannot
// run here skips with a message saying what to do; with CI=true it fails,
// because a silently skipped integration suite in CI is a green build that
// tested nothing.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

const (
	// ModulePath identifies the repository's go.mod when looking for the root.
	ModulePath = "github.com/oc-kubens/oc-kubens"

	// K8sVersion and EtcdVersion name the cache folders mk/clusterbin.mk builds into.
	K8sVersion  = "v1.37.2"
	EtcdVersion = "v3.6.16"
	// CrioVersion names the folder mk/crio.mk builds crio and pinns into,
	// beside CRI-O's own crio.service.
	CrioVersion = "v1.34.0"

	// EnvK8sBinDir and EnvEtcdBin override the binary locations (set by make).
	EnvK8sBinDir  = "KUBENS_TEST_K8S_BIN_DIR"
	EnvEtcdBin    = "KUBENS_TEST_ETCD_BIN"
	EnvCrioBinDir = "KUBENS_TEST_CRIO_BIN_DIR"
	// EnvRepoRoot overrides the repository root lookup.
	EnvRepoRoot = "KUBENS_REPO_ROOT"
)

// K8sBinaries are the Kubernetes binaries expected in K8sBinDir.
var K8sBinaries = []string{"kube-apiserver", "kube-controller-manager", "kubelet", "kubectl"}

// InCI reports whether the tests run in CI, where skipping is not allowed
// (see internal/ci: any CI value but "", "0" and "false").
func InCI() bool { return ci.InCI() }

// skipOrFail skips outside CI and fails in CI, with the same message.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	ci.SkipOrFail(t, "%s", msg)
}

// RequireRoot skips the test unless it runs as root on Linux (fails instead
// when CI=true).
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		skipOrFail(t, fmt.Sprintf("needs Linux (real kubelets, namespaces, mounts); running on %s", runtime.GOOS))
		return
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (it starts a real control plane and nodes); run it as root, e.g. `sudo -E make integration`")
	}
}

// RequireBinaries skips the test unless the cluster binaries are built (fails
// instead when CI=true).
func RequireBinaries(t testing.TB) {
	t.Helper()
	if missing := MissingBinaries(); len(missing) > 0 {
		skipOrFail(t, fmt.Sprintf("cluster binaries missing (%s): run `make cluster-bins crio-bins`", strings.Join(missing, ", ")))
	}
}

// MissingBinaries lists the cluster binaries that are not there or not executable.
func MissingBinaries() []string {
	var missing []string
	paths := []string{EtcdBin(), filepath.Join(CrioBinDir(), "crio"), filepath.Join(CrioBinDir(), "pinns")}
	for _, b := range K8sBinaries {
		paths = append(paths, filepath.Join(K8sBinDir(), b))
	}
	if _, err := os.Stat(CrioUnitFile()); err != nil {
		missing = append(missing, CrioUnitFile())
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// RepoRoot returns the repository root: $KUBENS_REPO_ROOT if set, otherwise
// the nearest parent of the working directory whose go.mod declares this
// module (go test runs in the package folder, make in the root).
func RepoRoot() (string, error) {
	if r := os.Getenv(EnvRepoRoot); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isRepoRoot(dir) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", fmt.Errorf("no go.mod for %s above %s: run from inside the repository or set %s", ModulePath, wd, EnvRepoRoot)
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == ModulePath
		}
	}
	return false
}

// cacheDir is the repository's .cache, or ".cache" relative to the working
// directory when the root cannot be found (the binaries then read as missing
// and RequireBinaries says what to do).
func cacheDir() string {
	root, err := RepoRoot()
	if err != nil {
		return ".cache"
	}
	return filepath.Join(root, ".cache")
}

// K8sBinDir is the folder holding kube-apiserver, kube-controller-manager,
// kubelet and kubectl: $KUBENS_TEST_K8S_BIN_DIR, or the make cache.
func K8sBinDir() string {
	if d := os.Getenv(EnvK8sBinDir); d != "" {
		return d
	}
	return filepath.Join(cacheDir(), "clusterbin", "k8s-"+K8sVersion)
}

// EtcdBin is the etcd binary: $KUBENS_TEST_ETCD_BIN, or the make cache.
func EtcdBin() string {
	if p := os.Getenv(EnvEtcdBin); p != "" {
		return p
	}
	return filepath.Join(cacheDir(), "clusterbin", "etcd-"+EtcdVersion, "etcd")
}

// CrioBinDir holds crio, pinns and CRI-O's crio.service:
// $KUBENS_TEST_CRIO_BIN_DIR, or the make cache.
func CrioBinDir() string {
	if d := os.Getenv(EnvCrioBinDir); d != "" {
		return d
	}
	return filepath.Join(cacheDir(), "clusterbin", "crio-"+CrioVersion)
}

// CrioUnitFile is crio.service as CRI-O ships it (contrib/systemd), copied
// from the module by `make crio-bins`.
func CrioUnitFile() string { return filepath.Join(CrioBinDir(), "crio.service") }

// ErrNotRoot is returned by CheckRoot outside root/Linux, for callers that
// are not tests (the kubens-cluster CLI).
var ErrNotRoot = errors.New("the local cluster needs root on Linux")

// CheckRoot is RequireRoot for non-test callers.
func CheckRoot() error {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}
