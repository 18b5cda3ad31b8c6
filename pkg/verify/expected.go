package verify

import (
	"context"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// CurrentConfigAnnotation names the rendered MachineConfig a node runs
// (one definition, pkg/mcp's).
const CurrentConfigAnnotation = mcp.CurrentConfigAnnotation

// ExpectedResolver finds the state each node should be in from the rendered
// MachineConfig named in its currentConfig annotation: the ground truth of
// what the node booted with, whatever MachineConfig names enabled the unit.
// The same config says which units the node runs through kubensenter. It
// fetches each rendered config once, whichever of For and WrappedFor asks
// first.
type ExpectedResolver struct {
	// Get fetches a MachineConfig by name.
	Get   func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error)
	cache map[string]resolved
}

// resolved is what one rendered config says.
type resolved struct {
	state   State
	wrapped []string
}

// For returns the expected state of node: "" when the node names no rendered
// config, StateUnknown when the config it names cannot be fetched or read.
func (x *ExpectedResolver) For(ctx context.Context, node *corev1.Node) State {
	return x.resolve(ctx, node).state
}

// WrappedFor returns the units the node's current rendered config wraps
// with kubensenter (manifests.WrappedUnits), sorted; none when the node
// names no config or it cannot be fetched or read.
func (x *ExpectedResolver) WrappedFor(ctx context.Context, node *corev1.Node) []string {
	return x.resolve(ctx, node).wrapped
}

func (x *ExpectedResolver) resolve(ctx context.Context, node *corev1.Node) resolved {
	name := node.Annotations[CurrentConfigAnnotation]
	if name == "" || x.Get == nil {
		return resolved{}
	}
	if x.cache == nil {
		x.cache = map[string]resolved{}
	}
	if r, ok := x.cache[name]; ok {
		return r
	}
	// A rendered config that is named but cannot be fetched (Forbidden,
	// garbage-collected) or read leaves the expectation Unknown, not "-":
	// the node is managed by the MCO, we just cannot tell what it runs.
	r := resolved{state: StateUnknown}
	if mc, err := x.Get(ctx, name); err == nil && len(mc.Spec.Config.Raw) > 0 {
		// Parsed once for both answers: a rendered config is up to 1 MB.
		if cfg, err := manifests.ReadConfig(mc.Spec.Config.Raw); err == nil {
			r.state = expectedFrom(cfg)
			if w := manifests.WrappedUnits(cfg); len(w) > 0 {
				r.wrapped = w
			}
		}
	}
	x.cache[name] = r
	return r
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
	return expectedFrom(cfg)
}

// expectedFrom is ExpectedFromConfig for a config already read.
func expectedFrom(cfg manifests.Config) State {
	if manifests.Unit(cfg, manifests.UnitName).EnabledOn() || manifests.ZTPPresent(cfg) {
		return Encapsulated
	}
	return NotEncapsulated
}
