package mcosim

import (
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// selectorMatches is label selection where a nil or empty selector matches
// nothing, as the MCO treats it ("should match nothing, not everything").
func selectorMatches(sel *metav1.LabelSelector, set map[string]string) (bool, error) {
	if sel == nil {
		return false, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, fmt.Errorf("invalid label selector: %w", err)
	}
	if s.Empty() {
		return false, nil
	}
	return s.Matches(labels.Set(set)), nil
}

// configsForPool returns the non-rendered MachineConfigs a pool's
// machineConfigSelector selects, by name.
func configsForPool(pool *mcfgv1.MachineConfigPool, mcs []*mcfgv1.MachineConfig) ([]*mcfgv1.MachineConfig, error) {
	var out []*mcfgv1.MachineConfig
	for _, mc := range mcs {
		ok, err := selectorMatches(pool.Spec.MachineConfigSelector, mc.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, mc)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// poolForNode resolves the one pool a node belongs to, the way the MCO's
// getPrimaryPoolForNode does: master wins over everything, a custom pool wins
// over worker, and a node in two custom pools belongs to none (an error).
func poolForNode(node *corev1.Node, pools []*mcfgv1.MachineConfigPool) (*mcfgv1.MachineConfigPool, error) {
	var matched []*mcfgv1.MachineConfigPool
	for _, p := range pools {
		ok, err := selectorMatches(p.Spec.NodeSelector, node.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		return nil, nil
	}
	if len(matched) == 1 {
		return matched[0], nil
	}
	var custom []*mcfgv1.MachineConfigPool
	for _, p := range matched {
		if p.Name == masterRole {
			return p, nil
		}
		if p.Name != workerRole {
			custom = append(custom, p)
		}
	}
	if len(custom) == 1 {
		return custom[0], nil
	}
	names := make([]string, 0, len(custom))
	for _, p := range custom {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("node %s belongs to %d custom roles %v, cannot proceed with this Node", node.Name, len(custom), names)
}

// nodesByPool groups nodes by their primary pool; nodes in no pool (or in a
// conflict) are left out, as the MCO leaves them unmanaged.
func nodesByPool(nodes []*corev1.Node, pools []*mcfgv1.MachineConfigPool) map[string][]*corev1.Node {
	out := map[string][]*corev1.Node{}
	for _, n := range nodes {
		p, err := poolForNode(n, pools)
		if err != nil || p == nil {
			continue
		}
		out[p.Name] = append(out[p.Name], n)
	}
	for _, ns := range out {
		sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	}
	return out
}

// maxUnavailable is how many nodes of a pool may update at once: 1 for the
// arbiter pool whatever its spec says; else the pool's spec.maxUnavailable
// (an int or a percentage of the pool's nodes, rounded down), 1 when unset,
// and never less than 1.
func maxUnavailable(pool *mcfgv1.MachineConfigPool, nodeCount int) (int, error) {
	if pool.Name == arbiterRole {
		return 1, nil
	}
	v := intstr.FromInt32(1)
	if pool.Spec.MaxUnavailable != nil {
		v = *pool.Spec.MaxUnavailable
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, nodeCount, false)
	if err != nil {
		return 0, fmt.Errorf("pool %s: invalid maxUnavailable %q: %w", pool.Name, v.String(), err)
	}
	if n < 1 {
		n = 1
	}
	return n, nil
}
