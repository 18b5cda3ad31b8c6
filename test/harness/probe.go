package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
)

// NamespaceReport is what a privileged hostPID pod on a node sees: the mount
// namespaces of the node's PID 1, kubelet and container runtime (crio or
// containerd; "mnt:[4026...]"), and how many container mounts PID 1 and the
// kubelet each see (containerd's root filesystems, pod volumes, CRI-O's
// namespace pins and shm mounts; by path, as an RHCOS node's own /etc and
// /usr/bin are overlays too). Encapsulation hides them from PID 1.
type NamespaceReport struct {
	PID1, Kubelet, Runtime                      string
	RuntimeName                                 string
	PID1ContainerMounts, KubeletContainerMounts int
}

// Mode classifies the report the way the docs verify encapsulation: all
// equal is plain; PID 1 different from kubelet and containerd, which are
// equal, is encapsulated; kubelet different from the runtime is split.
func (r NamespaceReport) Mode() node.Mode {
	switch {
	case r.Kubelet != r.Runtime:
		return node.Split
	case r.PID1 != r.Kubelet:
		return node.Encapsulated
	default:
		return node.Plain
	}
}

// probeScript writes the three namespaces to the termination message: on
// success the kubelet only reads /dev/termination-log (no fallback to logs),
// and reading it needs no apiserver-to-kubelet connection.
const probeScript = `k=$(pidof kubelet); rt=crio; c=$(pidof crio) || { rt=containerd; c=$(pidof containerd); }
[ -n "$k" ] && [ -n "$c" ] || { echo "kubelet=$k runtime=$c: not found" >&2; exit 1; }
cm() { grep -cE '/kubelet/pods/|/containers/storage/|/crio/|/containerd/' "$1"; }
echo "pid1=$(readlink /proc/1/ns/mnt) kubelet=$(readlink /proc/$k/ns/mnt) runtime=$(readlink /proc/$c/ns/mnt) runtimename=$rt" \
  "pid1mounts=$(cm /proc/1/mountinfo) kubeletmounts=$(cm /proc/$k/mountinfo)" > /dev/termination-log`

// ProbeNamespaces runs a privileged hostPID pod (tools image, the host's / at
// /host) on the node and returns what it reports. The pod is deleted after.
func ProbeNamespaces(ctx context.Context, client kubernetes.Interface, nodeName string) (NamespaceReport, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "nsprobe-", Namespace: "default"},
		Spec: corev1.PodSpec{
			// No scheduler runs: bind the pod to its node directly.
			NodeName:                     nodeName,
			HostPID:                      true,
			HostNetwork:                  true,
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:                     "probe",
				Image:                    images.ToolsImage,
				ImagePullPolicy:          corev1.PullNever,
				Command:                  []string{"sh", "-c", probeScript},
				SecurityContext:          &corev1.SecurityContext{Privileged: ptr.To(true)},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				VolumeMounts:             []corev1.VolumeMount{{Name: "host", MountPath: "/host"}},
			}},
			Volumes: []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
		},
	}
	created, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return NamespaceReport{}, err
	}
	defer client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	var last *corev1.Pod
	for {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, created.Name, metav1.GetOptions{})
		if err == nil {
			last = p
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				break
			}
		}
		select {
		case <-ctx.Done():
			return NamespaceReport{}, fmt.Errorf("probe pod %s on %s did not finish (phase %s): %w", created.Name, nodeName, phase(last), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	var msg string
	for _, cs := range last.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			msg = t.Message
		}
	}
	if last.Status.Phase != corev1.PodSucceeded {
		return NamespaceReport{}, fmt.Errorf("probe pod on %s failed: %s %s", nodeName, last.Status.Message, msg)
	}
	return parseReport(msg)
}

func parseReport(msg string) (NamespaceReport, error) {
	var r NamespaceReport
	for _, f := range strings.Fields(msg) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "pid1":
			r.PID1 = v
		case "kubelet":
			r.Kubelet = v
		case "runtime":
			r.Runtime = v
		case "runtimename":
			r.RuntimeName = v
		case "pid1mounts":
			r.PID1ContainerMounts, _ = strconv.Atoi(v)
		case "kubeletmounts":
			r.KubeletContainerMounts, _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(r.PID1, "mnt:") || !strings.HasPrefix(r.Kubelet, "mnt:") || !strings.HasPrefix(r.Runtime, "mnt:") {
		return r, fmt.Errorf("unexpected probe report %q", msg)
	}
	return r, nil
}

func phase(p *corev1.Pod) corev1.PodPhase {
	if p == nil {
		return "unknown"
	}
	return p.Status.Phase
}
