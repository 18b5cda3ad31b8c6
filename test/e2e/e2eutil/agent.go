package e2eutil

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	// Down tells whether the named node's kubelet is down (the node is
	// rebooting or powered off); nil means never. While it is, the agent
	// leaves that node's pods alone. A pod whose container was running
	// when its node went down ends, once the node is back, as a kubelet
	// ends it after a reboot: Failed, the container terminated with
	// ContainerStatusUnknown (exit code 137). A pod the node had not
	// started yet starts when it is back.
	Down func(node string) bool
	// Hang tells whether the probe on the named node never finishes by
	// itself (a stuck probe); nil means never. Only the pod's
	// activeDeadlineSeconds ends it then.
	Hang func(node string) bool
}

// pollDown is how often a pod's goroutine looks at Down.
const pollDown = 50 * time.Millisecond

// StartAgent plays every object-only node's kubelet for the plugin's debug
// pods: for each new pod of ours it writes Running and then a terminated
// status with the report as termination message, through the status
// subresource, as a kubelet does. Like a kubelet it fails a pod that runs
// longer than its activeDeadlineSeconds (DeadlineExceeded) and stops
// working on a pod once it is deleted. It stops with ctx.
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
		// Each pod's goroutine ends when its pod is deleted, as the
		// kubelet stops a deleted pod.
		stop := map[types.UID]context.CancelFunc{}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			switch ev.Type {
			case watch.Added:
				var delay time.Duration
				if o.Delay != nil {
					delay = o.Delay()
				}
				pctx, cancel := context.WithCancel(ctx)
				stop[pod.UID] = cancel
				a := &agentPod{kube: kube, pod: pod, delay: delay, o: o}
				go a.run(pctx)
			case watch.Deleted:
				if cancel, ok := stop[pod.UID]; ok {
					cancel()
					delete(stop, pod.UID)
				}
			}
		}
		for _, cancel := range stop {
			cancel()
		}
	}()
}

// agentPod is the agent's kubelet work on one pod.
type agentPod struct {
	kube  kubernetes.Interface
	pod   *corev1.Pod
	delay time.Duration
	o     AgentOptions
}

func (a *agentPod) down() bool { return a.o.Down != nil && a.o.Down(a.pod.Spec.NodeName) }
func (a *agentPod) hang() bool { return a.o.Hang != nil && a.o.Hang(a.pod.Spec.NodeName) }

// run takes the pod from Pending to its end: Running after half the delay,
// then Succeeded with the report, Failed(DeadlineExceeded) past its
// activeDeadlineSeconds, or Failed(ContainerStatusUnknown) when its node
// went down while it ran.
func (a *agentPod) run(ctx context.Context) {
	var accepted, running time.Time // zero until the node's kubelet did it
	downWhileRunning := false
	var msg string
	for ctx.Err() == nil {
		now := time.Now()
		var next time.Time
		switch {
		case a.down():
			if !running.IsZero() {
				downWhileRunning = true
			}
		case accepted.IsZero():
			accepted = now
			continue
		case downWhileRunning:
			a.fail(ctx, accepted, "", "ContainerStatusUnknown", "The container could not be located when the pod was terminated")
			return
		case a.pastDeadline(accepted, now):
			a.fail(ctx, accepted, "DeadlineExceeded", "Error", "Pod was active on the node longer than the specified deadline")
			return
		case running.IsZero():
			if next = accepted.Add(a.delay / 2); now.Before(next) {
				break
			}
			a.running(ctx, accepted)
			running = now
			if a.o.Report != nil {
				msg = a.o.Report(ctx, a.pod.Spec.NodeName)
			}
			continue
		case a.hang():
			next = a.deadline(accepted)
		default:
			if next = running.Add(a.delay - a.delay/2); now.Before(next) {
				if d := a.deadline(accepted); !d.IsZero() && d.Before(next) {
					next = d
				}
				break
			}
			a.succeed(ctx, accepted, msg)
			return
		}
		wait := pollDown
		if a.o.Down == nil && !next.IsZero() {
			wait = time.Until(next)
		}
		if a.o.Down == nil && next.IsZero() {
			wait = time.Hour // hung without a deadline: until deleted
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// deadline is when the pod's activeDeadlineSeconds, counted as a kubelet
// does from the pod's start, runs out; zero without one.
func (a *agentPod) deadline(accepted time.Time) time.Time {
	ads := a.pod.Spec.ActiveDeadlineSeconds
	if ads == nil {
		return time.Time{}
	}
	return accepted.Add(time.Duration(*ads) * time.Second)
}

func (a *agentPod) pastDeadline(accepted, now time.Time) bool {
	d := a.deadline(accepted)
	return !d.IsZero() && !now.Before(d)
}

func (a *agentPod) running(ctx context.Context, accepted time.Time) {
	start := metav1.NewTime(accepted)
	a.write(ctx, corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start, HostIP: "10.0.0.1",
		ContainerStatuses: []corev1.ContainerStatus{{Name: vfy.ProbeContainer, Ready: true, Image: a.image(),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}})
}

func (a *agentPod) succeed(ctx context.Context, accepted time.Time, msg string) {
	start, end := metav1.NewTime(accepted), metav1.Now()
	id := "cri-o://" + strings.Repeat("ab", 32)
	a.write(ctx, corev1.PodStatus{Phase: corev1.PodSucceeded, StartTime: &start, HostIP: "10.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: vfy.ProbeContainer, Image: a.image(), ContainerID: id,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", Message: msg, StartedAt: start, FinishedAt: end, ContainerID: id}}}}})
}

// fail ends the pod as a kubelet does when it kills it (podReason
// DeadlineExceeded) or finds its container gone after a reboot.
func (a *agentPod) fail(ctx context.Context, accepted time.Time, podReason, containerReason, message string) {
	start, end := metav1.NewTime(accepted), metav1.Now()
	st := corev1.PodStatus{Phase: corev1.PodFailed, StartTime: &start, HostIP: "10.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodFailed"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: vfy.ProbeContainer, Image: a.image(),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: containerReason, StartedAt: start, FinishedAt: end}}}}}
	if podReason != "" {
		st.Reason, st.Message = podReason, message
	} else {
		st.ContainerStatuses[0].State.Terminated.Message = message
	}
	a.write(ctx, st)
}

func (a *agentPod) image() string { return a.pod.Spec.Containers[0].Image }

// write sets the pod's status through the status subresource. Like a
// kubelet it keeps trying while the API server is unreachable (a restart),
// and gives up when the pod is gone or ctx ends.
func (a *agentPod) write(ctx context.Context, st corev1.PodStatus) {
	pods := a.kube.CoreV1().Pods(a.pod.Namespace)
	for ctx.Err() == nil {
		p := a.pod.DeepCopy()
		p.Status = st
		got, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			a.pod = got
			return
		}
		if apierrors.IsNotFound(err) {
			return // gone: its namespace was deleted
		}
		if apierrors.IsConflict(err) {
			if cur, err := pods.Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
				a.pod = cur
				continue
			} else if apierrors.IsNotFound(err) {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
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
