// Package e2eutil holds the helpers the end-to-end suites (test/e2e/control,
// test/e2e/verify) share: building the plugin binary once and creating
// object-only nodes in bulk.
package e2eutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// PluginBinary is $OC_KUBENS_BIN (make sets it to bin/oc-kubens) or a
// static build made once, on first use, into a fresh temporary directory
// named after TempPrefix. A suite declares one and shares it between tests.
type PluginBinary struct {
	TempPrefix string

	once sync.Once
	path string
	err  error
}

// Path returns the binary's path, building it if needed; it fails the test
// when the build fails.
func (b *PluginBinary) Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OC_KUBENS_BIN"); p != "" {
		return p
	}
	b.once.Do(func() { b.path, b.err = build(b.TempPrefix) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func build(tempPrefix string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "oc-kubens")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/oc-kubens")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
}

// CreateNodes creates object-only Node objects (no kubelet), a few at a
// time, labelled node-role.kubernetes.io/ROLE for each of their roles. With
// ready it also sets the Ready condition as a live kubelet reports it. It
// returns the first error.
func CreateNodes(ctx context.Context, cfg *rest.Config, nodes map[string][]string, ready bool) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 500
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	names := make(chan string)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
				for _, r := range nodes[name] {
					n.Labels["node-role.kubernetes.io/"+r] = ""
				}
				created, err := kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
				if err == nil && ready {
					created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
					_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for name := range nodes {
		names <- name
	}
	close(names)
	wg.Wait()
	return firstErr
}
