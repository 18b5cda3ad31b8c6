package mcosim

import (
	"context"
	"fmt"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Drain goes as in the MCO: the daemon asks through the desiredDrain
// annotation ("drain-<config>" before an update, "uncordon-<config>" after
// it) and waits until lastAppliedDrain says the same; the drain controller
// cordons and drains, or uncordons, then copies desiredDrain into
// lastAppliedDrain.

const (
	// drainTimeout and uncordonTimeout are performDrain's and
	// completeUpdate's bounds on the wait for the drain controller.
	drainTimeout    = time.Hour
	uncordonTimeout = 10 * time.Minute
	drainPoll       = 100 * time.Millisecond // the MCD polls every 10s
)

// clusterTopology is the controlPlaneTopology the installer writes into the
// Infrastructure object (determineTopologies): SingleReplica with one
// control-plane node, DualReplica with two (HighlyAvailableArbiter when there
// are arbiter nodes too), else HighlyAvailable. The simulator takes it from
// the nodes present at Start.
func clusterTopology(nodes []*corev1.Node) configv1.TopologyMode {
	control, arbiters := 0, 0
	for _, n := range nodes {
		_, master := n.Labels["node-role.kubernetes.io/master"]
		_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
		if master || cp {
			control++
		}
		if _, ok := n.Labels["node-role.kubernetes.io/"+arbiterRole]; ok {
			arbiters++
		}
	}
	switch {
	case control == 1:
		return configv1.SingleReplicaTopologyMode
	case control == 2 && arbiters > 0:
		return configv1.HighlyAvailableArbiterMode
	case control == 2:
		return configv1.DualReplicaTopologyMode
	default:
		return configv1.HighlyAvailableTopologyMode
	}
}

// drainRequired is the daemon's drainRequired with getControlPlaneTopology:
// no drain on a single-replica control plane (nowhere to move the pods),
// judged from the node's controlPlaneTopology annotation; a missing or
// unknown value counts as HighlyAvailable.
func drainRequired(n *corev1.Node) bool {
	return configv1.TopologyMode(n.Annotations[ControlPlaneTopologyAnnotation]) != configv1.SingleReplicaTopologyMode
}

// drainValue is the desiredDrain value for a verb and a rendered config.
func drainValue(verb, config string) string { return verb + "-" + config }

// drainRequest is the drain controller's reading of a node: the verb to
// act on, or "" when lastAppliedDrain already answers desiredDrain.
func drainRequest(n *corev1.Node) (string, error) {
	desired := n.Annotations[DesiredDrainAnnotation]
	if desired == n.Annotations[LastAppliedDrainAnnotation] {
		return "", nil
	}
	verb, _, _ := strings.Cut(desired, "-")
	switch verb {
	case drainVerbDrain, drainVerbUncordon:
		return verb, nil
	}
	return "", fmt.Errorf("node %s: non-recognized drain verb detected %s", n.Name, verb)
}

// syncDrain is the drain controller's syncNode: uncordon, or cordon and
// drain, then lastAppliedDrain=desiredDrain. The drain itself (evicting
// pods) is StepDelay of waiting: no pod is evicted.
func (m *MCO) syncDrain(ctx context.Context, name string) error {
	n, err := m.getNode(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	verb, err := drainRequest(n)
	if err != nil || verb == "" {
		return err
	}
	desired := n.Annotations[DesiredDrainAnnotation]
	switch verb {
	case drainVerbUncordon:
		m.opts.Logf("mcosim: drain controller: uncordoning node %s", name)
		if err := m.patchNode(ctx, name, nil, ptr(false)); err != nil {
			return err
		}
	case drainVerbDrain:
		m.opts.Logf("mcosim: drain controller: cordoning and draining node %s", name)
		if err := m.patchNode(ctx, name, nil, ptr(true)); err != nil {
			return err
		}
		if err := sleep(ctx, m.opts.StepDelay); err != nil {
			return err
		}
		if n, err = m.getNode(name); err != nil {
			return err
		}
		if !n.Spec.Unschedulable {
			// Uncordoned by someone else meanwhile: the node event
			// queues it again, and the drain starts over.
			return nil
		}
	}
	return m.patchNode(ctx, name, map[string]string{LastAppliedDrainAnnotation: desired}, nil)
}

// requestDrain is the daemon's side: desiredDrain=value (unless
// lastAppliedDrain says it is done already), then wait until the drain
// controller answers.
func (m *MCO) requestDrain(ctx context.Context, name, value string, timeout time.Duration) error {
	n, err := m.getNode(name)
	if err != nil {
		return err
	}
	if n.Annotations[LastAppliedDrainAnnotation] == value && n.Annotations[DesiredDrainAnnotation] == value {
		return nil
	}
	if n.Annotations[DesiredDrainAnnotation] != value {
		if err := m.patchNode(ctx, name, map[string]string{DesiredDrainAnnotation: value}, nil); err != nil {
			return fmt.Errorf("could not set drain annotation: %w", err)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		if n, err := m.getNode(name); err == nil && n.Annotations[LastAppliedDrainAnnotation] == n.Annotations[DesiredDrainAnnotation] {
			return nil
		}
		if time.Now().After(deadline) {
			verb, _, _ := strings.Cut(value, "-")
			if verb == drainVerbDrain {
				return fmt.Errorf("failed to drain node: %s after 1 hour. Please see machine-config-controller logs for more information", name)
			}
			return fmt.Errorf("failed to uncordon node: %s after 10 minutes. Please see machine-config-controller logs for more information", name)
		}
		if err := sleep(ctx, drainPoll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
