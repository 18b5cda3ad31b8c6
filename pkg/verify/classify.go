package verify

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// State is what verify concludes about one node.
type State string

const (
	Encapsulated    State = "Encapsulated"
	NotEncapsulated State = "NotEncapsulated"
	// Split: kubelet and the runtime are in different mount namespaces.
	// Pods then lose secret and configmap mounts: the worst state to be in.
	Split State = "Split"
	// StateUnknown: no verdict; NodeResult.Reason says why.
	StateUnknown State = "Unknown"
)

// Reasons for StateUnknown. They are stable identifiers (the JSON output
// carries them); NodeResult.Message has the details.
const (
	ReasonNodeNotReady     = "NodeNotReady"
	ReasonTimeout          = "Timeout"
	ReasonForbidden        = "Forbidden"
	ReasonProcessMissing   = "ProcessMissing"
	ReasonNSUnreadable     = "NamespaceUnreadable"
	ReasonBadReport        = "BadReport"
	ReasonProbeFailed      = "ProbeFailed"
	ReasonCreateFailed     = "PodCreateFailed"
	ReasonInterrupted      = "Interrupted"
	ReasonPodDeleted       = "PodDeleted"
	ReasonImagePullBackOff = "ImagePullBackOff"
)

// Mechanism names what put kubelet into its private namespace.
type Mechanism string

const (
	MechanismNone   Mechanism = ""
	MechanismKubens Mechanism = "kubens.service"
	// MechanismZTP is the telco (ZTP / RAN DU) container-mount-namespace.service.
	MechanismZTP   Mechanism = "container-mount-namespace"
	MechanismOther Mechanism = "other"
)

// CheckStatus is the outcome of one extra check.
type CheckStatus string

const (
	CheckPass CheckStatus = "Pass"
	CheckFail CheckStatus = "Fail"
	// CheckSkip: the check does not apply or the facts were not available.
	CheckSkip CheckStatus = "Skip"
)

// Names of the extra checks.
const (
	CheckPinned    = "PinnedNamespace"
	CheckEnv       = "KUBENSMNT"
	CheckUnit      = "Unit"
	CheckNetnsName = "NetnsMountPoint"
	// CheckWrappedUnits: the units the node's config runs through kubensenter
	// (oc kubens wrap) run in kubelet's mount namespace.
	CheckWrappedUnits = "WrappedUnits"
)

// Check is one extra check on a node.
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail,omitempty"`
}

// Namespaces holds the mount namespace inodes the probe read ("none" or
// "denied" when it could not).
type Namespaces struct {
	PID1      NSRef `json:"pid1"`
	Kubelet   NSRef `json:"kubelet"`
	Runtime   NSRef `json:"runtime"`
	KubensPin NSRef `json:"kubensPin"`
	ZTPPin    NSRef `json:"ztpPin"`
}

// Mounts counts the mounts seen by PID 1 (systemd) and by kubelet; Hidden is
// how many more kubelet sees, that is how many are hidden from systemd, when
// the node is encapsulated. -1 means unknown.
type Mounts struct {
	PID1    int `json:"pid1"`
	Kubelet int `json:"kubelet"`
	Hidden  int `json:"hidden"`
}

// NodeResult is verify's finding for one node. Its JSON form is part of the
// stable `-o json|yaml` schema (see README, "verify").
type NodeResult struct {
	Node  string `json:"node"`
	State State  `json:"state"`
	// Reason is set for StateUnknown only.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Expected comes from the node's current rendered MachineConfig; empty
	// where the MachineConfig API does not exist or the config is unknown,
	// StateUnknown where it could not be told whether the API exists.
	Expected   State       `json:"expected,omitempty"`
	Mechanism  Mechanism   `json:"mechanism,omitempty"`
	Runtime    string      `json:"runtime,omitempty"`
	Namespaces *Namespaces `json:"namespaces,omitempty"`
	Mounts     *Mounts     `json:"mounts,omitempty"`
	Checks     []Check     `json:"checks,omitempty"`
	// Wrapped lists the units the node's current rendered config wraps with
	// kubensenter, as the probe found them; absent when it wraps none or
	// the node has no verdict.
	Wrapped []WrappedUnit `json:"wrapped,omitempty"`
}

// WrappedUnit is one unit the node's config runs through kubensenter.
type WrappedUnit struct {
	Unit string `json:"unit"`
	// PID is the unit's main PID, 0 when it has none (not running).
	PID int `json:"pid"`
	// Mnt is the mount namespace of that process, NSNone when there is no
	// such process, NSDenied when it could not be read.
	Mnt NSRef `json:"mnt"`
	// InKubeletNamespace: Mnt is kubelet's mount namespace.
	InKubeletNamespace bool `json:"inKubeletNamespace"`
}

// FailedChecks lists the names of the checks that failed.
func (r *NodeResult) FailedChecks() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			out = append(out, c.Name)
		}
	}
	return out
}

// Classify turns a parsed report into a verdict for node, a node whose
// config wraps no units.
func Classify(node string, rep *Report) NodeResult { return ClassifyWrapped(node, rep, nil, nil) }

// ClassifyWrapped is Classify for a probe that was given the units probed
// (rep.Wrapped[i] is what it found of probed[i]), on a node whose own
// config wraps the units wrapped. The probe of every node gets the same
// units, those of all the nodes of a run, so only wrapped count here: they
// make the Wrapped list and the WrappedUnits check. A unit of wrapped that
// is not in probed (a name the probe would refuse) is listed as not running
// and the check says it could not be looked at.
func ClassifyWrapped(node string, rep *Report, probed, wrapped []string) NodeResult {
	res := NodeResult{
		Node:    node,
		Runtime: rep.Runtime,
		Namespaces: &Namespaces{
			PID1: rep.PID1NS, Kubelet: rep.KubeletNS, Runtime: rep.RuntimeNS,
			KubensPin: rep.KubensPin, ZTPPin: rep.ZTPPin,
		},
		Mounts: &Mounts{PID1: rep.PID1Mounts, Kubelet: rep.KubeletMounts, Hidden: -1},
	}
	if res.Runtime == "none" {
		res.Runtime = ""
	}
	unknown := func(reason, msg string) NodeResult {
		res.State, res.Reason, res.Message = StateUnknown, reason, msg
		return res
	}
	switch {
	case rep.KubeletPID == 0:
		return unknown(ReasonProcessMissing, "no process named kubelet on the node")
	case rep.RuntimePID == 0:
		return unknown(ReasonProcessMissing, "no process named crio or containerd on the node")
	}
	for _, n := range []struct {
		what string
		ref  NSRef
	}{{"PID 1", rep.PID1NS}, {"kubelet", rep.KubeletNS}, {rep.Runtime, rep.RuntimeNS}} {
		if !n.ref.Known() {
			return unknown(ReasonNSUnreadable, fmt.Sprintf("cannot read the mount namespace of %s (%s); the probe pod must be privileged", n.what, n.ref))
		}
	}

	switch {
	case rep.KubeletNS != rep.RuntimeNS:
		res.State = Split
		res.Message = fmt.Sprintf("kubelet (mnt:[%s]) and %s (mnt:[%s]) are in different mount namespaces; restart both or reboot the node", rep.KubeletNS, rep.Runtime, rep.RuntimeNS)
	case rep.KubeletNS == rep.PID1NS:
		res.State = NotEncapsulated
	default:
		res.State = Encapsulated
	}

	if res.State != NotEncapsulated {
		switch {
		case rep.KubensPin.Known() && rep.KubensPin == rep.KubeletNS:
			res.Mechanism = MechanismKubens
		case rep.ZTPPin.Known() && rep.ZTPPin == rep.KubeletNS:
			res.Mechanism = MechanismZTP
		default:
			res.Mechanism = MechanismOther
		}
	}
	if res.State == Encapsulated && rep.PID1Mounts >= 0 && rep.KubeletMounts >= 0 {
		res.Mounts.Hidden = max(rep.KubeletMounts-rep.PID1Mounts, 0)
	}
	res.Checks = checks(res.State, res.Mechanism, rep)
	var skipped map[string]bool
	res.Wrapped, skipped = wrappedUnits(rep, probed, wrapped)
	res.Checks = append(res.Checks, wrappedCheck(res.State, rep.KubeletNS, res.Wrapped, skipped))
	return res
}

// wrappedUnits looks up each unit of wrapped among the probed ones, in name
// order; skipped holds the units that were not probed.
func wrappedUnits(rep *Report, probed, wrapped []string) (out []WrappedUnit, skipped map[string]bool) {
	idx := make(map[string]int, len(probed))
	for i, u := range probed {
		if i < len(rep.Wrapped) {
			idx[u] = i
		}
	}
	for _, u := range slices.Sorted(slices.Values(wrapped)) {
		w := WrappedUnit{Unit: u, Mnt: NSNone}
		if i, ok := idx[u]; ok {
			w.PID, w.Mnt = rep.Wrapped[i].PID, rep.Wrapped[i].NS
			w.InKubeletNamespace = w.Mnt.Known() && w.Mnt == rep.KubeletNS
		} else {
			if skipped == nil {
				skipped = map[string]bool{}
			}
			skipped[u] = true
		}
		out = append(out, w)
	}
	return out, skipped
}

// wrappedCheck is the WrappedUnits check. kubensenter enters the pinned
// namespace when the unit starts, so a unit wrapped while it ran keeps the
// host's namespace until it is restarted: that is what a Fail points at.
// Units that are not running are not held against the node; the check
// passes when every running one is in kubelet's namespace.
func wrappedCheck(state State, kubeletNS NSRef, units []WrappedUnit, skipped map[string]bool) Check {
	c := Check{Name: CheckWrappedUnits, Status: CheckSkip}
	switch {
	case len(units) == 0:
		c.Detail = "no wrapped units"
		return c
	case state == NotEncapsulated:
		c.Detail = "kubensenter runs wrapped units in the host namespace while the node is not encapsulated"
		return c
	case state != Encapsulated:
		c.Detail = "not checked while kubelet and the runtime are in different mount namespaces"
		return c
	}
	var fails, passes, skips []string
	for _, u := range units {
		switch {
		case skipped[u.Unit]:
			skips = append(skips, u.Unit+" cannot be checked: verify looks up services named with [A-Za-z0-9:_.@-] only")
		case u.PID == 0 || u.Mnt == NSNone:
			skips = append(skips, u.Unit+" is not running")
		case u.Mnt == NSDenied:
			skips = append(skips, fmt.Sprintf("cannot read the mount namespace of %s (PID %d)", u.Unit, u.PID))
		case u.InKubeletNamespace:
			passes = append(passes, u.Unit)
		default:
			fails = append(fails, fmt.Sprintf("%s runs outside the Kubernetes mount namespace (mnt:[%s], kubelet mnt:[%s]): it has not been restarted since it was wrapped; restart it or reboot the node", u.Unit, u.Mnt, kubeletNS))
		}
	}
	switch {
	case len(fails) > 0:
		c.Status, c.Detail = CheckFail, strings.Join(fails, "; ")
	case len(passes) > 0:
		verb := " runs"
		if len(passes) > 1 {
			verb = " run"
		}
		c.Status, c.Detail = CheckPass, strings.Join(append([]string{strings.Join(passes, ", ") + verb + " in kubelet's mount namespace"}, skips...), "; ")
	default:
		c.Detail = strings.Join(skips, "; ")
	}
	return c
}

// ztpEnabledOK tells whether systemctl is-enabled's answer for
// container-mount-namespace.service means it starts at boot. The unit has no
// [Install] section: crio's and kubelet's drop-ins pull it in with Wants=, so
// a healthy node says "static". "indirect" (pulled in through Also= or
// another unit) and "generated" (made by a generator) start it the same way.
func ztpEnabledOK(enabled string) bool {
	switch enabled {
	case "enabled", "static", "indirect", "generated":
		return true
	}
	return false
}

func checks(state State, mech Mechanism, rep *Report) []Check {
	var out []Check
	add := func(name string, st CheckStatus, detail string) {
		out = append(out, Check{Name: name, Status: st, Detail: detail})
	}

	// The pinned namespace must be the one kubelet runs in.
	switch {
	case state == NotEncapsulated && rep.KubensPin.Known():
		add(CheckPinned, CheckFail, "a namespace is pinned at /run/kubens/mnt but kubelet is not in it: kubelet and the runtime need a restart (reboot the node)")
	case state == NotEncapsulated:
		add(CheckPinned, CheckSkip, "not encapsulated")
	case mech == MechanismKubens:
		add(CheckPinned, CheckPass, "/run/kubens/mnt is kubelet's namespace")
	case mech == MechanismZTP:
		add(CheckPinned, CheckPass, "/run/container-mount-namespace/mnt is kubelet's namespace")
	case rep.KubensPin == NSDenied || rep.ZTPPin == NSDenied:
		add(CheckPinned, CheckSkip, "the pinned namespaces could not be read")
	default:
		add(CheckPinned, CheckFail, "no namespace pinned at /run/kubens/mnt or /run/container-mount-namespace/mnt is kubelet's")
	}

	// KUBENSMNT is how kubens.service hands the namespace to kubelet's
	// wrapper and to CRI-O.
	switch {
	case state != Encapsulated || mech != MechanismKubens:
		add(CheckEnv, CheckSkip, "applies to kubens.service only")
	case rep.KubeletKubensMnt == Unknown || rep.RuntimeKubensMnt == Unknown:
		add(CheckEnv, CheckSkip, "environment not readable")
	case rep.KubeletKubensMnt == Yes && rep.RuntimeKubensMnt == Yes:
		add(CheckEnv, CheckPass, "set for kubelet and "+rep.Runtime)
	default:
		var miss []string
		if rep.KubeletKubensMnt != Yes {
			miss = append(miss, "kubelet")
		}
		if rep.RuntimeKubensMnt != Yes {
			miss = append(miss, rep.Runtime)
		}
		add(CheckEnv, CheckFail, "KUBENSMNT missing from the environment of "+strings.Join(miss, " and "))
	}

	// The unit behind the mechanism must be enabled (survives reboots) and
	// active.
	unitName, enabled, active := "kubens.service", rep.KubensEnabled, rep.KubensActive
	enabledOK := enabled == "enabled"
	if mech == MechanismZTP {
		unitName, enabled, active = "container-mount-namespace.service", rep.ZTPEnabled, rep.ZTPActive
		enabledOK = ztpEnabledOK(enabled)
	}
	switch {
	case enabled == "unknown" || active == "unknown":
		add(CheckUnit, CheckSkip, "unit state unknown (PID 1 is not systemd or systemctl is missing)")
	case state == NotEncapsulated && enabled == "enabled" && active == "active":
		add(CheckUnit, CheckFail, unitName+" is enabled and active but kubelet is not in its namespace: reboot the node")
	case state == NotEncapsulated:
		add(CheckUnit, CheckSkip, fmt.Sprintf("%s is %s and %s", unitName, enabled, active))
	case mech == MechanismOther:
		add(CheckUnit, CheckSkip, "no known unit behind this namespace")
	case enabledOK && active == "active":
		add(CheckUnit, CheckPass, fmt.Sprintf("%s is %s and active", unitName, enabled))
	default:
		add(CheckUnit, CheckFail, fmt.Sprintf("%s is %s and %s", unitName, enabled, active))
	}

	// Since OCPBUGS-83562 kubens.service makes /run/netns a mount point;
	// without it pod network namespaces can leak out of the namespace.
	switch {
	case state != Encapsulated:
		add(CheckNetnsName, CheckSkip, "not encapsulated")
	case rep.NetnsMountPoint == Yes:
		add(CheckNetnsName, CheckPass, "/run/netns is a mount point")
	case rep.NetnsMountPoint == No && mech != MechanismKubens:
		// The OCPBUGS-83562 step is part of kubens.service; the telco
		// container-mount-namespace.service never had it, so a ZTP node
		// is not failed for lacking it.
		add(CheckNetnsName, CheckSkip, "/run/netns is not a mount point; only kubens.service sets that up (OCPBUGS-83562)")
	case rep.NetnsMountPoint == No:
		add(CheckNetnsName, CheckFail, "/run/netns is not a mount point in kubelet's namespace (OCPBUGS-83562)")
	default:
		add(CheckNetnsName, CheckSkip, "kubelet's mounts not readable")
	}
	return out
}

// ClassifyPod says whether the pod has reached a state verify will not wait
// past, and if so what it means for the node. A pod still on its way
// (Pending, Running, or pulling its image) gives done=false.
func ClassifyPod(node string, pod *corev1.Pod) (res NodeResult, done bool) {
	return classifyPod(node, pod, nil, nil)
}

// classifyPod is ClassifyPod for a probe given the units probed, on a node
// whose config wraps the units wrapped (see ClassifyWrapped).
func classifyPod(node string, pod *corev1.Pod, probed, wrapped []string) (res NodeResult, done bool) {
	res = NodeResult{Node: node, State: StateUnknown}
	report, reason, message, done := FinishedPod(pod)
	switch {
	case !done:
		return res, false
	case reason != "":
		res.Reason, res.Message = reason, message
		return res, true
	}
	rep, err := ParseReportUnits(report, len(probed))
	if err != nil {
		res.Reason = ReasonBadReport
		res.Message = "the probe's report was rejected: " + err.Error()
		return res, true
	}
	return ClassifyWrapped(node, rep, probed, wrapped), true
}

// FinishedPod reads a pod of a run, whatever its probe: done is false while
// the pod is on its way. Once done, report is the termination message of a
// probe container that exited 0, or reason (a stable identifier such as
// ProbeFailed, Timeout, ImagePullBackOff) and message say why there is none.
func FinishedPod(pod *corev1.Pod) (report []byte, reason, message string, done bool) {
	var cs *corev1.ContainerStatus
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ProbeContainer {
			cs = &pod.Status.ContainerStatuses[i]
		}
	}
	if cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		if t.ExitCode == 0 {
			return []byte(t.Message), "", "", true
		}
		message = fmt.Sprintf("the probe exited with code %d: %s", t.ExitCode, firstLine(t.Message))
		if t.Reason != "" && t.Reason != "Error" {
			message = fmt.Sprintf("the probe ended with %s (exit code %d): %s", t.Reason, t.ExitCode, firstLine(t.Message))
		}
		return nil, ReasonProbeFailed, message, true
	}
	if pod.Status.Phase == corev1.PodFailed {
		// Rejected by the kubelet (admission, deadline) before running.
		switch pod.Status.Reason {
		case "DeadlineExceeded":
			reason = ReasonTimeout
		case "":
			reason = ReasonProbeFailed
		default:
			reason = sanitizeReason(pod.Status.Reason)
		}
		return nil, reason, "the probe pod failed: " + firstLine(pod.Status.Message), true
	}
	if pod.Status.Phase == corev1.PodSucceeded {
		return nil, ReasonBadReport, "the probe pod succeeded without a container status", true
	}
	if cs != nil && cs.State.Waiting != nil {
		switch w := cs.State.Waiting; w.Reason {
		case "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
			"CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			// ErrImagePull is left to run: it turns into ImagePullBackOff
			// when it is not a passing hiccup.
			return nil, w.Reason, firstLine(w.Message), true
		}
	}
	return nil, "", "", false
}

// PendingDetail describes a pod that is still on its way, for the message of
// a timeout.
func PendingDetail(pod *corev1.Pod) string {
	if pod == nil {
		return "the probe pod was never seen by the watch"
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return fmt.Sprintf("the probe pod is %s (%s)", pod.Status.Phase, sanitizeReason(cs.State.Waiting.Reason))
		}
	}
	if pod.Status.Phase == "" {
		return "the probe pod has no status: the kubelet never picked it up"
	}
	return fmt.Sprintf("the probe pod is still %s", pod.Status.Phase)
}

// sanitizeReason keeps a reason word usable as a stable identifier.
func sanitizeReason(s string) string {
	var b strings.Builder
	for _, c := range s {
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return ReasonProbeFailed
	}
	return b.String()
}

// firstLine returns the first line of untrusted text, shortened and
// stripped of control characters.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	var b strings.Builder
	for _, c := range s {
		if c >= 0x20 && c != 0x7f {
			b.WriteRune(c)
		}
		if b.Len() >= 200 {
			b.WriteString("...")
			break
		}
	}
	return b.String()
}
