package control

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// The main flow on 3 real nodes (1 master, 2 workers, each a real kubelet
// and containerd): enable --wait reboots every node into encapsulation,
// status agrees, a privileged pod per node sees the namespaces split the way
// the product docs verify it; disable --wait brings every node back to plain.
func TestEnableDisableOnRealNodes(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c, err := harness.Up(ctx, harness.Options{Masters: 1, Workers: 2, Logf: t.Logf})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{RenderDelay: 2 * time.Second, StepDelay: 200 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatalf("mcosim: %v", err)
	}
	t.Cleanup(mco.Stop)
	kc := c.KubeconfigPath()

	expectAll := func(want string) {
		t.Helper()
		for _, n := range c.Nodes {
			got, report, err := probeEncapsulation(ctx, c.Client, n.Name)
			if err != nil {
				t.Fatalf("probe %s: %v", n.Name, err)
			}
			t.Logf("node %s: %s (%s)", n.Name, got, report)
			if got != want {
				t.Errorf("node %s is %s, want %s (%s)", n.Name, got, want, report)
			}
		}
	}
	expectAll("plain")

	start := time.Now()
	r := runBinary(t, kc, "enable", "--yes", "--wait", "--timeout", "5m")
	if r.code != 0 {
		t.Fatalf("enable: %s", r)
	}
	t.Logf("enable --wait on 3 real nodes took %s", time.Since(start).Round(time.Second))
	mustContain(t, "enable", r.stdout, "machineconfig.machineconfiguration.openshift.io/99-kubens-master created",
		"machineconfig.machineconfiguration.openshift.io/99-kubens-worker created", "All pools updated: master, worker")

	st := run(t, kc, "status", "-o", "wide")
	if st.code != 0 {
		t.Fatalf("status: %s", st)
	}
	for _, n := range c.Nodes {
		mustContain(t, "status -o wide", st.stdout, n.Name)
	}
	if strings.Contains(st.stdout, "disabled") || strings.Contains(st.stdout, "unknown") {
		t.Errorf("status after enable should show every pool and node enabled:\n%s", st.stdout)
	}
	expectAll("encapsulated")

	r = run(t, kc, "disable", "--yes", "--wait", "--timeout", "5m")
	if r.code != 0 {
		t.Fatalf("disable: %s", r)
	}
	mustContain(t, "disable", r.stdout, "99-kubens-master deleted", "99-kubens-worker deleted", "All pools updated")
	st = run(t, kc, "status", "-o", "wide")
	if strings.Contains(st.stdout, "enabled") {
		t.Errorf("status after disable still shows enabled:\n%s", st.stdout)
	}
	expectAll("plain")
}

// probeScript prints the mount namespaces of PID 1, kubelet and containerd
// into the termination message, as the docs' manual check does with
// readlink. Exact process names through pidof, never substrings.
const probeScript = `k=$(pidof kubelet); r=$(pidof containerd)
[ -n "$k" ] && [ -n "$r" ] || { echo "kubelet=$k containerd=$r missing" >&2; exit 1; }
echo "$(readlink /proc/1/ns/mnt) $(readlink /proc/$k/ns/mnt) $(readlink /proc/$r/ns/mnt)" > /dev/termination-log`

// probeEncapsulation runs a privileged hostPID pod on the node and classifies
// what it sees: "encapsulated" (PID 1 differs from kubelet and the runtime,
// which are equal), "plain" (all equal) or "split".
func probeEncapsulation(ctx context.Context, client kubernetes.Interface, nodeName string) (string, string, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kubens-check-", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName, // no scheduler in the test cluster
			HostPID:                      true,
			HostNetwork:                  true,
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "check", Image: images.ToolsImage, ImagePullPolicy: corev1.PullNever,
				Command:         []string{"sh", "-c", probeScript},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}},
		},
	}
	created, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	defer client.CoreV1().Pods("default").Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		p, err := client.CoreV1().Pods("default").Get(ctx, created.Name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			var msg string
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil {
					msg = strings.TrimSpace(cs.State.Terminated.Message)
				}
			}
			f := strings.Fields(msg)
			if p.Status.Phase != corev1.PodSucceeded || len(f) != 3 {
				return "", msg, fmt.Errorf("check pod %s: phase %s, report %q", p.Name, p.Status.Phase, msg)
			}
			switch {
			case f[1] != f[2]:
				return "split", msg, nil
			case f[0] != f[1]:
				return "encapsulated", msg, nil
			default:
				return "plain", msg, nil
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return "", "", fmt.Errorf("check pod on %s did not finish in time", nodeName)
}
