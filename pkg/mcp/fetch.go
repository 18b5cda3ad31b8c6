package mcp

import (
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
)

// InputSelectors returns label selectors (in ListOptions.LabelSelector form)
// whose lists together hold every MachineConfig some pool selects, so the
// input configs can be listed without the rendered ones: on a long-lived
// cluster those number in the hundreds at 0.5-1 MB each, and they carry no
// labels, so no pool selector matches them.
//
// When every pool selects on one label with In or = (the built-in and
// custom pools: machineconfiguration.openshift.io/role), the values are
// folded into one selector, so that is one list whatever the pool count.
// Otherwise each distinct pool selector is its own list. Pools whose
// selector is empty select nothing (as in the MCO) and add none.
func InputSelectors(pools []mcfgv1.MachineConfigPool) ([]string, error) {
	var sels []labels.Selector
	for i := range pools {
		sel, err := selectorFor(pools[i].Spec.MachineConfigSelector)
		if err != nil {
			return nil, fmt.Errorf("pool %s: invalid machineConfigSelector: %w", pools[i].Name, err)
		}
		if reqs, selectable := sel.Requirements(); !selectable || len(reqs) == 0 {
			continue // labels.Nothing
		}
		sels = append(sels, sel)
	}
	if len(sels) == 0 {
		return nil, nil
	}
	if folded, ok := foldSingleKey(sels); ok {
		return []string{folded}, nil
	}
	seen := sets.New[string]()
	for _, sel := range sels {
		seen.Insert(sel.String())
	}
	return sets.List(seen), nil
}

// foldSingleKey folds selectors that are each one `key in (...)` or
// `key = v` requirement on the same key into one `key in (...)`.
func foldSingleKey(sels []labels.Selector) (string, bool) {
	key := ""
	values := sets.New[string]()
	for _, sel := range sels {
		reqs, _ := sel.Requirements()
		if len(reqs) != 1 {
			return "", false
		}
		r := reqs[0]
		switch r.Operator() {
		case selection.In, selection.Equals, selection.DoubleEquals:
		default:
			return "", false
		}
		if key != "" && r.Key() != key {
			return "", false
		}
		key = r.Key()
		values.Insert(r.Values().UnsortedList()...)
	}
	req, err := labels.NewRequirement(key, selection.In, sets.List(values))
	if err != nil {
		return "", false
	}
	return labels.NewSelector().Add(*req).String(), true
}

// ReferencedConfigs lists, sorted and once each, the rendered configs that
// pools (spec and status) and nodes (current and desired config
// annotations) name: the only rendered configs status reads.
func ReferencedConfigs(pools []mcfgv1.MachineConfigPool, nodes []corev1.Node) []string {
	names := sets.New[string]()
	for i := range pools {
		names.Insert(pools[i].Spec.Configuration.Name, pools[i].Status.Configuration.Name)
	}
	for i := range nodes {
		names.Insert(nodes[i].Annotations[CurrentConfigAnnotation], nodes[i].Annotations[DesiredConfigAnnotation])
	}
	names.Delete("")
	out := sets.List(names)
	sort.Strings(out)
	return out
}
