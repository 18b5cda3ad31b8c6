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
	case len(c.Command) != 4 || c.Command[2] != ProbeScript || c.Command[3] != "oc-kubens-verify":
		t.Fatal("command is not the fixed probe")
	}
}

func TestPodName(t *testing.T) {
	long := strings.Repeat("a", 60) + ".example.com"
	for _, node := range []string{"n1", "ip-10-0-1-2.ec2.internal", long, long + "x"} {
		name := PodName("verify-", node)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("%q -> %q invalid: %v", node, name, errs)
		}
	}
	if PodName("verify-", long) == PodName("verify-", long+"x") {
		t.Error("long names collide")
	}
	// Names that are labels already stay readable.
	if got := PodName("verify-", "worker-0"); got != "verify-worker-0" {
		t.Errorf("worker-0 -> %q", got)
	}
}

// TestPodNameLongDottedNodes: node names of 63, 64, 200 and 253 characters
// (the longest a node name can be) with a dot at every position a cut could
// end on, for both prefixes. Every pod name must be a DNS-1123 label (no
// dots: the API server warns about dotted pod names, and rejects ".-"), and
// no two nodes may share one.
func TestPodNameLongDottedNodes(t *testing.T) {
	for _, prefix := range []string{"verify-", "exec-"} {
		seen := map[string]string{}
		check := func(node string) {
			t.Helper()
			if errs := validation.IsDNS1123Subdomain(node); len(errs) > 0 {
				t.Fatalf("test node name %q is not a valid node name: %v", node, errs)
			}
			name := PodName(prefix, node)
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				t.Fatalf("%d-char node %q -> %q: %v", len(node), node, name, errs)
			}
			if other, dup := seen[name]; dup && other != node {
				t.Fatalf("%q and %q both -> %q", other, node, name)
			}
			seen[name] = node
		}
		for _, n := range []int{63, 64, 200, 253} {
			for dot := 1; dot < n-1; dot++ {
				b := []byte(strings.Repeat("a", n))
				b[dot] = '.'
				// Labels of a node name are at most 63 characters: add
				// more dots every 60 characters away from this one.
				for i := dot + 60; i < n-1; i += 60 {
					b[i] = '.'
				}
				for i := dot - 60; i > 0; i -= 60 {
					b[i] = '.'
				}
				check(string(b))
				// The same name with dashes for dots must not collide.
				check(strings.TrimRight(strings.ReplaceAll(string(b), ".", "-")[:min(n, 63)], "-"))
			}
		}
		// Dotted names that fit lose their dots too, uniquely.
		check("ip-10-0-1-2.ec2.internal")
		check("ip-10-0-1-2-ec2-internal")
		if got := PodName(prefix, "ip-10-0-1-2.ec2.internal"); !strings.HasPrefix(got, prefix+"ip-10-0-1-2-ec2-internal-") {
			t.Errorf("dotted node -> %q: want the readable node name in it", got)
		}
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
