package change

import (
	"context"
	"encoding/json"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/utils/ptr"
)

// FieldManager is the server-side apply field manager of everything
// oc-kubens writes.
const FieldManager = "oc-kubens"

// Operations a change had, as kubectl names them.
const (
	OpCreated    = "created"
	OpConfigured = "configured"
	OpUnchanged  = "unchanged"
	OpDeleted    = "deleted"
	OpGone       = "already gone"
	OpLeft       = "left as it is" // Foreign: never touched
)

// Result is what happened to one MachineConfig of a plan.
type Result struct {
	Change Change
	// Object is the server's answer (the object as applied, or as it was
	// when deleted), or what would be sent in a client dry run; its
	// apiVersion and kind are set, for printing.
	Object    *mcfgv1.MachineConfig
	Operation string
}

// Applier carries out plans.
type Applier struct {
	Client mcfgclient.Interface
	// DryRun: client sends nothing, server sends with dryRun=All.
	DryRun cmdutil.DryRunStrategy
}

// Apply makes every change of the plan, in order, and says what happened
// to each. It stops at the first failure (an *APIError), returning the
// results so far.
func (a *Applier) Apply(ctx context.Context, plan *Plan) ([]Result, error) {
	results := make([]Result, 0, len(plan.Changes))
	for _, ch := range plan.Changes {
		var r Result
		var err error
		switch ch.Action {
		case Unchanged:
			// The object as the server has it, not our local copy.
			r = Result{Object: ch.Have, Operation: OpUnchanged}
			if r.Object == nil {
				r.Object = ch.Want
			}
		case Foreign:
			r = Result{Object: ch.Have, Operation: OpLeft}
		case Delete:
			r, err = a.delete(ctx, ch.Have)
		default:
			r, err = a.apply(ctx, ch.Want, ch.Have)
		}
		if err != nil {
			return results, err
		}
		r.Change = ch
		if r.Object != nil {
			r.Object = r.Object.DeepCopy()
			r.Object.SetGroupVersionKind(mcfgv1.GroupVersion.WithKind("MachineConfig"))
		}
		results = append(results, r)
	}
	return results, nil
}

// apply sends one MC with server-side apply. The body holds only the
// fields we own, so other managers' fields are left alone; strict field
// validation makes the server refuse what it would otherwise drop.
func (a *Applier) apply(ctx context.Context, mc, have *mcfgv1.MachineConfig) (Result, error) {
	op := OpConfigured
	if have == nil {
		op = OpCreated
	}
	if a.DryRun == cmdutil.DryRunClient {
		return Result{Object: mc, Operation: op}, nil
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": mcfgv1.GroupVersion.String(),
		"kind":       "MachineConfig",
		"metadata":   map[string]any{"name": mc.Name, "labels": mc.Labels},
		"spec":       map[string]any{"config": json.RawMessage(mc.Spec.Config.Raw)},
	})
	if err != nil {
		return Result{}, err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: ptr.To(true)}
	if a.DryRun == cmdutil.DryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	got, err := a.Client.MachineconfigurationV1().MachineConfigs().Patch(ctx, mc.Name, types.ApplyPatchType, body, opts)
	if err != nil {
		return Result{}, &APIError{Verb: "apply", Name: mc.Name, Err: err}
	}
	if have != nil && have.ResourceVersion == got.ResourceVersion {
		op = OpUnchanged
	}
	return Result{Object: got, Operation: op}, nil
}

// delete deletes the object we looked at: the UID precondition makes sure
// it is not one somebody recreated under the same name meanwhile.
func (a *Applier) delete(ctx context.Context, mc *mcfgv1.MachineConfig) (Result, error) {
	if a.DryRun == cmdutil.DryRunClient {
		return Result{Object: mc, Operation: OpDeleted}, nil
	}
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &mc.UID}}
	if a.DryRun == cmdutil.DryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err := a.Client.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return Result{Object: mc, Operation: OpGone}, nil
	case err != nil:
		return Result{}, &APIError{Verb: "delete", Name: mc.Name, Err: err}
	}
	return Result{Object: mc, Operation: OpDeleted}, nil
}

// APIError is a failed apply or delete of one MachineConfig.
type APIError struct {
	Verb, Name string
	Err        error
}

func (e *APIError) Error() string { return e.Verb + " MachineConfig " + e.Name + ": " + e.Err.Error() }
func (e *APIError) Unwrap() error { return e.Err }

// CheckAccess asks the API server, before changing anything, whether the
// user may perform every verb on MachineConfigs: a plan changes several
// objects, and checking first means an under-privileged user changes none
// of them instead of some. A denial is an *AccessDeniedError; a failed
// review comes back as it is.
func CheckAccess(ctx context.Context, kube kubernetes.Interface, verbs []string) error {
	var denied []string
	for _, verb := range verbs {
		r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: mcfgv1.GroupName, Resource: "machineconfigs", Verb: verb,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !r.Status.Allowed {
			denied = append(denied, verb)
		}
	}
	if len(denied) > 0 {
		return &AccessDeniedError{Verbs: denied}
	}
	return nil
}

// AccessDeniedError: the user may not perform Verbs on MachineConfigs.
type AccessDeniedError struct {
	Verbs []string
}

func (e *AccessDeniedError) Error() string {
	return "not allowed to " + strings.Join(e.Verbs, "/") + " MachineConfigs"
}
