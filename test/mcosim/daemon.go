package mcosim

import (
	"context"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// syncDaemon plays the Machine Config Daemon of one node: firstboot at the
// pool's config, holding a degraded state, or starting an update when the
// node controller changed desiredConfig.
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
		return m.patchNode(ctx, name, map[string]string{
			CurrentConfigAnnotation: pool.Spec.Configuration.Name,
			DesiredConfigAnnotation: pool.Spec.Configuration.Name,
			StateAnnotation:         StateDone,
			ReasonAnnotation:        "",
		}, nil)
	}
	if held != "" {
		if state != StateDegraded || reason != held {
			m.opts.Logf("mcosim: node %s Degraded: %s", name, held)
			return m.patchNode(ctx, name, map[string]string{StateAnnotation: StateDegraded, ReasonAnnotation: held}, nil)
		}
		return nil
	}
	if des != "" && des != cur {
		m.mu.Lock()
		m.inflight[name] = true
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := m.update(ctx, name, des)
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
	if state != StateDone || reason != "" {
		// Repaired, or left mid-way by an earlier run: at its config, so Done.
		var uncordon *bool
		if state == StateWorking || state == StateRebooting {
			uncordon = ptr(false)
		}
		return m.patchNode(ctx, name, map[string]string{StateAnnotation: StateDone, ReasonAnnotation: ""}, uncordon)
	}
	return nil
}

// update takes one node to target: Working, cordon, Rebooting, reboot, wait
// for Ready, then currentConfig=target, Done, uncordon. A returned error is
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
	if err := m.patchNode(ctx, name, map[string]string{StateAnnotation: StateWorking, ReasonAnnotation: ""}, nil); err != nil {
		return err
	}
	if err := m.step(ctx, name, m.opts.StepDelay); err != nil {
		return err
	}
	if err := m.patchNode(ctx, name, nil, ptr(true)); err != nil { // cordon, as the drain does
		return err
	}
	if err := m.step(ctx, name, m.opts.StepDelay); err != nil {
		return err
	}
	rendered, err := m.renderedConfig(ctx, target)
	if err != nil {
		return m.failUpdate(ctx, name, fmt.Sprintf("failed to get MachineConfig %s: %v", target, err), err)
	}
	encapsulated, err := unitEnabled(rendered.Spec.Config.Raw, KubensUnit)
	if err != nil {
		return m.failUpdate(ctx, name, fmt.Sprintf("failed to parse MachineConfig %s: %v", target, err), err)
	}
	if err := m.patchNode(ctx, name, map[string]string{StateAnnotation: StateRebooting}, nil); err != nil {
		return err
	}
	start := time.Now()
	if m.reboot == nil {
		if err := m.step(ctx, name, m.opts.RebootDuration); err != nil {
			return err
		}
	} else {
		m.opts.Logf("mcosim: rebooting node %s (kubens enabled: %v)", name, encapsulated)
		if err := m.reboot.Reboot(ctx, name, encapsulated); err != nil {
			return m.failUpdate(ctx, name, fmt.Sprintf("reboot failed: %v", err), err)
		}
		if err := m.waitReady(ctx, name, start); err != nil {
			return m.failUpdate(ctx, name, err.Error(), err)
		}
	}
	m.mu.Lock()
	m.rebooted[name] = target
	m.mu.Unlock()
	m.opts.Logf("mcosim: node %s rebooted after %s", name, time.Since(start).Round(time.Millisecond))
	return m.complete(ctx, name, target)
}

// complete records a node at target: currentConfig, Done, uncordoned.
func (m *MCO) complete(ctx context.Context, name, target string) error {
	if err := m.patchNode(ctx, name, map[string]string{
		CurrentConfigAnnotation: target,
		StateAnnotation:         StateDone,
		ReasonAnnotation:        "",
	}, ptr(false)); err != nil {
		return err
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

// waitReady waits for a node with a real kubelet to report Ready with a
// heartbeat from after the reboot began. Object-only nodes (no Ready
// condition at all) have nothing to wait for.
func (m *MCO) waitReady(ctx context.Context, name string, since time.Time) error {
	since = since.Truncate(time.Second) // API times have second precision
	deadline := time.Now().Add(m.opts.ReadyTimeout)
	for {
		n, err := m.getNode(name)
		if err == nil {
			c := readyCondition(n)
			if c == nil {
				return nil
			}
			if c.Status == corev1.ConditionTrue && (!c.LastHeartbeatTime.Time.Before(since) || !c.LastTransitionTime.Time.Before(since)) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not report Ready within %s after reboot", name, m.opts.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
