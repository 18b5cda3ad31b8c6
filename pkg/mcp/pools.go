// Package mcp holds the MachineConfigPool logic of oc-kubens: which pools a
// MachineConfig reaches, which pool a node belongs to, the status of pools and
// nodes derived from the objects, and the two-phase wait. Everything here works
// on objects handed in by the caller, so it can be table-tested without a
// cluster; the only API traffic is in watch.go.
package mcp

import (
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Well-known names used by the Machine Config Operator.
const (
	annotationPrefix = "machineconfiguration.openshift.io/"
	// CurrentConfigAnnotation names the rendered config a node runs.
	CurrentConfigAnnotation = annotationPrefix + "currentConfig"
	// DesiredConfigAnnotation names the rendered config a node is moving to.
	DesiredConfigAnnotation = annotationPrefix + "desiredConfig"
	// StateAnnotation is the Machine Config Daemon state: Done, Working,
	// Degraded, Unreconcilable. It never says "Rebooting": through the
	// reboot it stays Working, with PostConfigActionAnnotation=Rebooting.
	StateAnnotation = annotationPrefix + "state"
	// ReasonAnnotation explains a Degraded or Unreconcilable state.
	ReasonAnnotation = annotationPrefix + "reason"

	MasterPool  = "master"
	WorkerPool  = "worker"
	ArbiterPool = "arbiter"
)

// selectorFor turns a pool's label selector into a labels.Selector. A nil or
// empty selector matches nothing, as in the MCO: a pool that selects
// everything by accident must not capture every MC or node.
func selectorFor(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		return labels.Nothing(), nil
	}
	return sel, nil
}

// PoolSelectsMC tells whether the pool's machineConfigSelector matches the MC.
func PoolSelectsMC(pool *mcfgv1.MachineConfigPool, mc *mcfgv1.MachineConfig) (bool, error) {
	sel, err := selectorFor(pool.Spec.MachineConfigSelector)
	if err != nil {
		return false, fmt.Errorf("pool %s: invalid machineConfigSelector: %w", pool.Name, err)
	}
	return sel.Matches(labels.Set(mc.Labels)), nil
}

// Reach maps each pool name to the MCs (by name, sorted) it selects among mcs.
// Pools that select none of them are left out. Every MC must reach at least
// one pool: an MC no pool selects would sit there doing nothing, so that is an
// error naming the role and the pools that exist.
func Reach(pools []mcfgv1.MachineConfigPool, mcs []*mcfgv1.MachineConfig) (map[string][]string, error) {
	out := map[string][]string{}
	for _, mc := range mcs {
		reached := false
		for i := range pools {
			ok, err := PoolSelectsMC(&pools[i], mc)
			if err != nil {
				return nil, err
			}
			if ok {
				out[pools[i].Name] = append(out[pools[i].Name], mc.Name)
				reached = true
			}
		}
		if !reached {
			return nil, &UnselectedError{MachineConfig: mc.Name, Role: mc.Labels[mcfgv1.MachineConfigRoleLabelKey], Pools: PoolNames(pools)}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out, nil
}

// PoolNames returns the sorted pool names.
func PoolNames(pools []mcfgv1.MachineConfigPool) []string {
	names := make([]string, 0, len(pools))
	for _, p := range pools {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

// PoolForNode returns the name of the pool a node belongs to, following the
// MCO's rules (pkg/controller/node GetPoolsForNode): a node the master pool
// selects is a master; otherwise a custom pool wins over worker (custom pools
// like infra select worker nodes too); two custom pools are an error. "" when
// no pool selects the node.
func PoolForNode(pools []mcfgv1.MachineConfigPool, node *corev1.Node) (string, error) {
	var matched []string
	for i := range pools {
		sel, err := selectorFor(pools[i].Spec.NodeSelector)
		if err != nil {
			return "", fmt.Errorf("pool %s: invalid nodeSelector: %w", pools[i].Name, err)
		}
		if sel.Matches(labels.Set(node.Labels)) {
			matched = append(matched, pools[i].Name)
		}
	}
	switch len(matched) {
	case 0:
		return "", nil
	case 1:
		return matched[0], nil
	}
	for _, name := range []string{MasterPool, ArbiterPool} {
		for _, m := range matched {
			if m == name {
				return m, nil
			}
		}
	}
	var custom []string
	for _, m := range matched {
		if m != WorkerPool {
			custom = append(custom, m)
		}
	}
	if len(custom) == 1 {
		return custom[0], nil
	}
	sort.Strings(custom)
	return "", fmt.Errorf("node %s is selected by more than one custom pool (%s); the MCO does not update it until that is fixed",
		node.Name, strings.Join(custom, ", "))
}

// IsRendered tells whether an MC is a rendered config written by the render
// controller (owned by a pool), not an input MC.
func IsRendered(mc *mcfgv1.MachineConfig) bool {
	for _, ref := range mc.OwnerReferences {
		if ref.Kind == "MachineConfigPool" {
			return true
		}
	}
	return strings.HasPrefix(mc.Name, "rendered-")
}

// MaxUnavailable resolves the pool's maxUnavailable against its machine count
// as the MCO does: default 1, percentages rounded down, never below 1.
func MaxUnavailable(pool *mcfgv1.MachineConfigPool, machines int) int {
	if pool.Spec.MaxUnavailable == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(pool.Spec.MaxUnavailable, machines, false)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// UnselectedError: no pool selects a MachineConfig (its role has no pool).
type UnselectedError struct {
	MachineConfig, Role string
	Pools               []string // every pool of the cluster
}

func (e *UnselectedError) Error() string {
	return fmt.Sprintf("no MachineConfigPool selects MachineConfig %s (role %q); pools on this cluster: %s", e.MachineConfig, e.Role, strings.Join(e.Pools, ", "))
}
