package mcosim

import (
	"fmt"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node predicates below follow the MCO's LayeredNodeState (without the
// image-based layering, which the simulator does not do).

// nodeReady is the MCO's IsNodeReady: no NotReady, disk pressure or network
// trouble, and schedulable. A node with no conditions at all (an object-only
// node) counts as ready, as it does in the MCO.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			if c.Status != corev1.ConditionTrue {
				return false
			}
		case corev1.NodeDiskPressure, corev1.NodeNetworkUnavailable:
			if c.Status != corev1.ConditionFalse {
				return false
			}
		}
	}
	return !n.Spec.Unschedulable
}

func nodeState(n *corev1.Node) string { return n.Annotations[StateAnnotation] }

// nodeDone: current == desired (both set) and the daemon says Done.
func nodeDone(n *corev1.Node) bool {
	cur, des := n.Annotations[CurrentConfigAnnotation], n.Annotations[DesiredConfigAnnotation]
	return cur != "" && des != "" && cur == des && nodeState(n) == StateDone
}

// nodeUpdated is getUpdatedMachines' test: done, at the pool's target config.
func nodeUpdated(n *corev1.Node, pool *mcfgv1.MachineConfigPool) bool {
	return nodeDone(n) && n.Annotations[DesiredConfigAnnotation] == pool.Spec.Configuration.Name
}

// nodeFailing is IsNodeMCDFailing: the daemon gave up on reaching desired.
func nodeFailing(n *corev1.Node) bool {
	if n.Annotations[CurrentConfigAnnotation] == n.Annotations[DesiredConfigAnnotation] {
		return false
	}
	s := nodeState(n)
	return s == StateDegraded || s == StateUnreconcilable
}

// nodeUnavailable is IsUnavailableForUpdate: not ready, or a daemon at work
// (or about to start) rather than done or failed.
func nodeUnavailable(n *corev1.Node) bool {
	if !nodeReady(n) {
		return true
	}
	if nodeDone(n) {
		return false
	}
	return !nodeFailing(n)
}

// nodeDegraded is getDegradedMachines' test.
func nodeDegraded(n *corev1.Node) bool {
	if n.Annotations[DesiredConfigAnnotation] == "" {
		return false
	}
	s := nodeState(n)
	return s == StateDegraded || s == StateUnreconcilable
}

func poolUpdateLine(pool *mcfgv1.MachineConfigPool) string {
	return "MachineConfig " + pool.Spec.Configuration.Name
}

// calculateStatus computes a pool's status from its nodes as the MCO's node
// controller does (pkg/controller/node/status.go, node-annotation counting):
// counts, observedGeneration, Updated/Updating/NodeDegraded/Degraded, and
// status.configuration following spec.configuration only once every node is
// updated and ready. RenderDegraded is the render controller's and is carried
// over from the pool as it is.
func calculateStatus(pool *mcfgv1.MachineConfigPool, nodes []*corev1.Node, now time.Time) mcfgv1.MachineConfigPoolStatus {
	machineCount := int32(len(nodes))
	var updated, ready, unavailable int32
	var degraded []*corev1.Node
	for _, n := range nodes {
		if nodeUpdated(n, pool) {
			updated++
			if nodeReady(n) {
				ready++
			}
		}
		if nodeUnavailable(n) {
			unavailable++
		}
		if nodeDegraded(n) {
			degraded = append(degraded, n)
		}
	}
	var degradedReasons []string
	for _, n := range degraded {
		if r := n.Annotations[ReasonAnnotation]; r != "" {
			degradedReasons = append(degradedReasons, fmt.Sprintf("Node %s is reporting: %q", n.Name, r))
		}
	}

	status := mcfgv1.MachineConfigPoolStatus{
		ObservedGeneration:      pool.Generation,
		MachineCount:            machineCount,
		UpdatedMachineCount:     updated,
		ReadyMachineCount:       ready,
		UnavailableMachineCount: unavailable,
		DegradedMachineCount:    int32(len(degraded)),
		CertExpirys:             []mcfgv1.CertExpiry{},
		Configuration:           *pool.Status.Configuration.DeepCopy(),
		Conditions:              append([]mcfgv1.MachineConfigPoolCondition{}, pool.Status.Conditions...),
	}
	if pool.Status.CertExpirys != nil {
		status.CertExpirys = pool.Status.CertExpirys
	}

	allUpdated := updated == machineCount && ready == machineCount && unavailable == 0
	if allUpdated {
		msg := "All nodes are updated with " + poolUpdateLine(pool)
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolUpdated, corev1.ConditionTrue, "", msg, now))
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionFalse, "", "", now))
		if status.Configuration.Name != pool.Spec.Configuration.Name ||
			!equality.Semantic.DeepEqual(status.Configuration.Source, pool.Spec.Configuration.Source) {
			status.Configuration = *pool.Spec.Configuration.DeepCopy()
		}
	} else {
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolUpdated, corev1.ConditionFalse, "", "", now))
		if pool.Spec.Paused {
			setCondition(&status, newCondition(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionFalse, "",
				"Pool is paused; will not update to "+poolUpdateLine(pool), now))
		} else {
			setCondition(&status, newCondition(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionTrue, "",
				"All nodes are updating to "+poolUpdateLine(pool), now))
		}
	}

	nodeDegradedMsg := ""
	if len(degraded) > 0 {
		c := newCondition(mcfgv1.MachineConfigPoolNodeDegraded, corev1.ConditionTrue,
			fmt.Sprintf("%d nodes are reporting degraded status on sync", len(degraded)),
			strings.Join(degradedReasons, ", "), now)
		nodeDegradedMsg = c.Message
		setCondition(&status, c)
	} else {
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolNodeDegraded, corev1.ConditionFalse, "", "", now))
	}

	renderDegraded := conditionTrue(pool.Status.Conditions, mcfgv1.MachineConfigPoolRenderDegraded)
	if len(degraded) > 0 || renderDegraded {
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionTrue, "", nodeDegradedMsg, now))
	} else {
		setCondition(&status, newCondition(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionFalse, "", "", now))
	}
	return status
}

func newCondition(t mcfgv1.MachineConfigPoolConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) mcfgv1.MachineConfigPoolCondition {
	return mcfgv1.MachineConfigPoolCondition{
		Type:               t,
		Status:             s,
		LastTransitionTime: metav1.NewTime(now),
		Reason:             reason,
		Message:            msg,
	}
}

// setCondition is SetMachineConfigPoolCondition: nothing changes when status,
// reason and message are the same; the transition time is kept while the
// status stays; a changed condition moves to the end of the list.
func setCondition(status *mcfgv1.MachineConfigPoolStatus, c mcfgv1.MachineConfigPoolCondition) {
	var cur *mcfgv1.MachineConfigPoolCondition
	for i := range status.Conditions {
		if status.Conditions[i].Type == c.Type {
			cur = &status.Conditions[i]
			break
		}
	}
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	out := make([]mcfgv1.MachineConfigPoolCondition, 0, len(status.Conditions)+1)
	for _, x := range status.Conditions {
		if x.Type != c.Type {
			out = append(out, x)
		}
	}
	status.Conditions = append(out, c)
}

func getCondition(conds []mcfgv1.MachineConfigPoolCondition, t mcfgv1.MachineConfigPoolConditionType) *mcfgv1.MachineConfigPoolCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func conditionTrue(conds []mcfgv1.MachineConfigPoolCondition, t mcfgv1.MachineConfigPoolConditionType) bool {
	c := getCondition(conds, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

func conditionFalse(conds []mcfgv1.MachineConfigPoolCondition, t mcfgv1.MachineConfigPoolConditionType) bool {
	c := getCondition(conds, t)
	return c != nil && c.Status == corev1.ConditionFalse
}
