package mcosim

import (
	"context"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/util/retry"
)

// syncDaemon plays the Machine Config Daemon of one node: firstboot at the
// pool's config, holding a degraded state, starting an update when the node
// controller changed desiredConfig, or finishing one left mid-way.
func (m *MCO) syncDaemon(ctx context.Context, name string) error {
	n, err := m.getNode(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pools, err := m.pools.List(labels.Everything())
	if err != nil {
		return err
	}
	pool, err := poolForNode(n, pools)
	if err != nil || pool == nil {
		return nil // unmanaged, as in the MCO
	}
	cur, des := n.Annotations[CurrentConfigAnnotation], n.Annotations[DesiredConfigAnnotation]
	state, reason := n.Annotations[StateAnnotation], n.Annotations[ReasonAnnotation]

	m.mu.Lock()
	held, busy, stopped := m.degraded[name], m.inflight[name], m.stopped
	m.mu.Unlock()
	if busy || stopped {
		return nil // the update under way looks again when it ends
	}

	if cur == "" {
		// A node joining: it boots with what the machine config server
		// serves for its pool, the pool's current target.
		if pool.Spec.Configuration.Name == "" {
			return nil
		}
		m.opts.Logf("mcosim: node %s first boot at %s", name, pool.Spec.Configuration.Name)
		if err := m.patchNode(ctx, name, firstBootAnnotations(pool.Spec.Configuration.Name), nil); err != nil {
			return err
		}
		m.setBooted(name, pool.Spec.Configuration.Name)
		return nil
	}
	if held != "" {
		if state != StateDegraded || reason != held {
			m.opts.Logf("mcosim: node %s Degraded: %s", name, held)
			return m.patchNode(ctx, name, map[string]string{StateAnnotation: StateDegraded, ReasonAnnotation: held}, nil)
		}
		return nil
	}
	var work func(context.Context) error
	switch {
	case des != "" && des != cur:
		work = func(ctx context.Context) error { return m.update(ctx, name, des) }
	case state != StateDone || reason != "" || n.Annotations[PostConfigActionAnnotation] == StateRebooting ||
		n.Annotations[DesiredDrainAnnotation] != drainValue(drainVerbUncordon, cur):
		// Repaired, or left mid-way by an earlier run: at its config, so
		// what the MCD does at boot (updateConfigAndState): uncordon, Done.
		work = func(ctx context.Context) error { return m.complete(ctx, name, cur) }
	default:
		return nil
	}
	m.mu.Lock()
	m.inflight[name] = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := work(ctx)
		m.mu.Lock()
		delete(m.inflight, name)
		m.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.opts.Logf("mcosim: node %s update to %s: %v (will retry)", name, des, err)
			m.daemonQueue.AddRateLimited(name)
			return
		}
		m.daemonQueue.Forget(name)
		m.daemonQueue.Add(name)
	}()
	return nil
}

// firstBootAnnotations is what a node has once the MCD's firstboot is done
// at config: Done at it, its uncordon request answered.
func firstBootAnnotations(config string) map[string]string {
	return map[string]string{
		CurrentConfigAnnotation:    config,
		DesiredConfigAnnotation:    config,
		StateAnnotation:            StateDone,
		ReasonAnnotation:           "",
		DesiredDrainAnnotation:     drainValue(drainVerbUncordon, config),
		LastAppliedDrainAnnotation: drainValue(drainVerbUncordon, config),
	}
}

// workingAnnotations is update.go's guard before SetWorking: state=Working
// (the reason is left as it is), unless the node is Degraded or
// Unreconcilable, which a retry does not reset. nil: nothing to write.
func workingAnnotations(n *corev1.Node) map[string]string {
	switch nodeState(n) {
	case StateDegraded, StateUnreconcilable, StateWorking:
		return nil
	}
	return map[string]string{StateAnnotation: StateWorking}
}

// rebootingAnnotations is what reboot() writes before it reboots: the
// post-config action, not a state (the state stays as it is, Working).
func rebootingAnnotations() map[string]string {
	return map[string]string{PostConfigActionAnnotation: StateRebooting}
}

// bootedAnnotations is what syncNode writes on the first sync after a
// reboot: the post-config action cleared to "" (the key stays).
func bootedAnnotations() map[string]string {
	return map[string]string{PostConfigActionAnnotation: ""}
}

// doneAnnotations is SetDone: Done at config, no reason.
func doneAnnotations(config string) map[string]string {
	return map[string]string{
		CurrentConfigAnnotation: config,
		StateAnnotation:         StateDone,
		ReasonAnnotation:        "",
	}
}

// update takes one node to target as the MCD's update does: Working (unless
// Degraded from an earlier try), drain through the drain controller (not on
// a single-replica control plane), post-config-action=Rebooting, reboot,
// wait for Ready without a deadline, then complete. A returned error is
// retried with backoff; the node shows Degraded with a reason meanwhile.
func (m *MCO) update(ctx context.Context, name, target string) error {
	if reason := m.takeArmedFailure(name); reason != "" {
		m.opts.Logf("mcosim: node %s fails its update to %s: %s", name, target, reason)
		return m.patchNode(ctx, name, map[string]string{StateAnnotation: StateDegraded, ReasonAnnotation: reason}, nil)
	}
	m.mu.Lock()
	done := m.rebooted[name] == target
	m.mu.Unlock()
	if done {
		// Rebooted already, but recording it failed (API outage): like the
		// MCD after a reboot, just record it; never reboot twice.
		return m.complete(ctx, name, target)
	}
	m.opts.Logf("mcosim: node %s updating to %s", name, target)
	n, err := m.getNode(name)
	if err != nil {
		return err
	}
	if a := workingAnnotations(n); a != nil {
		if err := m.patchNode(ctx, name, a, nil); err != nil {
			return fmt.Errorf("error setting node's state to Working: %w", err)
		}
	}
	rendered, err := m.renderedConfig(ctx, target)
	if err != nil {
		return m.failUpdate(ctx, name, fmt.Sprintf("failed to get MachineConfig %s: %v", target, err), err)
	}
	encapsulated, err := unitEnabled(rendered.Spec.Config.Raw, KubensUnit)
	if err != nil {
		return m.failUpdate(ctx, name, fmt.Sprintf("failed to parse MachineConfig %s: %v", target, err), err)
	}
	mach, isMachine := m.machine(name)
	// The MCD diffs against the config the node is at (update.go
	// update(oldConfig, newConfig)): stale files and units go, and the
	// node disruption policy looks at what changed.
	var current []byte
	actions := rebootAction
	policy, err := m.readDisruptionPolicy(ctx)
	if err != nil {
		return fmt.Errorf("reading the node disruption policy: %w", err)
	}
	if isMachine || policy != nil {
		old, err := m.renderedConfig(ctx, n.Annotations[CurrentConfigAnnotation])
		if err != nil {
			return m.failUpdate(ctx, name, fmt.Sprintf("failed to get MachineConfig %s: %v", n.Annotations[CurrentConfigAnnotation], err), err)
		}
		current = old.Spec.Config.Raw
		if actions, err = disruptionActions(old.Spec, rendered.Spec, policy); err != nil {
			return m.failUpdate(ctx, name, fmt.Sprintf("calculating node disruption actions: %v", err), err)
		}
	}
	reboot := hasActionType(actions, opv1.RebootStatusAction)
	if !reboot {
		m.opts.Logf("mcosim: node %s: node disruption policy: %s, no reboot", name, describeActions(actions))
	}
	if err := m.step(ctx, name, m.opts.StepDelay); err != nil {
		return err
	}
	// isDrainRequiredForNodeDisruptionActions: only Reboot and Drain drain.
	switch {
	case (reboot || hasActionType(actions, opv1.DrainStatusAction)) && drainRequired(n):
		if err := m.requestDrain(ctx, name, drainValue(drainVerbDrain, target), drainTimeout); err != nil {
			return m.failUpdate(ctx, name, err.Error(), err)
		}
	case reboot || hasActionType(actions, opv1.DrainStatusAction):
		m.opts.Logf("mcosim: node %s: drain not required, skipping", name)
	}
	if err := m.step(ctx, name, m.opts.StepDelay); err != nil { // the file writes
		return err
	}
	if isMachine {
		if err := WriteConfig(ctx, mach, current, rendered.Spec.Config.Raw); err != nil {
			// updateFiles' error: the MCD marks the node Degraded and retries.
			return m.failUpdate(ctx, name, fmt.Sprintf("failed to update files and units: %v", err), err)
		}
	}
	if !reboot {
		// performPostConfigChangeNodeDisruptionAction: run the actions,
		// then straight to Done; kubelet and CRI-O stay as they were
		// booted.
		if err := runDisruptionActions(ctx, mach, isMachine, actions); err != nil {
			return m.failUpdate(ctx, name, err.Error(), err)
		}
		return m.complete(ctx, name, target)
	}
	if err := m.patchNode(ctx, name, rebootingAnnotations(), nil); err != nil {
		return err
	}
	start := time.Now()
	if m.reboot == nil {
		if err := sleep(ctx, m.opts.RebootDuration); err != nil {
			return err
		}
		m.markBooted(ctx, name)
	} else {
		var err error
		if isMachine {
			m.opts.Logf("mcosim: rebooting machine %s (its units decide; kubens.service enabled in the config: %v)", name, encapsulated)
			err = mach.host.RebootMachine(ctx, name)
		} else {
			m.opts.Logf("mcosim: rebooting node %s (kubens enabled: %v)", name, encapsulated)
			err = m.reboot.Reboot(ctx, name, encapsulated)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.opts.Logf("mcosim: node %s did not come back from its reboot: %v (it stays Working until it reports Ready)", name, err)
		}
		if err := m.waitReady(ctx, name, start); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.rebooted[name] = target
	m.booted[name] = target
	m.mu.Unlock()
	m.opts.Logf("mcosim: node %s rebooted after %s", name, time.Since(start).Round(time.Millisecond))
	return m.complete(ctx, name, target)
}

// BootedConfig is the rendered config the node last booted with (first
// boot or the last reboot the daemon did): what its kubelet and CRI-O
// really run with, which differs from currentConfig after an update the
// node disruption policy applied without a reboot. false when the
// simulator has not seen the node boot.
func (m *MCO) BootedConfig(node string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.booted[node]
	return c, ok
}

func (m *MCO) setBooted(node, config string) {
	m.mu.Lock()
	m.booted[node] = config
	m.mu.Unlock()
}

// markBooted is what an object-only node with a Ready condition shows
// after its simulated reboot, as a kubelet that starts again reports it: a
// new boot ID and the Ready condition's last transition now (it was
// NotReady meanwhile). Nodes without a Ready condition stay as they are.
func (m *MCO) markBooted(ctx context.Context, name string) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := m.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := readyCondition(n)
		if c == nil {
			return nil
		}
		now := metav1.Now()
		c.LastTransitionTime, c.LastHeartbeatTime = now, now
		n.Status.NodeInfo.BootID = string(uuid.NewUUID())
		_, err = m.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		// Only what status shows of the boot; the update goes on.
		m.opts.Logf("mcosim: node %s: recording its boot: %v", name, err)
	}
}

// machine is the node as a machine whose files the daemon writes, when the
// Rebooter is a MachineHost and the node one of its machines.
func (m *MCO) machine(name string) (hostedMachine, bool) {
	host, ok := m.reboot.(MachineHost)
	if !ok {
		return hostedMachine{}, false
	}
	root, ok := host.MachineRoot(name)
	if !ok {
		return hostedMachine{}, false
	}
	return hostedMachine{host: host, name: name, root: root}, true
}

// complete is what the MCD does once booted at target (syncNode, then
// updateConfigAndState): clear the post-config action, completeUpdate (ask
// the drain controller to uncordon, wait for it), then SetDone.
func (m *MCO) complete(ctx context.Context, name, target string) error {
	n, err := m.getNode(name)
	if err != nil {
		return err
	}
	if n.Annotations[PostConfigActionAnnotation] == StateRebooting {
		if err := m.patchNode(ctx, name, bootedAnnotations(), nil); err != nil {
			return err
		}
	}
	if err := m.requestDrain(ctx, name, drainValue(drainVerbUncordon, target), uncordonTimeout); err != nil {
		return err
	}
	if err := m.patchNode(ctx, name, doneAnnotations(target), nil); err != nil {
		return fmt.Errorf("error setting node's state to Done: %w", err)
	}
	m.mu.Lock()
	delete(m.rebooted, name)
	m.mu.Unlock()
	m.opts.Logf("mcosim: node %s at %s", name, target)
	return nil
}

// step sleeps d, unless the node was degraded meanwhile or we stop.
func (m *MCO) step(ctx context.Context, name string, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	m.mu.Lock()
	held := m.degraded[name]
	m.mu.Unlock()
	if held != "" {
		return fmt.Errorf("node degraded: %s", held)
	}
	return nil
}

func (m *MCO) takeArmedFailure(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	reason := m.degradeOnUpdate[name]
	if reason != "" {
		// From now on it is held, like DegradeNode, until RepairNode.
		delete(m.degradeOnUpdate, name)
		m.degraded[name] = reason
	}
	return reason
}

func (m *MCO) failUpdate(ctx context.Context, name, reason string, cause error) error {
	if err := m.patchNode(ctx, name, map[string]string{StateAnnotation: StateDegraded, ReasonAnnotation: reason}, nil); err != nil {
		return err
	}
	return cause
}

func (m *MCO) renderedConfig(ctx context.Context, name string) (*mcfgv1.MachineConfig, error) {
	if mc, err := m.mcs.Get(name); err == nil {
		return mc, nil
	}
	return m.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, name, metav1.GetOptions{})
}

// waitReady waits, without a deadline, for a node with a real kubelet to
// report Ready with a heartbeat from after the reboot began: the MCD of a
// node that does not come back never runs again, so nothing marks it
// Degraded; it stays Working and its pool Updating. Object-only nodes (no
// Ready condition at all) have nothing to wait for.
func (m *MCO) waitReady(ctx context.Context, name string, since time.Time) error {
	for {
		if n, err := m.getNode(name); err == nil && readyAfter(n, since) {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// readyAfter: no Ready condition at all (an object-only node), or Ready with
// a heartbeat or transition from since on (API times have second precision).
func readyAfter(n *corev1.Node, since time.Time) bool {
	c := readyCondition(n)
	if c == nil {
		return true
	}
	since = since.Truncate(time.Second)
	return c.Status == corev1.ConditionTrue && (!c.LastHeartbeatTime.Time.Before(since) || !c.LastTransitionTime.Time.Before(since))
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
