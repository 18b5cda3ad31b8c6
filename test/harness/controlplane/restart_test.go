package controlplane_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// Fault tests stop etcd and the API server and start them again: each comes
// back as a new process on the same port, etcd with the data it held, the
// API server reachable by the same kubeconfig; a daemon down refuses
// clients; and Stop still removes every process, old and new.
func TestRestartDaemonKeepsPortAndData(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cp := controlplane.StartForTest(t, controlplane.Options{NoMachineConfigCRDs: true}, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	url := cp.APIServerURL
	before := cp.PIDs()

	if err := cp.StartDaemon(ctx, controlplane.Etcd); err == nil {
		t.Fatal("StartDaemon of a running etcd succeeded")
	}
	for _, d := range []controlplane.Daemon{controlplane.Etcd, controlplane.APIServer} {
		begin := time.Now()
		// grace 0: killed at once, as a crash; that is no error.
		if err := cp.StopDaemon(d, 0); err != nil {
			t.Fatalf("StopDaemon(%s): %v", d, err)
		}
		if testenv.ProcessAlive(before[string(d)]) {
			t.Fatalf("%s (pid %d) still alive after StopDaemon", d, before[string(d)])
		}
		if d == controlplane.APIServer {
			short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
			_, err := cs.CoreV1().ConfigMaps("default").Get(short, "survivor", metav1.GetOptions{})
			cancelShort()
			if err == nil {
				t.Fatal("the API server answered while stopped")
			}
		}
		if err := cp.StartDaemon(ctx, d); err != nil {
			t.Fatalf("StartDaemon(%s): %v", d, err)
		}
		t.Logf("%s down and healthy again in %s", d, time.Since(begin).Round(time.Millisecond))
		if cp.APIServerURL != url {
			t.Fatalf("API server URL changed: %s -> %s", url, cp.APIServerURL)
		}
		got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
		if err != nil || got.Data["k"] != "v" {
			t.Fatalf("after restarting %s the ConfigMap is %v, %v", d, got, err)
		}
	}
	// RestartDaemon, with the graceful stop.
	if err := cp.RestartDaemon(ctx, controlplane.APIServer, 100*time.Millisecond); err != nil {
		t.Fatalf("RestartDaemon: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{}); err != nil {
		t.Fatalf("after RestartDaemon: %v", err)
	}
	after := cp.PIDs()
	for _, d := range []string{string(controlplane.Etcd), string(controlplane.APIServer)} {
		if after[d] == before[d] || !testenv.ProcessAlive(after[d]) {
			t.Errorf("%s pid %d -> %d, want a new live process", d, before[d], after[d])
		}
	}
	if err := cp.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range after {
		if testenv.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}
}
