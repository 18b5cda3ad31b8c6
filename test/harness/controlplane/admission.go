package controlplane

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The Machine Config Operator ships a ValidatingAdmissionPolicy that makes
// every custom MachineConfigPool inherit from worker
// (manifests/machineconfigcontroller/custom-machine-config-pool-selector-
// validatingadmissionpolicy{,binding}.yaml). The control plane installs an
// equivalent one: same names, match constraints, failure policy, rule and
// message, the CEL written here.
const (
	// CustomPoolPolicyName is the policy's name on a real cluster.
	CustomPoolPolicyName = "custom-machine-config-pool-selector"
	// CustomPoolPolicyBindingName is its binding's name.
	CustomPoolPolicyBindingName = "custom-machine-config-pool-selector-binding"
	// CustomPoolPolicyMessage is what the apiserver answers a pool that
	// breaks the rule.
	CustomPoolPolicyMessage = "All custom MachineConfigPools must inherit from the worker pool and must have a machineConfigSelector that matches for a 'machineconfiguration.openshift.io/role: worker' label"
)

// customPoolExpression admits a pool whose machineConfigSelector either has
// matchLabels with role master, worker or arbiter (the built-in pools), or
// has a role requirement that takes worker configs: "In" listing worker, or
// "NotIn" not listing it. As in the MCO's policy, a selector with neither
// form, or matchLabels without a role and no matchExpressions, fails (the
// policy fails closed on evaluation errors).
const customPoolExpression = `
(
  has(object.spec.machineConfigSelector.matchLabels) &&
  object.spec.machineConfigSelector.matchLabels["machineconfiguration.openshift.io/role"] in ["master", "worker", "arbiter"]
)
||
(
  has(object.spec.machineConfigSelector.matchExpressions) &&
  object.spec.machineConfigSelector.matchExpressions.exists(r,
    r.key == "machineconfiguration.openshift.io/role" &&
    (
      (r.operator == "In" && "worker" in r.values) ||
      (r.operator == "NotIn" && !("worker" in r.values))
    )
  )
)`

// CustomPoolPolicy returns the ValidatingAdmissionPolicy and its binding.
func CustomPoolPolicy() (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	equivalent := admissionv1.Equivalent
	fail := admissionv1.Fail
	anyScope := admissionv1.AllScopes
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: CustomPoolPolicyName},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{
				MatchPolicy:       &equivalent,
				NamespaceSelector: &metav1.LabelSelector{},
				ObjectSelector:    &metav1.LabelSelector{},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
						Rule: admissionv1.Rule{
							APIGroups:   []string{"machineconfiguration.openshift.io"},
							APIVersions: []string{"v1"},
							Resources:   []string{"machineconfigpools"},
							Scope:       &anyScope,
						},
					},
				}},
			},
			Validations: []admissionv1.Validation{{
				Expression: customPoolExpression,
				Message:    CustomPoolPolicyMessage,
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: CustomPoolPolicyBindingName},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        CustomPoolPolicyName,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return policy, binding
}

// createAdmissionPolicies installs the custom-pool policy and its binding.
// The apiserver takes them up asynchronously (within about a second); the
// pools the harness creates pass the rule anyway.
func createAdmissionPolicies(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	policy, binding := CustomPoolPolicy()
	api := cs.AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ValidatingAdmissionPolicy %s: %w", policy.Name, err)
	}
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ValidatingAdmissionPolicyBinding %s: %w", binding.Name, err)
	}
	return nil
}
