package verify

import (
	"context"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// CurrentConfigAnnotation names the rendered MachineConfig a node runs.
const CurrentConfigAnnotation = "machineconfiguration.openshift.io/currentConfig"

// ExpectedResolver finds the state each node should be in from the rendered
// MachineConfig named in its currentConfig annotation: the ground truth of
// what the node booted with, whatever MachineConfig names enabled the unit.
// It fetches each rendered config once.
type ExpectedResolver struct {
	// Get fetches a MachineConfig by name.
	Get   func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error)
	cache map[string]State
}

// For returns the expected state of node: "" when the node names no rendered
// config, StateUnknown when the config it names cannot be fetched or read.
func (x *ExpectedResolver) For(ctx context.Context, node *corev1.Node) State {
	name := node.Annotations[CurrentConfigAnnotation]
	if name == "" || x.Get == nil {
		return ""
	}
	if x.cache == nil {
		x.cache = map[string]State{}
	}
	if s, ok := x.cache[name]; ok {
		return s
	}
	// A rendered config that is named but cannot be fetched (Forbidden,
	// garbage-collected) or read leaves the expectation Unknown, not "-":
	// the node is managed by the MCO, we just cannot tell what it runs.
	s := StateUnknown
	if mc, err := x.Get(ctx, name); err == nil {
		if e := ExpectedFromConfig(mc.Spec.Config.Raw); e != "" {
			s = e
		}
	}
	x.cache[name] = s
	return s
}

// ExpectedFromConfig reads a rendered Ignition config: Encapsulated when it
// enables kubens.service or carries the telco (ZTP / RAN DU)
// container-mount-namespace mechanism (manifests.ZTPPresent: by presence,
// not by an enabled flag), NotEncapsulated when neither, "" when it cannot
// be read.
func ExpectedFromConfig(raw []byte) State {
	if len(raw) == 0 {
		return ""
	}
	cfg, err := manifests.ReadConfig(raw)
	if err != nil {
		return ""
	}
	if manifests.Unit(cfg, manifests.UnitName).EnabledOn() || manifests.ZTPPresent(cfg) {
		return Encapsulated
	}
	return NotEncapsulated
}
