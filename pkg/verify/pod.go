package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

const (
	// RunLabel marks every namespace verify or exec creates, so a later run
	// can find and remove the ones a crashed run left behind. Its value says
	// which command made it.
	RunLabel = "oc-kubens.io/debug-run"
	// ExpiresAnnotation holds the RFC 3339 time after which nothing in the
	// namespace can still be running (its pods' activeDeadlineSeconds have
	// passed): from then on any run may delete it.
	ExpiresAnnotation = "oc-kubens.io/expires-at"
	// NodeAnnotation on a pod names the node it probes.
	NodeAnnotation = "oc-kubens.io/node"

	// ProbeContainer is the name of the container in every verify and exec pod.
	ProbeContainer = "probe"

	// OpenShiftToolsImage is where `oc debug` falls back to when the
	// openshift/tools image stream is missing.
	OpenShiftToolsImage = "registry.redhat.io/rhel9/support-tools"
)

// NamespaceOptions shape the temporary namespace.
type NamespaceOptions struct {
	// Prefix for generateName, e.g. "oc-kubens-verify-".
	Prefix string
	// Purpose is the value of RunLabel ("verify" or "exec").
	Purpose string
	// Expires is when the namespace becomes fair game for the stale sweep.
	Expires time.Time
}

// NamespaceFor builds the temporary namespace: privileged pod security
// (enforce, audit and warn), no OpenShift label sync to undo that, and an
// empty project node selector so the pods may land on every node, masters
// and infra included.
func NamespaceFor(o NamespaceOptions) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: o.Prefix,
			Labels: map[string]string{
				RunLabel:                                         o.Purpose,
				"pod-security.kubernetes.io/enforce":             "privileged",
				"pod-security.kubernetes.io/audit":               "privileged",
				"pod-security.kubernetes.io/warn":                "privileged",
				"security.openshift.io/scc.podSecurityLabelSync": "false",
			},
			Annotations: map[string]string{
				"openshift.io/node-selector": "",
				ExpiresAnnotation:            o.Expires.UTC().Format(time.RFC3339),
			},
		},
	}
}

// PodOptions shape a per-node pod.
type PodOptions struct {
	Image      string
	PullPolicy corev1.PullPolicy
	// Deadline becomes activeDeadlineSeconds: the kubelet kills the pod
	// after it even when the client that made it is gone.
	Deadline time.Duration
	// Command is the container's command; ProbeCommand() for verify.
	Command []string
}

// PodName is the name of the pod for node, a valid DNS-1123 label (at most
// 63 characters, no dots), unique per node.
//
// A node name that is already such a label once prefixed is kept as it is,
// so pods read like their nodes. Any other (dotted FQDNs, long names) becomes
// a readable prefix of the node name with dots turned into dashes, then a
// dash and a hash of the whole node name: the hash keeps "a.b" and "a-b", or
// two long names that share their first 40 characters, apart. Dotted pod
// names are valid objects but make the API server warn ("a DNS label is
// recommended") because a pod's name becomes its hostname; a cut that ended
// on a dot gave ".-", which the API server rejects.
func PodName(prefix, node string) string {
	name := prefix + node
	if len(name) <= 63 && len(validation.IsDNS1123Label(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(node))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	b := []byte(strings.ToLower(prefix + node))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	base := string(b)
	if keep := 63 - len(suffix); len(base) > keep {
		base = base[:keep]
	}
	// A label must start and end with an alphanumeric: the suffix ends it,
	// and no run of dashes may come before the suffix's own.
	base = strings.TrimRight(base, "-")
	if base == "" {
		base = "p"
	}
	return base + suffix
}

// PodFor builds the privileged per-node pod: pinned to the node by nodeName
// (no scheduler, so cordoned nodes are tried too), tolerating every taint,
// in the host's PID and network namespaces, root and privileged so it may
// read other processes' namespaces, with the node's / at /host.
func PodFor(name, node string, o PodOptions) *corev1.Pod {
	deadline := int64(o.Deadline / time.Second)
	if deadline < 1 {
		deadline = 1
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{RunLabel: "pod"},
			Annotations: map[string]string{NodeAnnotation: node},
		},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			HostPID:                       true,
			HostNetwork:                   true,
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(deadline),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			PriorityClassName:             "",
			Containers: []corev1.Container{{
				Name:                     ProbeContainer,
				Image:                    o.Image,
				ImagePullPolicy:          o.PullPolicy,
				Command:                  o.Command,
				TerminationMessagePath:   corev1.TerminationMessagePathDefault,
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				SecurityContext: &corev1.SecurityContext{
					Privileged: ptr.To(true),
					RunAsUser:  ptr.To(int64(0)),
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host"}},
			}},
			Volumes: []corev1.Volume{{
				Name: "host",
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
					Path: "/", Type: ptr.To(corev1.HostPathDirectory),
				}},
			}},
		},
	}
}

// ExpiresAt reads the namespace's expiry; ok=false when it has none or it is
// malformed.
func ExpiresAt(ns *corev1.Namespace) (time.Time, bool) {
	v, ok := ns.Annotations[ExpiresAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// deadlineSeconds renders a duration for messages.
func deadlineSeconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }
