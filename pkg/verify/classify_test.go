package verify

import (
	"encoding/json"
	"reflect"
	"slices"
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

// TestClassifyWrapped: the WrappedUnits check and the wrapped list cover the
// units the node's own config wraps, found at their index among the units
// the probe was given.
func TestClassifyWrapped(t *testing.T) {
	const kubeNS, hostNS = NSRef("4026533000"), NSRef("4026531841")
	probed := []string{"agent.service", "other.service", "stopped.service", "hidden.service"}
	report := func(state State, procs ...WrappedProc) *Report {
		r := sampleReport()
		if state == NotEncapsulated {
			r.KubeletNS, r.RuntimeNS, r.PID1NS, r.KubensPin = hostNS, hostNS, hostNS, NSNone
			r.KubensEnabled, r.KubensActive = "disabled", "inactive"
		}
		if state == Split {
			r.RuntimeNS = hostNS
		}
		r.Wrapped = procs
		return r
	}
	in, out := WrappedProc{PID: 300, NS: kubeNS}, WrappedProc{PID: 400, NS: hostNS}
	none, denied := WrappedProc{PID: 0, NS: NSNone}, WrappedProc{PID: 500, NS: NSDenied}
	tests := []struct {
		name    string
		rep     *Report
		wrapped []string
		status  CheckStatus
		detail  string
		list    []WrappedUnit
	}{
		{"no wrapped units", report(Encapsulated, in, in, none, denied), nil, CheckSkip, "no wrapped units", nil},
		{"all inside", report(Encapsulated, in, in, none, denied), []string{"agent.service", "other.service"}, CheckPass,
			"agent.service, other.service run in kubelet's mount namespace",
			[]WrappedUnit{{"agent.service", 300, kubeNS, true}, {"other.service", 300, kubeNS, true}}},
		{"one outside", report(Encapsulated, in, out, none, denied), []string{"agent.service", "other.service"}, CheckFail,
			"other.service runs outside the Kubernetes mount namespace (mnt:[4026531841], kubelet mnt:[4026533000]): it has not been restarted since it was wrapped; restart it or reboot the node",
			[]WrappedUnit{{"agent.service", 300, kubeNS, true}, {"other.service", 400, hostNS, false}}},
		{"not running", report(Encapsulated, in, in, none, denied), []string{"stopped.service"}, CheckSkip, "stopped.service is not running",
			[]WrappedUnit{{"stopped.service", 0, NSNone, false}}},
		{"running inside, one stopped", report(Encapsulated, in, in, none, denied), []string{"agent.service", "stopped.service"}, CheckPass,
			"agent.service runs in kubelet's mount namespace; stopped.service is not running",
			[]WrappedUnit{{"agent.service", 300, kubeNS, true}, {"stopped.service", 0, NSNone, false}}},
		{"unreadable", report(Encapsulated, in, in, none, denied), []string{"hidden.service"}, CheckSkip, "cannot read the mount namespace of hidden.service (PID 500)",
			[]WrappedUnit{{"hidden.service", 500, NSDenied, false}}},
		{"not probed", report(Encapsulated, in, in, none, denied), []string{"odd.socket"}, CheckSkip, "odd.socket cannot be checked",
			[]WrappedUnit{{"odd.socket", 0, NSNone, false}}},
		{"not encapsulated", report(NotEncapsulated, WrappedProc{300, hostNS}, in, none, denied), []string{"agent.service"}, CheckSkip,
			"kubensenter runs wrapped units in the host namespace while the node is not encapsulated",
			[]WrappedUnit{{"agent.service", 300, hostNS, true}}},
		{"split", report(Split, out, in, none, denied), []string{"agent.service"}, CheckSkip, "different mount namespaces",
			[]WrappedUnit{{"agent.service", 400, hostNS, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case must also be a valid report on the probed units.
			rep, err := ParseReportUnits([]byte(tt.rep.Format()), len(probed))
			if err != nil {
				t.Fatal(err)
			}
			got := ClassifyWrapped("n1", rep, probed, tt.wrapped)
			var c *Check
			for i := range got.Checks {
				if got.Checks[i].Name == CheckWrappedUnits {
					c = &got.Checks[i]
				}
			}
			if c == nil {
				t.Fatalf("no %s check: %+v", CheckWrappedUnits, got.Checks)
			}
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("%s %q, want %s %q", c.Status, c.Detail, tt.status, tt.detail)
			}
			if !reflect.DeepEqual(got.Wrapped, tt.list) {
				t.Errorf("wrapped\n got %+v\nwant %+v", got.Wrapped, tt.list)
			}
			// A failed WrappedUnits check shows like any other failed check.
			failed := slices.Contains(got.FailedChecks(), CheckWrappedUnits)
			if failed != (tt.status == CheckFail) {
				t.Errorf("FailedChecks %v", got.FailedChecks())
			}
			if failed && !slices.Equal(got.FailedChecks(), []string{CheckWrappedUnits}) {
				t.Errorf("FailedChecks %v, want only %s", got.FailedChecks(), CheckWrappedUnits)
			}
		})
	}

	// Classify (no units) always has the check, skipped.
	got := Classify("n1", sampleReport())
	if c := got.Checks[len(got.Checks)-1]; c.Name != CheckWrappedUnits || c.Status != CheckSkip || got.Wrapped != nil {
		t.Errorf("Classify: %+v, wrapped %+v", c, got.Wrapped)
	}
}

// TestClassifyPodWrapped: the probe's pod is read with the number of units
// it was given; a report on another number is a bad report.
func TestClassifyPodWrapped(t *testing.T) {
	r := sampleReport()
	r.Wrapped = []WrappedProc{{PID: 300, NS: r.KubeletNS}, {PID: 400, NS: r.PID1NS}}
	pod := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: ProbeContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: r.Format()}},
	}}}}
	got, done := classifyPod("n1", pod, []string{"a.service", "b.service"}, []string{"b.service"})
	if !done || got.State != Encapsulated || len(got.Wrapped) != 1 || got.Wrapped[0].PID != 400 || !slices.Equal(got.FailedChecks(), []string{CheckWrappedUnits}) {
		t.Fatalf("%+v", got)
	}
	if got, _ := ClassifyPod("n1", pod); got.State != StateUnknown || got.Reason != ReasonBadReport {
		t.Errorf("read as a report on no units: %+v", got)
	}
	// The JSON of the wrapped list is part of the -o json schema.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"wrapped":[{"unit":"b.service","pid":400,"mnt":"4026531841","inKubeletNamespace":false}]`; !strings.Contains(string(b), want) {
		t.Errorf("JSON %s lacks %s", b, want)
	}
	if b, _ := json.Marshal(Classify("n1", sampleReport())); strings.Contains(string(b), `"wrapped"`) {
		t.Errorf("a node without wrapped units has a wrapped list: %s", b)
	}
}
