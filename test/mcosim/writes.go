package mcosim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The simulator reads nodes from an informer cache, which lags its own
// writes, by a lot while a watch reconnects after an API outage. Acting on a
// stale node could reboot it twice or exceed maxUnavailable, so the
// simulator reads its own writes: each successful node write is laid over
// the cached node until the cache shows it (or it gets old, in case someone
// else changed the same field since).

const pendingTTL = time.Minute

type pendingWrite struct {
	annotations   map[string]string
	unschedulable *bool
	at            time.Time
}

func (m *MCO) recordWrite(name string, annotations map[string]string, unschedulable *bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pending[name]
	if p == nil {
		p = &pendingWrite{annotations: map[string]string{}}
		m.pending[name] = p
	}
	for k, v := range annotations {
		p.annotations[k] = v
	}
	if unschedulable != nil {
		p.unschedulable = ptr(*unschedulable)
	}
	p.at = time.Now()
}

// view is n with the simulator's own writes the cache does not show yet.
func (m *MCO) view(n *corev1.Node) *corev1.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pending[n.Name]
	if p == nil {
		return n
	}
	shown := p.unschedulable == nil || n.Spec.Unschedulable == *p.unschedulable
	for k, v := range p.annotations {
		if n.Annotations[k] != v {
			shown = false
		}
	}
	if shown || time.Since(p.at) > pendingTTL {
		delete(m.pending, n.Name)
		return n
	}
	cp := n.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	for k, v := range p.annotations {
		cp.Annotations[k] = v
	}
	if p.unschedulable != nil {
		cp.Spec.Unschedulable = *p.unschedulable
	}
	return cp
}

func (m *MCO) getNode(name string) (*corev1.Node, error) {
	n, err := m.nodes.Get(name)
	if err != nil {
		return nil, err
	}
	return m.view(n), nil
}

func (m *MCO) listNodes() ([]*corev1.Node, error) {
	ns, err := m.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Node, len(ns))
	for i, n := range ns {
		out[i] = m.view(n)
	}
	return out, nil
}
