package verify

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/internal/fakecluster"
)

// Unit tests of the engine under faults (the end-to-end ones, on real
// processes, are in test/e2e/verify/faults_test.go).

// fakeNodeWatch makes c serve a node list at resourceVersion 1 and the
// returned watch for the nodes, as an API server would to watchNodes.
func fakeNodeWatch(c *fake.Clientset) *watch.FakeWatcher {
	fw := watch.NewFake()
	c.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &corev1.NodeList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
	})
	c.PrependWatchReactor("nodes", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, fw, nil
	})
	return fw
}

// TestEngineNodeDeletedMidRun: a node deleted while its probe runs ends at
// once as Unknown(NodeDeleted); before, the run waited for the timeout
// (minutes) for a kubelet that no longer exists. The engine's clock never
// moves here, so no timeout can end the run.
func TestEngineNodeDeletedMidRun(t *testing.T) {
	c := fakecluster.New()
	fw := fakeNodeWatch(c)
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	seen := make(chan string, 16)
	done := startVerify(context.Background(), testEngine(c, clk), []corev1.Node{testNode("gone", true), testNode("ok", true)}, seen)
	pods := fakecluster.WaitPods(t, c, 2)
	setContainer(t, c, pods["verify-gone"], corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	waitSeen(t, seen, "gone/Running")
	reportOK(t, c, pods["verify-ok"])
	gone := testNode("gone", true)
	gone.ResourceVersion = "2"
	fw.Delete(&gone)

	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	got := byNode(out.Results)
	if r := got["gone"]; r.State != StateUnknown || r.Reason != ReasonNodeDeleted || !strings.Contains(r.Message, "the node was deleted") {
		t.Errorf("deleted node: %s/%s %q, want Unknown/%s", r.State, r.Reason, r.Message, ReasonNodeDeleted)
	}
	if r := got["ok"]; r.State != Encapsulated {
		t.Errorf("other node: %s/%s %q, want Encapsulated", r.State, r.Reason, r.Message)
	}
	if len(namespaces(t, c)) != 0 {
		t.Errorf("namespace left behind: %v", namespaces(t, c))
	}
}

// TestEngineNodeNotReadyMidRun: a node that goes NotReady after the run
// started times out as Unknown(NodeNotReady), not as a plain Timeout: the
// state at the start said nothing about it.
func TestEngineNodeNotReadyMidRun(t *testing.T) {
	c := fakecluster.New()
	fw := fakeNodeWatch(c)
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	seen := make(chan string, 16)
	done := startVerify(context.Background(), testEngine(c, clk), []corev1.Node{testNode("n1", true)}, seen)
	pods := fakecluster.WaitPods(t, c, 1)
	setContainer(t, c, pods["verify-n1"], corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	waitSeen(t, seen, "n1/Running")
	down := testNode("n1", false)
	down.ResourceVersion = "2"
	fw.Modify(&down)

	out, err := tickUntilDone(t, clk, done)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Results[0]; r.State != StateUnknown || r.Reason != ReasonNodeNotReady {
		t.Errorf("result %s/%s %q, want Unknown/%s", r.State, r.Reason, r.Message, ReasonNodeNotReady)
	}
}

// TestEngineCreateRetriedWhileAPIUnreachable: pod creations refused at the
// connection (the API server restarting) are tried again, and the node
// gets its result instead of Unknown(PodCreateFailed).
func TestEngineCreateRetriedWhileAPIUnreachable(t *testing.T) {
	c := fakecluster.New()
	var refused atomic.Int32
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refused.Add(1) > 2 {
			return false, nil, nil
		}
		// What client-go returns when nothing listens on the port.
		return true, nil, &url.Error{Op: "Post", URL: "https://127.0.0.1:6443/api/v1/namespaces/x/pods",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	})
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	done := startVerify(context.Background(), testEngine(c, clk), []corev1.Node{testNode("n1", true)}, nil)
	reportOK(t, c, fakecluster.WaitPods(t, c, 1)["verify-n1"])
	out, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Results[0]; r.State != Encapsulated {
		t.Errorf("result %s/%s %q, want Encapsulated after the API server came back", r.State, r.Reason, r.Message)
	}
	if n := refused.Load(); n != 3 {
		t.Errorf("%d pod creations, want 2 refused and 1 that passed", n)
	}
}

// TestDeleteNamespaceRetriedWhileAPIUnreachable: the cleanup at the end of
// a run outlasts an API server restart instead of leaving the namespace to
// the stale sweep.
func TestDeleteNamespaceRetriedWhileAPIUnreachable(t *testing.T) {
	c := fakecluster.New()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "oc-kubens-verify-x"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int32
	c.PrependReactor("delete", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		if tries.Add(1) > 1 {
			return false, nil, nil
		}
		return true, nil, &url.Error{Op: "Delete", URL: "https://127.0.0.1:6443/api/v1/namespaces/" + ns.Name,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	})
	if err := DeleteNamespace(c, ns.Name); err != nil {
		t.Fatalf("DeleteNamespace: %v", err)
	}
	if left := namespaces(t, c); len(left) != 0 || tries.Load() != 2 {
		t.Errorf("namespaces %v after %d tries, want none after 2", left, tries.Load())
	}
}

// TestEngineCreateGivesUpAfterOutage: an API server that stays away fails
// the creations after one timeout for the whole run, not one per node: the
// creators share the outage, so once it is older than the timeout every
// further creation fails at its first try.
func TestEngineCreateGivesUpAfterOutage(t *testing.T) {
	c := fakecluster.New()
	var tries atomic.Int32
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		tries.Add(1)
		return true, nil, &url.Error{Op: "Post", URL: "https://127.0.0.1:6443/api/v1/namespaces/x/pods",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	})
	var nodes []corev1.Node
	for i := range 40 {
		nodes = append(nodes, testNode(fmt.Sprintf("n%02d", i), true))
	}
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := testEngine(c, clk)
	e.Timeout = time.Second // the creations' retries use the real clock
	out, err := wait(t, startVerify(context.Background(), e, nodes, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Results {
		if r.Reason != ReasonCreateFailed || !strings.Contains(r.Message, "connection refused") {
			t.Errorf("%s: %s/%s %q, want Unknown/%s naming the refused connection", r.Node, r.State, r.Reason, r.Message, ReasonCreateFailed)
		}
	}
	// One retrying creation per creator at most, the rest one try each.
	if n := int(tries.Load()); n > creators*5+len(nodes) {
		t.Errorf("%d creation tries for %d nodes: the later nodes waited out an outage of their own", n, len(nodes))
	}
}
