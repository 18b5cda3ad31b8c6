package verify

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestPodFor(t *testing.T) {
	p := PodFor("verify-n1", "n1", PodOptions{Image: "img", PullPolicy: corev1.PullNever, Deadline: 150 * time.Second, Command: ProbeCommand()})
	s := p.Spec
	c := s.Containers[0]
	switch {
	case s.NodeName != "n1", !s.HostPID, !s.HostNetwork, s.RestartPolicy != corev1.RestartPolicyNever:
		t.Fatalf("placement/namespaces wrong: %+v", s)
	case s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 150:
		t.Fatalf("activeDeadlineSeconds %v", s.ActiveDeadlineSeconds)
	case s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken:
		t.Fatal("service account token mounted")
	case len(s.Tolerations) != 1 || s.Tolerations[0].Operator != corev1.TolerationOpExists || s.Tolerations[0].Key != "":
		t.Fatalf("tolerations %+v", s.Tolerations)
	case c.SecurityContext == nil || !*c.SecurityContext.Privileged || *c.SecurityContext.RunAsUser != 0:
		t.Fatal("not privileged root")
	case c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError:
		t.Fatal("termination message policy")
	case s.Volumes[0].HostPath == nil || s.Volumes[0].HostPath.Path != "/" || c.VolumeMounts[0].MountPath != "/host":
		t.Fatal("host / not at /host")
	case c.ImagePullPolicy != corev1.PullNever || c.Image != "img":
		t.Fatal("image")
	case len(c.Command) != 3 || c.Command[2] != ProbeScript:
		t.Fatal("command is not the fixed probe")
	}
}

func TestPodName(t *testing.T) {
	long := strings.Repeat("a", 60) + ".example.com"
	for _, node := range []string{"n1", "ip-10-0-1-2.ec2.internal", long, long + "x"} {
		name := PodName("verify-", node)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || len(name) > 63 {
			t.Errorf("%q -> %q invalid: %v", node, name, errs)
		}
	}
	if PodName("verify-", long) == PodName("verify-", long+"x") {
		t.Error("long names collide")
	}
}

func TestNamespaceFor(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ns := NamespaceFor(NamespaceOptions{Prefix: "p-", Purpose: "verify", Expires: exp})
	if ns.GenerateName != "p-" || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" ||
		ns.Labels["security.openshift.io/scc.podSecurityLabelSync"] != "false" || ns.Labels[RunLabel] != "verify" {
		t.Fatalf("labels %v", ns.Labels)
	}
	if v, ok := ns.Annotations["openshift.io/node-selector"]; !ok || v != "" {
		t.Fatal("node selector annotation")
	}
	if got, ok := ExpiresAt(ns); !ok || !got.Equal(exp) {
		t.Fatalf("expires %v %v", got, ok)
	}
}
