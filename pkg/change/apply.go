package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/internal/apiretry"
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
	// Backoff paces the retries of a write that failed for a passing
	// reason (see apiretry.Transient); nil: about half a minute (defaultBackoff).
	Backoff *wait.Backoff
}

// defaultBackoff retries a write for about half a minute: long enough for
// an API server that restarts (a control-plane upgrade), short enough to
// give a clear error when it does not come back.
func defaultBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: 10}
}

// write runs one API write, again while it fails for a transient reason
// (apiretry.Transient) and ctx lasts: a plan is applied whole, and an API
// server that restarts between two of its MachineConfigs must not leave the
// first applied and the second not. Every write here is idempotent (a
// server-side apply of the same body by the same field manager, a delete
// with a UID precondition), so a retry after a write that did land changes
// nothing.
func (a *Applier) write(ctx context.Context, f func() error) error {
	b := defaultBackoff()
	if a.Backoff != nil {
		b = *a.Backoff
	}
	return retry.OnError(b, func(err error) bool { return ctx.Err() == nil && apiretry.Transient(err) }, f)
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
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				for _, done := range results {
					if done.Operation == OpCreated || done.Operation == OpConfigured || done.Operation == OpDeleted {
						apiErr.Done = append(apiErr.Done, done.Change.Name)
					}
				}
			}
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
	// Force takes over fields of our own config that another manager
	// holds (`render | oc apply -f -` made it, or a hand edit). A create
	// has nobody to take fields from, unless somebody created the object
	// since the plan: then the conflict stops us from taking over (and
	// labelling as ours) a config that is not ours. Another oc-kubens
	// creating the same config at the same time is the same field manager:
	// no conflict, and the same content.
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: ptr.To(have != nil)}
	if a.DryRun == cmdutil.DryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var got *mcfgv1.MachineConfig
	err = a.write(ctx, func() (err error) {
		got, err = a.Client.MachineconfigurationV1().MachineConfigs().Patch(ctx, mc.Name, types.ApplyPatchType, body, opts)
		return err
	})
	if err != nil {
		if have == nil && apierrors.IsConflict(err) {
			err = fmt.Errorf("it was created by someone else after this command read the cluster, so it was left as it is (%w); run the command again to see the new plan", err)
		}
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
	err := a.write(ctx, func() error {
		return a.Client.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name, opts)
	})
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
	// Done names the MachineConfigs of the plan that were changed before
	// this one failed: a plan cut short is half applied until it is run
	// again.
	Done []string
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
