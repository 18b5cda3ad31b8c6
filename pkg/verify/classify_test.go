package verify

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestClassify(t *testing.T) {
	mod := func(f func(r *Report)) *Report {
		r := sampleReport()
		f(r)
		return r
	}
	tests := []struct {
		name       string
		rep        *Report
		state      State
		reason     string
		mechanism  Mechanism
		failChecks string
		hidden     int
	}{
		{name: "kubens encapsulated", rep: sampleReport(), state: Encapsulated, mechanism: MechanismKubens, hidden: 400},
		{name: "plain", rep: mod(func(r *Report) {
			r.KubeletNS, r.RuntimeNS, r.PID1NS, r.KubensPin = "4026531840", "4026531840", "4026531840", NSNone
			r.KubensEnabled, r.KubensActive = "disabled", "inactive"
		}), state: NotEncapsulated, hidden: -1},
		{name: "plain but pinned", rep: mod(func(r *Report) {
			r.KubeletNS, r.RuntimeNS, r.PID1NS = "4026531840", "4026531840", "4026531840"
		}), state: NotEncapsulated, failChecks: "PinnedNamespace,Unit", hidden: -1},
		{name: "split", rep: mod(func(r *Report) { r.RuntimeNS = r.PID1NS }), state: Split, mechanism: MechanismKubens, hidden: -1},
		{name: "ztp", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubeletKubensMnt, r.RuntimeKubensMnt = No, No
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "disabled", "inactive", "enabled", "active"
		}), state: Encapsulated, mechanism: MechanismZTP, hidden: 400},
		// container-mount-namespace.service has no [Install] section:
		// systemctl is-enabled says static on every healthy ZTP node.
		{name: "ztp static", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubeletKubensMnt, r.RuntimeKubensMnt = No, No
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "not-found", "inactive", "static", "active"
		}), state: Encapsulated, mechanism: MechanismZTP, hidden: 400},
		{name: "ztp indirect", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "not-found", "inactive", "indirect", "active"
		}), state: Encapsulated, mechanism: MechanismZTP, hidden: 400},
		{name: "ztp generated", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "not-found", "inactive", "generated", "active"
		}), state: Encapsulated, mechanism: MechanismZTP, hidden: 400},
		{name: "ztp static but inactive", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "not-found", "inactive", "static", "inactive"
		}), state: Encapsulated, mechanism: MechanismZTP, failChecks: "Unit", hidden: 400},
		{name: "ztp static, no /run/netns mount point", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive, r.NetnsMountPoint = "not-found", "inactive", "static", "active", No
		}), state: Encapsulated, mechanism: MechanismZTP, hidden: 400},
		{name: "ztp masked", rep: mod(func(r *Report) {
			r.KubensPin, r.ZTPPin = NSNone, r.KubeletNS
			r.KubensEnabled, r.KubensActive, r.ZTPEnabled, r.ZTPActive = "not-found", "inactive", "masked", "active"
		}), state: Encapsulated, mechanism: MechanismZTP, failChecks: "Unit", hidden: 400},
		// kubens.service has an [Install] section: only enabled survives a reboot.
		{name: "kubens static", rep: mod(func(r *Report) { r.KubensEnabled = "static" }),
			state: Encapsulated, mechanism: MechanismKubens, failChecks: "Unit", hidden: 400},
		{name: "other mechanism", rep: mod(func(r *Report) { r.KubensPin = NSNone }), state: Encapsulated, mechanism: MechanismOther, failChecks: "PinnedNamespace", hidden: 400},
		{name: "no env, unit off, no netns", rep: mod(func(r *Report) {
			r.RuntimeKubensMnt, r.KubensEnabled, r.NetnsMountPoint = No, "disabled", No
		}), state: Encapsulated, mechanism: MechanismKubens, failChecks: "KUBENSMNT,Unit,NetnsMountPoint", hidden: 400},
		{name: "units unknown off systemd", rep: mod(func(r *Report) {
			r.KubensEnabled, r.KubensActive = "unknown", "unknown"
		}), state: Encapsulated, mechanism: MechanismKubens, hidden: 400},
		{name: "no kubelet", rep: mod(func(r *Report) { r.KubeletPID, r.KubeletNS = 0, NSNone }), state: StateUnknown, reason: ReasonProcessMissing},
		{name: "no runtime", rep: mod(func(r *Report) { r.Runtime, r.RuntimePID, r.RuntimeNS = "none", 0, NSNone }), state: StateUnknown, reason: ReasonProcessMissing},
		{name: "pid1 unreadable", rep: mod(func(r *Report) { r.PID1NS = NSDenied }), state: StateUnknown, reason: ReasonNSUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case must also be a valid report.
			rep, err := ParseReport([]byte(tt.rep.Format()))
			if err != nil {
				t.Fatal(err)
			}
			got := Classify("n1", rep)
			if got.State != tt.state || got.Reason != tt.reason || got.Mechanism != tt.mechanism {
				t.Fatalf("got %s/%s/%q, want %s/%s/%q (%s)", got.State, got.Reason, got.Mechanism, tt.state, tt.reason, tt.mechanism, got.Message)
			}
			if tt.state == StateUnknown {
				return
			}
			if f := strings.Join(got.FailedChecks(), ","); f != tt.failChecks {
				t.Errorf("failed checks %q, want %q (%+v)", f, tt.failChecks, got.Checks)
			}
			if got.Mounts.Hidden != tt.hidden {
				t.Errorf("hidden %d, want %d", got.Mounts.Hidden, tt.hidden)
			}
		})
	}
}

func TestClassifyPod(t *testing.T) {
	term := func(code int32, msg, reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ProbeContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg, Reason: reason}},
		}}}}
	}
	waiting := func(reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ProbeContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}},
		}}}}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		done   bool
		state  State
		reason string
	}{
		{"report", term(0, sampleReport().Format(), "Completed"), true, Encapsulated, ""},
		{"garbage report", term(0, "hello", "Completed"), true, StateUnknown, ReasonBadReport},
		{"probe crashed", term(2, "sh: syntax error", "Error"), true, StateUnknown, ReasonProbeFailed},
		{"pending", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, false, StateUnknown, ""},
		{"no status", &corev1.Pod{}, false, StateUnknown, ""},
		{"pulling", waiting("ContainerCreating"), false, StateUnknown, ""},
		{"err image pull waits", waiting("ErrImagePull"), false, StateUnknown, ""},
		{"backoff", waiting("ImagePullBackOff"), true, StateUnknown, "ImagePullBackOff"},
		{"never pull", waiting("ErrImageNeverPull"), true, StateUnknown, "ErrImageNeverPull"},
		{"deadline", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded"}}, true, StateUnknown, ReasonTimeout},
		{"admission", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Out of cpu!"}}, true, StateUnknown, "Outofcpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done := ClassifyPod("n1", tt.pod)
			if done != tt.done {
				t.Fatalf("done=%v, want %v", done, tt.done)
			}
			if !done {
				return
			}
			if got.State != tt.state || got.Reason != tt.reason {
				t.Fatalf("got %s/%s, want %s/%s (%s)", got.State, got.Reason, tt.state, tt.reason, got.Message)
			}
		})
	}
}
