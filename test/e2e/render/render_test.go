// Package render checks, against a real kube-apiserver with the real
// MachineConfig CRD from github.com/openshift/api, that `oc kubens render`
// output applies cleanly with a real kubectl: strict field validation
// (client-side and server-side apply), both output formats, and a second
// apply that changes nothing.
package render

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/plugin"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

func render(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	if code := plugin.Execute(append([]string{"oc-kubens", "render"}, args...), streams); code != 0 {
		t.Fatalf("render %v: exit %d: %s", args, code, errOut.String())
	}
	return out.Bytes()
}

func TestRenderAppliesCleanly(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	cp := controlplane.StartForTest(t, controlplane.Options{}, 3*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kubectl := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(testenv.K8sBinDir(), "kubectl"),
			append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// Strict validation turns unknown or duplicate fields into errors;
		// a warning would still mean the objects are not what the CRD expects.
		if strings.Contains(string(out), "Warning") {
			t.Fatalf("kubectl %s warned:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}

	yamlOut := render(t)
	out := kubectl(yamlOut, "apply", "--validate=strict", "-f", "-")
	for _, name := range []string{"99-kubens-master", "99-kubens-worker"} {
		if !strings.Contains(out, "machineconfig.machineconfiguration.openshift.io/"+name+" created") {
			t.Errorf("first apply did not create %s:\n%s", name, out)
		}
	}
	if out := kubectl(yamlOut, "apply", "--validate=strict", "-f", "-"); strings.Count(out, " unchanged") != 2 {
		t.Errorf("second apply changed something:\n%s", out)
	}
	// kubectl diff exits 0 only when the live objects equal the rendered ones.
	kubectl(yamlOut, "diff", "-f", "-")

	// The JSON List and the disabled variant, through server-side apply with
	// strict validation, as enable does.
	kubectl(render(t, "-o", "json", "--role", "arbiter"), "apply", "--server-side", "--validate=strict", "--field-manager=render-test", "-f", "-")
	out = kubectl(render(t, "--disabled", "--role", "worker"), "apply", "--server-side", "--force-conflicts", "--validate=strict", "-f", "-")
	if !strings.Contains(out, "99-kubens-worker serverside-applied") {
		t.Errorf("disabled variant not applied:\n%s", out)
	}

	mcfg := mcfgclient.NewForConfigOrDie(cp.RESTConfig())
	for name, wantEnabled := range map[string]bool{"99-kubens-master": true, "99-kubens-worker": false, "99-kubens-arbiter": true} {
		mc, err := mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !manifests.IsManaged(mc) {
			t.Errorf("%s lost the marker label: %v", name, mc.Labels)
		}
		if err := manifests.Validate(mc); err != nil {
			t.Errorf("%s as stored: %v", name, err)
		}
		enabled, found, err := manifests.UnitEnabled(mc.Spec.Config.Raw, manifests.UnitName)
		if err != nil || !found || enabled != wantEnabled {
			t.Errorf("%s as stored: UnitEnabled = %v, %v, %v; want %v, true, nil", name, enabled, found, err, wantEnabled)
		}
	}
}
