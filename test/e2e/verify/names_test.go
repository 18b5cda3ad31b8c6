package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/e2e/e2eutil"
	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// klogLine matches a raw klog line such as
// "I1129 20:17:07.744715   28494 warnings.go:107] ...".
var klogLine = regexp.MustCompile(`(?m)^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+ +\d+ \S+:\d+\] `)

// TestVerifyLongAndDottedNodeNames: FQDN node names, as on bare metal and
// in clouds. A long one whose first 45 characters end on a dot used to give
// the pod name "verify-....-HASH" with ".-" in it, which the API server
// refuses (Unknown(PodCreateFailed)); a dotted one that fits made the API
// server warn, and the warning reached stderr as a raw klog line. The nodes
// are Node objects on a real API server; the agent of bench_test.go plays
// their kubelets.
func TestVerifyLongAndDottedNodeNames(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := controlplane.Start(ctx, controlplane.Options{Logf: t.Logf})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer cp.Stop(context.Background())
	defer cancel() // the agent first, then the control plane

	// 44 characters, then a dot: the old cut for "verify-" kept 45.
	long := "worker-ran-du-sno-0001-" + strings.Repeat("x", 44-len("worker-ran-du-sno-0001-")) + ".rack12.lab.telco.example.com"
	dotted := "ip-10-0-1-2.ec2.internal"
	if len(long) < 66 || long[44] != '.' || len(validation.IsDNS1123Subdomain(long)) > 0 {
		t.Fatalf("bad test node name %q (%d chars)", long, len(long))
	}
	nodes := map[string][]string{long: {"worker"}, dotted: {"worker"}, "worker-0": {"worker"}}
	if err := e2eutil.CreateNodes(ctx, cp.RESTConfig(), nodes, true); err != nil {
		t.Fatal(err)
	}
	var delay atomic.Int64
	delay.Store(int64(200 * time.Millisecond))
	startAgent(ctx, t, cp.RESTConfig(), &delay)

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(pluginBinary(t), "verify", "--all-nodes", "--image", "registry.example.com/tools:latest", "-o", "json",
		"--timeout", "30s", "--kubeconfig", cp.KubeconfigPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("verify: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	var rep vfy.VerifyReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("no report: %v", err)
	}
	got := byNode(&rep)
	for name := range nodes {
		n, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not in the report", name)
		case n.Reason == vfy.ReasonCreateFailed:
			t.Errorf("%s (%d chars): Unknown(%s): %s", name, len(name), n.Reason, n.Message)
		case n.State != vfy.Encapsulated:
			t.Errorf("%s: %s(%s): %s, want Encapsulated", name, n.State, n.Reason, n.Message)
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if m := klogLine.FindAllString(stderr.String(), -1); len(m) > 0 || strings.Contains(stderr.String(), "warnings.go") {
		t.Errorf("raw klog lines on stderr (API warnings must be printed as \"Warning: ...\"): %q", m)
	}
	for _, name := range []string{long, dotted} {
		if p := vfy.PodName("verify-", name); len(validation.IsDNS1123Label(p)) > 0 {
			t.Errorf("%s -> pod %q is not a DNS label", name, p)
		}
	}
}
