package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgfake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clienttesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/internal/fakecluster"
	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// renderedWrapping is a rendered config that enables kubens.service and
// wraps units.
func renderedWrapping(name string, units ...string) *mcfgv1.MachineConfig {
	us := []string{`{"name":"kubens.service","enabled":true}`}
	for _, u := range units {
		us = append(us, `{"name":"`+u+`","dropins":[{"name":"`+manifests.WrapDropInName+`","contents":"[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /usr/bin/x\n"}]}`)
	}
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.4.0"},"systemd":{"units":[` + strings.Join(us, ",") + `]}}`)}}}
}

func nodeOn(name, config string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{verify.CurrentConfigAnnotation: config}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

// TestVerifyChecksWrappedUnits runs verify from the nodes on, on fake
// clients: the rendered configs are read before the pods start, once each;
// every pod is given the union of the nodes' wrapped units; each node's
// result checks its own, and a unit outside kubelet's namespace shows as a
// failed check, like the others: in CHECKS, without changing the exit
// status, which follows the states.
func TestVerifyChecksWrappedUnits(t *testing.T) {
	const kubeNS, hostNS = verify.NSRef("4026533000"), verify.NSRef("4026531841")
	for _, output := range []string{"", "json"} {
		t.Run("output="+output, func(t *testing.T) {
			kube := fakecluster.New()
			mcfg := mcfgfake.NewSimpleClientset(
				renderedWrapping("rendered-master-1"),
				renderedWrapping("rendered-worker-1", "zagent.service", "agent.service"),
				renderedWrapping("rendered-infra-1", "agent.service", "odd.socket"))
			var out, errOut bytes.Buffer
			o := &VerifyOptions{
				clients:     &clusterClients{kube: kube, mcfg: mcfg},
				nodeObjs:    []corev1.Node{nodeOn("i1", "rendered-infra-1"), nodeOn("m1", "rendered-master-1"), nodeOn("w1", "rendered-worker-1"), nodeOn("w2", "rendered-worker-1")},
				expect:      verify.Encapsulated,
				PrintFlags:  withOutput(newPrintFlags(tableOutput, ""), output),
				podRunFlags: podRunFlags{Parallelism: 10, Timeout: time.Minute},
				IOStreams:   genericiooptions.IOStreams{Out: &out, ErrOut: &errOut},
			}
			done := make(chan error, 1)
			go func() { done <- o.probe(context.Background(), "img", true, nil) }()

			pods := fakecluster.WaitPods(t, kube, 4)
			units := []string{"agent.service", "zagent.service"}
			// What each node's probe finds of agent.service and zagent.service.
			found := map[string][]verify.WrappedProc{
				"i1": {{PID: 300, NS: kubeNS}, {}},
				"m1": {{PID: 300, NS: hostNS}, {PID: 0, NS: verify.NSNone}},
				"w1": {{PID: 300, NS: kubeNS}, {PID: 310, NS: kubeNS}},
				"w2": {{PID: 300, NS: kubeNS}, {PID: 410, NS: hostNS}},
			}
			for name, p := range pods {
				if got := p.Spec.Containers[0].Command; !slices.Equal(got, verify.ProbeCommand(units...)) {
					t.Fatalf("pod %s runs ... %q, want the probe given %q", name, got[3:], units)
				}
				r := sampleNodeReport(kubeNS, hostNS)
				r.Wrapped = found[p.Spec.NodeName]
				if r.Wrapped[1].NS == "" {
					r.Wrapped[1] = verify.WrappedProc{NS: verify.NSNone}
				}
				p = p.DeepCopy()
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: verify.ProbeContainer,
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: r.Format()}}}}
				if _, err := kube.CoreV1().Pods(p.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("verify did not end")
			}
			if err != nil {
				t.Fatalf("exit: %v, want 0: every node is Encapsulated as expected (stderr %s)", err, errOut.String())
			}
			gets := map[string]int{}
			for _, a := range mcfg.Actions() {
				if g, ok := a.(clienttesting.GetAction); ok {
					gets[g.GetName()]++
				}
			}
			if len(gets) != 3 || gets["rendered-worker-1"] != 1 || gets["rendered-master-1"] != 1 || gets["rendered-infra-1"] != 1 {
				t.Errorf("rendered configs fetched %v, want each once", gets)
			}

			if output == "" {
				want := map[string]string{"i1": "ok", "m1": "ok", "w1": "ok", "w2": "fail:WrappedUnits"}
				for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:5] {
					f := strings.Fields(line)
					if f[len(f)-1] != want[f[0]] {
						t.Errorf("CHECKS of %q, want %s", line, want[f[0]])
					}
				}
				return
			}
			var rep verify.VerifyReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			wantWrapped := map[string]string{
				"i1": "agent.service:300:4026533000:true,odd.socket:0:none:false",
				"m1": "",
				"w1": "agent.service:300:4026533000:true,zagent.service:310:4026533000:true",
				"w2": "agent.service:300:4026533000:true,zagent.service:410:4026531841:false",
			}
			wantCheck := map[string]verify.CheckStatus{"i1": verify.CheckPass, "m1": verify.CheckSkip, "w1": verify.CheckPass, "w2": verify.CheckFail}
			for _, n := range rep.Nodes {
				var got []string
				for _, w := range n.Wrapped {
					got = append(got, fmt.Sprintf("%s:%d:%s:%v", w.Unit, w.PID, w.Mnt, w.InKubeletNamespace))
				}
				if strings.Join(got, ",") != wantWrapped[n.Node] {
					t.Errorf("%s: wrapped %v, want %s", n.Node, got, wantWrapped[n.Node])
				}
				for _, c := range n.Checks {
					if c.Name == verify.CheckWrappedUnits && c.Status != wantCheck[n.Node] {
						t.Errorf("%s: %s %s %q, want %s", n.Node, c.Name, c.Status, c.Detail, wantCheck[n.Node])
					}
				}
				if n.Expected != verify.Encapsulated {
					t.Errorf("%s: expected %q", n.Node, n.Expected)
				}
			}
		})
	}
}

// sampleNodeReport is what the probe writes on an encapsulated CRI-O node.
func sampleNodeReport(kubeNS, hostNS verify.NSRef) *verify.Report {
	return &verify.Report{
		PID1NS: hostNS, KubeletPID: 2345, KubeletNS: kubeNS,
		Runtime: "crio", RuntimePID: 1800, RuntimeNS: kubeNS,
		KubensPin: kubeNS, ZTPPin: verify.NSNone,
		KubeletKubensMnt: verify.Yes, RuntimeKubensMnt: verify.Yes,
		KubensEnabled: "enabled", KubensActive: "active",
		ZTPEnabled: "not-found", ZTPActive: "inactive",
		NetnsMountPoint: verify.Yes, PID1Mounts: 60, KubeletMounts: 460,
	}
}

// TestVerifyRefusesTooManyWrappedUnits: more wrapped units than one probe
// reports on is "could not run", with advice, before any pod is created.
func TestVerifyRefusesTooManyWrappedUnits(t *testing.T) {
	var a, b []string
	for i := range verify.MaxWrappedUnits + 1 {
		if i%2 == 0 {
			a = append(a, fmt.Sprintf("u%02d.service", i))
		} else {
			b = append(b, fmt.Sprintf("u%02d.service", i))
		}
	}
	kube := fakecluster.New()
	var out, errOut bytes.Buffer
	o := &VerifyOptions{
		clients:     &clusterClients{kube: kube, mcfg: mcfgfake.NewSimpleClientset(renderedWrapping("rendered-a", a...), renderedWrapping("rendered-b", b...))},
		nodeObjs:    []corev1.Node{nodeOn("n1", "rendered-a"), nodeOn("n2", "rendered-b")},
		expect:      verify.Encapsulated,
		podRunFlags: podRunFlags{Parallelism: 10, Timeout: time.Minute},
		IOStreams:   genericiooptions.IOStreams{Out: &out, ErrOut: &errOut},
	}
	err := o.probe(context.Background(), "img", true, nil)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != verifyExitCannotRun || !strings.Contains(err.Error(), "33 distinct units, more than the 32") || !strings.Contains(err.Error(), "-l or --pool") {
		t.Fatalf("err %v, want exit %d saying there are too many units", err, verifyExitCannotRun)
	}
	for _, act := range kube.Actions() {
		if act.GetVerb() == "create" {
			t.Errorf("created %s before refusing", act.GetResource().Resource)
		}
	}
}
