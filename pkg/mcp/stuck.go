package mcp

import (
	"fmt"
	"sort"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// DefaultStuckAfter is how long a node may be NotReady in the middle of its
// update before Wait names it (see WaitOptions.StuckAfter). A MachineConfig
// reboot makes a node NotReady for a few minutes at most: the node
// lifecycle controller marks it Unknown about 40 s after the kubelet stops,
// and the kubelet reports Ready again soon after the node has booted.
const DefaultStuckAfter = 10 * time.Minute

// StateWorking is the daemon state of a node whose update is under way. The
// Machine Config Daemon keeps it through the reboot: it never writes a
// "Rebooting" state, it sets PostConfigActionAnnotation=Rebooting instead,
// and clears that after the boot.
const StateWorking = "Working"

// PostConfigActionAnnotation is what the daemon does after writing a config
// ("Rebooting", or a service reload); cleared after the boot.
const PostConfigActionAnnotation = annotationPrefix + "post-config-action"

// NodeView is what Evaluate knows about the nodes, for the stuck-node
// check: the nodes (nil: not known yet), the time to judge them at, and
// how long a node may be NotReady during its update before it is named
// (zero or negative: no check).
type NodeView struct {
	Nodes      []corev1.Node
	Now        time.Time
	StuckAfter time.Duration
}

// StuckNode is a node of a pool being waited for that has been NotReady
// for longer than the threshold while it is in the middle of an update
// (desiredConfig differs from currentConfig, or the daemon says Working).
// The Machine Config Operator never gives up on such a node: it stays
// Working and NotReady, and its pool Updating, until it comes back; it is
// never marked Degraded. So without this, a wait would say nothing until
// its timeout.
type StuckNode struct {
	Name string
	Pool string
	// Config is the rendered config the node is updating to (its
	// desiredConfig annotation).
	Config string
	// State is the daemon state annotation (Working, in the real case).
	State string
	// Ready is the Ready condition's status (False or Unknown) and Reason
	// its reason (NodeStatusUnknown: the kubelet stopped posting status).
	Ready  corev1.ConditionStatus
	Reason string
	// Since is the Ready condition's lastTransitionTime; For is how long
	// before the evaluation that was.
	Since time.Time
	For   time.Duration
}

// String is the short form for progress lines and errors.
func (s StuckNode) String() string {
	return fmt.Sprintf("%s (NotReady for %s while updating to %s)", s.Name, duration.HumanDuration(s.For), s.Config)
}

// Warning is the whole message about the node: what is seen, and what to
// check.
func (s StuckNode) Warning() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s has been NotReady for %s while updating to %s (pool %s", s.Name, duration.HumanDuration(s.For), s.Config, s.Pool)
	if s.State != "" {
		fmt.Fprintf(&b, ", daemon state %s", s.State)
	}
	fmt.Fprintf(&b, ", Ready=%s", s.Ready)
	if s.Reason != "" {
		fmt.Fprintf(&b, " %s", s.Reason)
	}
	fmt.Fprintf(&b, "). The Machine Config Operator does not give up on it: pool %s stays Updating until the node is back. ", s.Pool)
	b.WriteString(s.Advice())
	b.WriteString(".")
	return b.String()
}

// Advice says what to look at for a node that does not come back.
func (s StuckNode) Advice() string {
	return fmt.Sprintf("Check its console or BMC (did it boot?), `oc describe node %s`, and the machine-config-daemon pod on it "+
		"(`oc -n openshift-machine-config-operator get pods -o wide --field-selector spec.nodeName=%s`, then `oc logs -c machine-config-daemon` on that pod)",
		s.Name, s.Name)
}

// notReadyWhileUpdating tells whether a node is in the middle of an update
// (desiredConfig set and different from currentConfig, or the daemon state
// Working) with its Ready condition False or Unknown, and returns that
// condition. A node without a Ready condition (never registered) is not
// judged.
func notReadyWhileUpdating(n *corev1.Node) (*corev1.NodeCondition, bool) {
	cur, des := n.Annotations[CurrentConfigAnnotation], n.Annotations[DesiredConfigAnnotation]
	updating := (des != "" && des != cur) || n.Annotations[StateAnnotation] == StateWorking
	if !updating {
		return nil, false
	}
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type == corev1.NodeReady {
			return c, c.Status == corev1.ConditionFalse || c.Status == corev1.ConditionUnknown
		}
	}
	return nil, false
}

// findStuck returns the nodes of pool that have been NotReady during their
// update for at least v.StuckAfter at v.Now, sorted by name, and the
// earliest time after v.Now at which another node of the pool crosses the
// threshold (zero: none will without a change). It is pure.
func findStuck(pools []mcfgv1.MachineConfigPool, pool string, v NodeView) ([]StuckNode, time.Time) {
	if v.StuckAfter <= 0 {
		return nil, time.Time{}
	}
	var out []StuckNode
	var next time.Time
	for i := range v.Nodes {
		n := &v.Nodes[i]
		c, ok := notReadyWhileUpdating(n)
		if !ok || c.LastTransitionTime.IsZero() {
			// A condition with no transition time cannot be timed.
			continue
		}
		if p, err := PoolForNode(pools, n); err != nil || p != pool {
			continue
		}
		since := c.LastTransitionTime.Time
		d := v.Now.Sub(since)
		if d < 0 {
			d = 0 // clock skew: the writer's clock is ahead of ours
		}
		if d < v.StuckAfter {
			at := v.Now.Add(v.StuckAfter - d)
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		cfg := n.Annotations[DesiredConfigAnnotation]
		if cfg == "" {
			cfg = "its desired config"
		}
		out = append(out, StuckNode{
			Name: n.Name, Pool: pool, Config: cfg, State: n.Annotations[StateAnnotation],
			Ready: c.Status, Reason: c.Reason, Since: since, For: d,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, next
}

// lightNode keeps what Wait reads of a node: its name and labels (for the
// pool), the MCO annotations and the Ready condition. Real nodes carry tens
// of kilobytes of images and addresses in their status.
func lightNode(n *corev1.Node) corev1.Node {
	out := corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
	}}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, annotationPrefix) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{c}
		}
	}
	return out
}
