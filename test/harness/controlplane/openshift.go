package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

const (
	// OpenShiftAPIModule is the module the CRD manifests are read from, at
	// the version pinned in the repository's go.mod.
	OpenShiftAPIModule = "github.com/openshift/api"

	crdDir = "machineconfiguration/v1/zz_generated.crd-manifests"

	// RoleLabel selects MachineConfigs by role (as pkg/manifests.RoleLabel).
	RoleLabel = "machineconfiguration.openshift.io/role"
	// NodeRoleLabelPrefix + role is the node label a pool's nodeSelector uses.
	NodeRoleLabelPrefix = "node-role.kubernetes.io/"
	// BuiltInLabel marks the pools the Machine Config Operator creates itself.
	BuiltInLabel = "machineconfiguration.openshift.io/mco-built-in"
	// PoolLabelPrefix + pool name is the label the operator puts on its pools.
	PoolLabelPrefix = "pools.operator.machineconfiguration.openshift.io/"
	// RequiredForUpgradeLabel is on the master pool only.
	RequiredForUpgradeLabel = "operator.machineconfiguration.openshift.io/required-for-upgrade"
)

// CRDFiles are the CRD manifests installed, relative to the module. The
// MachineConfigPool manifest is the variant for self-managed clusters (the
// other variants are for HyperShift hosted control planes). The
// MachineConfiguration (operator.openshift.io/v1) is the Default feature
// set's, as on a 4.17+ cluster: it carries the node disruption policy.
var CRDFiles = []string{
	crdDir + "/0000_80_machine-config_01_machineconfigs.crd.yaml",
	crdDir + "/0000_80_machine-config_01_machineconfigpools-SelfManagedHA.crd.yaml",
	operatorCRDDir + "/0000_80_machine-config_01_machineconfigurations-Default.crd.yaml",
}

// operatorCRDDir holds the operator.openshift.io CRDs.
const operatorCRDDir = "operator/v1/zz_generated.crd-manifests"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Pool is a MachineConfigPool to create besides master and worker.
type Pool struct {
	Name string
	// Roles are the MachineConfig roles the pool selects. Default: [Name].
	// Several roles select with the In operator, as custom pools are
	// documented (an infra pool takes the worker and the infra configs).
	// The cluster's admission policy (CustomPoolPolicy) refuses a custom
	// pool whose roles leave out worker.
	Roles []string
	// NodeSelector defaults to {"node-role.kubernetes.io/<Name>": ""}.
	NodeSelector map[string]string
	// Labels of the pool object. Custom pools have none by default.
	Labels map[string]string
	// MaxUnavailable, unset by default as on a fresh cluster (the operator
	// then updates one node at a time).
	MaxUnavailable *intstr.IntOrString
}

// BuiltInPools are the pools a fresh OpenShift cluster has, shaped as the
// Machine Config Operator creates them (its manifests/*.machineconfigpool.yaml):
// one role each, node-role node selector, the built-in and operator labels,
// no maxUnavailable (meaning 1) and not paused.
func BuiltInPools() []Pool {
	return []Pool{
		{Name: "master", Labels: map[string]string{
			BuiltInLabel: "", PoolLabelPrefix + "master": "", RequiredForUpgradeLabel: "",
		}},
		{Name: "worker", Labels: map[string]string{
			BuiltInLabel: "", PoolLabelPrefix + "worker": "",
		}},
	}
}

// Object returns the MachineConfigPool for p.
func (p Pool) Object() *mcfgv1.MachineConfigPool {
	roles := p.Roles
	if len(roles) == 0 {
		roles = []string{p.Name}
	}
	mcSelector := &metav1.LabelSelector{}
	if len(roles) == 1 {
		mcSelector.MatchLabels = map[string]string{RoleLabel: roles[0]}
	} else {
		mcSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key: RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: append([]string(nil), roles...),
		}}
	}
	nodeSelector := p.NodeSelector
	if nodeSelector == nil {
		nodeSelector = map[string]string{NodeRoleLabelPrefix + p.Name: ""}
	}
	return &mcfgv1.MachineConfigPool{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: p.Labels},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: mcSelector,
			NodeSelector:          &metav1.LabelSelector{MatchLabels: nodeSelector},
			MaxUnavailable:        p.MaxUnavailable,
		},
	}
}

// readCRDs reads the CRD manifests from the openshift/api module folder.
func readCRDs(ctx context.Context, dir string) ([][]byte, error) {
	if dir == "" {
		var err error
		if dir, err = OpenShiftAPIDir(ctx); err != nil {
			return nil, err
		}
	}
	var out [][]byte
	for _, f := range CRDFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("reading the MachineConfig CRDs from %s: %w (run `go mod download` in the repository)", OpenShiftAPIModule, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// OpenShiftAPIDir is the folder of the openshift/api module the repository
// pins, from `go list -m` in the repository root (downloading it if needed).
func OpenShiftAPIDir(ctx context.Context) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", OpenShiftAPIModule)
	cmd.Dir = root
	// The plugin's module, whatever the caller's GOFLAGS/GOWORK say.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("finding %s with `go list -m` in %s: %v %s", OpenShiftAPIModule, root, err, msg)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("%s is not downloaded: run `go mod download` in %s", OpenShiftAPIModule, root)
	}
	return dir, nil
}

// createCRDs creates the CRDs as soon as the apiserver takes them, which
// is well before /readyz (the rest of the apiserver's start-up then overlaps
// the CRDs' establishment). It returns the CRD names.
func createCRDs(ctx context.Context, cfg *rest.Config, manifests [][]byte) ([]string, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range manifests {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(m, &obj.Object); err != nil {
			return nil, fmt.Errorf("decoding CRD manifest: %w", err)
		}
		var lastErr error
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			_, lastErr = dyn.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{})
			switch {
			case lastErr == nil, apierrors.IsAlreadyExists(lastErr):
				// AlreadyExists: an earlier attempt went through after all.
				return true, nil
			case apierrors.IsInvalid(lastErr), apierrors.IsBadRequest(lastErr), apierrors.IsForbidden(lastErr):
				return false, lastErr
			default:
				// Not serving yet (refused, 503, 404 while the API group registers).
				return false, nil
			}
		})
		if err != nil {
			return nil, fmt.Errorf("creating CRD %s: %w (last error: %v)", obj.GetName(), err, lastErr)
		}
		names = append(names, obj.GetName())
	}
	return names, nil
}

// waitCRDsEstablished waits until each CRD is Established and returns the
// latest moment one became so.
func (cp *ControlPlane) waitCRDsEstablished(ctx context.Context, names []string) (time.Time, error) {
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		return time.Time{}, err
	}
	var latest time.Time
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			at, ok := crdEstablished(crd)
			if ok && at.After(latest) {
				latest = at
			}
			return ok, nil
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("CRD %s not Established: %w", name, err)
		}
	}
	return latest, nil
}

// crdEstablished reports whether the CRD is Established, and since when
// (to the second, as stored).
func crdEstablished(crd *unstructured.Unstructured) (time.Time, bool) {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			at, _ := time.Parse(time.RFC3339, fmt.Sprint(m["lastTransitionTime"]))
			return at, true
		}
	}
	return time.Time{}, false
}

// crdCreateHold is how long after a CRD's Established time the apiserver
// holds every create of it (it sleeps 2s, for HA apiservers to catch up).
// Creating after that is up to 2s faster than creating straight away.
const crdCreateHold = 2*time.Second + 100*time.Millisecond

// createPools creates master, worker and the extra pools. Right after a CRD
// is Established its endpoint can still answer 404 for a moment: retry.
// (The apiserver also holds the first create of a CRD established less than
// 2s ago for 2s, on purpose; that wait overlaps the controller manager's.)
func (cp *ControlPlane) createPools(ctx context.Context, extra []Pool) error {
	mc, err := mcfgclient.NewForConfig(cp.RESTConfig())
	if err != nil {
		return err
	}
	for _, p := range append(BuiltInPools(), extra...) {
		obj := p.Object()
		var lastErr error
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
			_, lastErr = mc.MachineconfigurationV1().MachineConfigPools().Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
			if apierrors.IsNotFound(lastErr) {
				return false, nil
			}
			return true, lastErr
		})
		if err != nil {
			return fmt.Errorf("creating pool %s: %w (last: %v)", p.Name, err, lastErr)
		}
	}
	return nil
}

// waitControllerManager waits for the default ServiceAccount of the default
// namespace: the first thing the controller manager creates, and what every
// pod needs.
func (cp *ControlPlane) waitControllerManager(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return err
	}
	cp.mu.Lock()
	var kcm *process
	for _, p := range cp.procs {
		if p.name == "kube-controller-manager" {
			kcm = p
		}
	}
	cp.mu.Unlock()
	err = waitFor(ctx, 60*time.Second, kcm, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return cp.startFailed(kcm, err)
	}
	return nil
}
