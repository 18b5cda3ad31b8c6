package e2eutil

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
)

// AgentOptions configures StartAgent.
type AgentOptions struct {
	// Delay is how long each pod takes from creation to its report: Running
	// after half of it, Succeeded after all of it. Read for every new pod,
	// so a benchmark can change it between runs.
	Delay func() time.Duration
	// Report returns the probe report (termination message) for a debug
	// pod on the named node.
	Report func(ctx context.Context, node string) string
}

// StartAgent plays every object-only node's kubelet for the plugin's debug
// pods: for each new pod of ours it writes Running and then a terminated
// status with the report as termination message, through the status
// subresource, as a kubelet does. It stops with ctx.
func StartAgent(ctx context.Context, tb testing.TB, cfg *rest.Config, o AgentOptions) {
	tb.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 2000, 2000
	kube := kubernetes.NewForConfigOrDie(cfg)
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: vfy.RunLabel})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			lo.LabelSelector = vfy.RunLabel
			return kube.CoreV1().Pods("").Watch(ctx, lo)
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added {
				continue
			}
			var delay time.Duration
			if o.Delay != nil {
				delay = o.Delay()
			}
			go completePod(ctx, kube, pod, delay, o.Report)
		}
	}()
}

func completePod(ctx context.Context, kube kubernetes.Interface, pod *corev1.Pod, delay time.Duration, report func(context.Context, string) string) {
	start := metav1.Now()
	write := func(st corev1.PodStatus) {
		for range 5 {
			p := pod.DeepCopy()
			p.Status = st
			got, err := kube.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			if err == nil {
				pod = got
				return
			}
			if ctx.Err() != nil {
				return
			}
			if cur, err := kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
				pod = cur
			} else {
				return // gone: its namespace was deleted
			}
		}
	}
	image := pod.Spec.Containers[0].Image
	time.Sleep(delay / 2)
	write(corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start, HostIP: "10.0.0.1",
		ContainerStatuses: []corev1.ContainerStatus{{Name: vfy.ProbeContainer, Ready: true, Image: image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}})
	msg := report(ctx, pod.Spec.NodeName)
	time.Sleep(delay - delay/2)
	end := metav1.Now()
	id := "cri-o://" + strings.Repeat("ab", 32)
	write(corev1.PodStatus{Phase: corev1.PodSucceeded, StartTime: &start, HostIP: "10.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: vfy.ProbeContainer, Image: image, ContainerID: id,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", Message: msg, StartedAt: start, FinishedAt: end, ContainerID: id}}}}})
}

// Node kinds the agent can report, as the real probe sees them on an RHCOS
// node with CRI-O.
const (
	NodePlain       = "plain"
	NodeKubens      = "kubens"     // encapsulated by kubens.service
	NodeZTP         = "ztp"        // encapsulated by container-mount-namespace.service
	nsHost          = "4026531841" // PID 1's namespace
	nsEncapsulation = "4026533000" // the pinned namespace
)

// ProbeReport is the probe's report for a node of the given kind.
func ProbeReport(kind string) string {
	r := &vfy.Report{
		PID1NS: nsHost, KubeletPID: 2345, KubeletNS: nsHost,
		Runtime: "crio", RuntimePID: 1800, RuntimeNS: nsHost,
		KubensPin: vfy.NSNone, ZTPPin: vfy.NSNone,
		KubeletKubensMnt: vfy.No, RuntimeKubensMnt: vfy.No,
		KubensEnabled: "disabled", KubensActive: "inactive", ZTPEnabled: "not-found", ZTPActive: "inactive",
		NetnsMountPoint: vfy.Yes, PID1Mounts: 471, KubeletMounts: 471,
	}
	switch kind {
	case NodeKubens:
		r.KubeletNS, r.RuntimeNS, r.KubensPin = nsEncapsulation, nsEncapsulation, nsEncapsulation
		r.KubeletKubensMnt, r.RuntimeKubensMnt = vfy.Yes, vfy.Yes
		r.KubensEnabled, r.KubensActive = "enabled", "active"
		r.PID1Mounts = 62
	case NodeZTP:
		// The ZTP unit has no [Install] section: systemctl says static.
		r.KubeletNS, r.RuntimeNS, r.ZTPPin = nsEncapsulation, nsEncapsulation, nsEncapsulation
		r.ZTPEnabled, r.ZTPActive = "static", "active"
		r.PID1Mounts = 62
	}
	return r.Format()
}
