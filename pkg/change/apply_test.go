package change

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgfake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/oc-kubens/oc-kubens/internal/mcfixture"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// enablePlan is the enable plan for a cluster with a master and a worker
// pool and the given MachineConfigs.
func enablePlan(t *testing.T, mcs ...mcfgv1.MachineConfig) *Plan {
	t.Helper()
	snap := mcp.Snapshot{Pools: []mcfgv1.MachineConfigPool{mcfixture.Pool("master", "master"), mcfixture.Pool("worker", "worker")}, MachineConfigs: mcs}
	p, err := PlanEnable(snap, EnableRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writes are the create, patch and delete actions a fake clientset saw.
func writes(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		switch a.GetVerb() {
		case "create", "patch", "delete":
			out = append(out, a.GetVerb())
		}
	}
	return out
}

func TestApplyDryRunAndOperations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		dryRun cmdutil.DryRunStrategy
		// wantWrites are the verbs sent; wantOps the operations reported.
		wantWrites []string
		wantOps    []string
		wantDryRun bool
	}{
		{"client dry run sends nothing", cmdutil.DryRunClient, nil, []string{OpCreated, OpCreated}, false},
		{"server dry run sends with dryRun=All", cmdutil.DryRunServer, []string{"patch", "patch"}, []string{OpCreated, OpCreated}, true},
		{"for real", cmdutil.DryRunNone, []string{"patch", "patch"}, []string{OpCreated, OpCreated}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := mcfgfake.NewClientset()
			sawDryRun := false
			client.PrependReactor("patch", "machineconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if opts := a.(k8stesting.PatchActionImpl).PatchOptions; len(opts.DryRun) > 0 {
					sawDryRun = true
				}
				return false, nil, nil
			})
			results, err := (&Applier{Client: client, DryRun: tc.dryRun}).Apply(ctx, enablePlan(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := writes(client.Actions()); len(got) != len(tc.wantWrites) {
				t.Errorf("writes %v, want %v", got, tc.wantWrites)
			}
			if sawDryRun != tc.wantDryRun {
				t.Errorf("dryRun sent: %v, want %v", sawDryRun, tc.wantDryRun)
			}
			for i, r := range results {
				if r.Operation != tc.wantOps[i] || r.Object.Kind != "MachineConfig" || r.Object.APIVersion != mcfgv1.GroupVersion.String() {
					t.Errorf("result %d: %s %s/%s", i, r.Operation, r.Object.APIVersion, r.Object.Kind)
				}
			}
		})
	}
}

// Applying the plan a second time, against what the first apply made,
// changes nothing and sends nothing.
func TestApplyIsIdempotent(t *testing.T) {
	ctx := context.Background()
	client := mcfgfake.NewClientset()
	if _, err := (&Applier{Client: client}).Apply(ctx, enablePlan(t)); err != nil {
		t.Fatal(err)
	}
	list, err := client.MachineconfigurationV1().MachineConfigs().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("after apply: %v %v", list, err)
	}
	again := enablePlan(t, list.Items...)
	if again.SendsAnything() {
		t.Fatalf("second plan sends %+v", again.Changes)
	}
	client.ClearActions()
	results, err := (&Applier{Client: client}).Apply(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(client.Actions()); len(w) != 0 {
		t.Errorf("second apply wrote %v", w)
	}
	for _, r := range results {
		if r.Operation != OpUnchanged {
			t.Errorf("%s: %s, want unchanged", r.Change.Name, r.Operation)
		}
	}
}

func TestApplyAndDeleteErrors(t *testing.T) {
	ctx := context.Background()
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: mcfgv1.GroupName, Resource: "machineconfigs"}, "99-kubens-master", errors.New("no"))
	client := mcfgfake.NewClientset()
	client.PrependReactor("patch", "machineconfigs", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, forbidden })
	results, err := (&Applier{Client: client}).Apply(ctx, enablePlan(t))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Verb != "apply" || apiErr.Name != "99-kubens-master" || !apierrors.IsForbidden(err) || len(results) != 0 {
		t.Fatalf("forbidden apply: %v (%d results)", err, len(results))
	}

	// Deleting: a config that is already gone is no error; the UID of the
	// object we planned from is sent as a precondition.
	ours := mcfixture.Managed(mcfixture.MC("99-kubens-worker", "worker", nil))
	ours.UID = "uid-1"
	plan := &Plan{Verb: VerbDisable, Changes: []Change{{Name: ours.Name, Action: Delete, Have: &ours}}}
	client = mcfgfake.NewClientset()
	var sentUID string
	client.PrependReactor("delete", "machineconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if p := a.(k8stesting.DeleteActionImpl).DeleteOptions.Preconditions; p != nil && p.UID != nil {
			sentUID = string(*p.UID)
		}
		return false, nil, nil
	})
	results, err = (&Applier{Client: client}).Apply(ctx, plan)
	if err != nil || results[0].Operation != OpGone || sentUID != "uid-1" {
		t.Fatalf("delete of a gone config: %v %+v, uid %q", err, results, sentUID)
	}
}

func TestCheckAccess(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset()
	kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Verb == "patch"
		return true, r, nil
	})
	if err := CheckAccess(ctx, kube, []string{"patch"}); err != nil {
		t.Fatalf("patch allowed: %v", err)
	}
	var denied *AccessDeniedError
	if err := CheckAccess(ctx, kube, enablePlan(t).RequiredVerbs()); !errors.As(err, &denied) || len(denied.Verbs) != 1 || denied.Verbs[0] != "create" {
		t.Fatalf("create denied: %v", err)
	}
}

// An API server that is away for a moment (restarting) does not leave a
// plan half applied: each write is retried while it fails for a passing
// reason, and an answer (Forbidden above) is not retried.
func TestApplyRetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	client := mcfgfake.NewClientset()
	failures := map[string]int{}
	client.PrependReactor("patch", "machineconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.PatchActionImpl).Name
		// The second MC of the plan meets the restart: refused, then
		// unavailable while the server starts, then it lands.
		if name == "99-kubens-worker" && failures[name] < 2 {
			failures[name]++
			if failures[name] == 1 {
				return true, nil, syscall.ECONNREFUSED
			}
			return true, nil, apierrors.NewServiceUnavailable("starting")
		}
		return false, nil, nil
	})
	fast := &wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}
	results, err := (&Applier{Client: client, Backoff: fast}).Apply(ctx, enablePlan(t))
	if err != nil || len(results) != 2 {
		t.Fatalf("apply through a restart: %v, %d results", err, len(results))
	}
	if got := writes(client.Actions()); len(got) != 4 {
		t.Errorf("writes %v, want 4 patches (one retried twice)", got)
	}

	// An API server that does not come back: the error says which configs
	// of the plan went in before, so the caller can say the change is
	// incomplete.
	client = mcfgfake.NewClientset()
	client.PrependReactor("patch", "machineconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchActionImpl).Name == "99-kubens-worker" {
			return true, nil, syscall.ECONNREFUSED
		}
		return false, nil, nil
	})
	_, err = (&Applier{Client: client, Backoff: fast}).Apply(ctx, enablePlan(t))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Name != "99-kubens-worker" || len(apiErr.Done) != 1 || apiErr.Done[0] != "99-kubens-master" {
		t.Fatalf("apply with the API server gone: %v (%+v)", err, apiErr)
	}
	if n := len(writes(client.Actions())); n != 1+fast.Steps {
		t.Errorf("%d writes, want 1 + %d tries", n, fast.Steps)
	}
}

// A config somebody else created between the plan and the apply is not
// taken over: a create is applied without force, and the conflict says
// what happened. Our own updates still take over fields with force.
func TestApplyCreateDoesNotForce(t *testing.T) {
	ctx := context.Background()
	client := mcfgfake.NewClientset()
	var forced []bool
	client.PrependReactor("patch", "machineconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.PatchActionImpl).PatchOptions
		forced = append(forced, opts.Force != nil && *opts.Force)
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: mcfgv1.GroupName, Resource: "machineconfigs"}, "99-kubens-master", errors.New(`Apply failed with 1 conflict: conflict with "kubectl-edit"`))
	})
	_, err := (&Applier{Client: client}).Apply(ctx, enablePlan(t))
	if err == nil || !strings.Contains(err.Error(), "created by someone else after this command read the cluster") || !apierrors.IsConflict(err) {
		t.Fatalf("create conflict: %v", err)
	}
	if len(forced) != 1 || forced[0] {
		t.Fatalf("create sent force=%v, want one unforced apply", forced)
	}
	forced = nil
	old := mcfixture.Managed(mcfixture.MC("99-kubens-master", "master", nil))
	(&Applier{Client: client}).Apply(ctx, enablePlan(t, old))
	if len(forced) == 0 || !forced[0] {
		t.Fatalf("update of our own config sent force=%v, want force", forced)
	}
}
