package mcosim

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func now() time.Time { return time.Now() }

// updateCandidates is getAllCandidateMachines followed by the cut of
// updateCandidateMachines: the nodes of a pool not yet targeting the pool's
// config, and how many of them may start now. Nodes already unavailable
// (IsUnavailableForUpdate: not ready, cordoned, or a daemon at work) and
// nodes failing to reach this very config use up the maxUnavailable budget;
// a candidate that is not ready (NotReady, disk pressure, network
// unavailable, or cordoned) is skipped. When there are more candidates than
// capacity, they go in sortCandidates order.
func updateCandidates(pool *mcfgv1.MachineConfigPool, nodes []*corev1.Node, maxUnavail int) ([]*corev1.Node, int) {
	target := pool.Spec.Configuration.Name
	unavailable := 0
	for _, n := range nodes {
		if nodeUnavailable(n) {
			unavailable++
		}
	}
	if unavailable >= maxUnavail {
		return nil, 0
	}
	capacity := maxUnavail - unavailable
	failingThisConfig := 0
	var candidates []*corev1.Node
	for _, n := range nodes {
		if n.Annotations[CurrentConfigAnnotation] == "" {
			// Not booted into the MCO yet; the daemon's firstboot handles it.
			continue
		}
		if n.Annotations[DesiredConfigAnnotation] == target {
			if nodeFailing(n) {
				failingThisConfig++
			}
			continue
		}
		if !nodeReady(n) {
			continue // mid-update or unscheduled: not picked
		}
		candidates = append(candidates, n)
	}
	if failingThisConfig >= capacity {
		return nil, 0
	}
	capacity -= failingThisConfig
	if len(candidates) > capacity {
		candidates = sortCandidates(candidates)[:capacity]
	}
	return candidates, capacity
}

// sortCandidates is node_controller.go sortNodeList: nodes with a
// topology.kubernetes.io/zone label first, by zone, then the others; within
// a zone and among the unlabelled, oldest (creationTimestamp) first. Equal
// keys keep their order (by name, from nodesByPool).
func sortCandidates(nodes []*corev1.Node) []*corev1.Node {
	out := append([]*corev1.Node(nil), nodes...)
	sort.SliceStable(out, func(i, j int) bool {
		iz, iok := out[i].Labels[ZoneLabel]
		jz, jok := out[j].Labels[ZoneLabel]
		if iok != jok {
			return iok
		}
		if iok && iz != jz {
			return iz < jz
		}
		return out[i].CreationTimestamp.Time.Before(out[j].CreationTimestamp.Time)
	})
	return out
}

// topologyWrites is setClusterConfigAnnotation: the nodes whose
// controlPlaneTopology annotation differs from the cluster's.
func topologyWrites(nodes []*corev1.Node, topology configv1.TopologyMode) []string {
	if topology == "" {
		return nil
	}
	var out []string
	for _, n := range nodes {
		if n.Annotations[ControlPlaneTopologyAnnotation] != string(topology) {
			out = append(out, n.Name)
		}
	}
	return out
}

// syncPool is the node controller's syncMachineConfigPool: nothing for a
// pool never rendered; else hand the pool's config to the next nodes
// (unless paused), then write the pool status.
func (m *MCO) syncPool(ctx context.Context, name string) error {
	pool, err := m.pools.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pool.Spec.Configuration.Name == "" {
		// The MCO's node controller leaves a pool the renderer has not
		// initialised alone: no counts, no conditions (only the render
		// controller's RenderDegraded, if rendering fails).
		return nil
	}
	allPools, err := m.pools.List(labels.Everything())
	if err != nil {
		return err
	}
	allNodes, err := m.listNodes()
	if err != nil {
		return err
	}
	nodes := nodesByPool(allNodes, allPools)[pool.Name]

	if !pool.Spec.Paused {
		for _, name := range topologyWrites(nodes, m.topology) {
			if err := m.patchNode(ctx, name, map[string]string{ControlPlaneTopologyAnnotation: string(m.topology)}, nil); err != nil {
				return err
			}
		}
		maxU, err := maxUnavailable(pool, len(nodes))
		if err != nil {
			m.opts.Logf("mcosim: %v", err)
		} else {
			candidates, _ := updateCandidates(pool, nodes, maxU)
			if err := m.targetNodes(ctx, pool, candidates); err != nil {
				return err
			}
			if len(candidates) > 0 {
				// Status right away, as the MCO's syncStatusOnly after
				// updateCandidateMachines: Updating=True with 0 updated.
				if allNodes, err = m.listNodes(); err != nil {
					return err
				}
				nodes = nodesByPool(allNodes, allPools)[pool.Name]
			}
		}
	}

	status := calculateStatus(pool, nodes, now())
	if equality.Semantic.DeepEqual(pool.Status, status) {
		return nil
	}
	cp := pool.DeepCopy()
	cp.Status = status
	_, err = m.mcfg.MachineconfigurationV1().MachineConfigPools().UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if err == nil && pool.Status.Configuration.Name != status.Configuration.Name {
		m.opts.Logf("mcosim: pool %s has completed update to %s", pool.Name, status.Configuration.Name)
	}
	// A conflict means the cache was stale: the retry reads it afresh.
	return err
}

// patchNode merges annotations and, when unschedulable is not nil, sets
// spec.unschedulable (the cordon of a drain).
func (m *MCO) patchNode(ctx context.Context, name string, annotations map[string]string, unschedulable *bool) error {
	patch := map[string]any{}
	if len(annotations) > 0 {
		patch["metadata"] = map[string]any{"annotations": annotations}
	}
	if unschedulable != nil {
		patch["spec"] = map[string]any{"unschedulable": *unschedulable}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err = m.kube.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: "machine-config-daemon"}); err != nil {
		return err
	}
	m.recordWrite(name, annotations, unschedulable)
	return nil
}

// targetNodes sets desiredConfig on candidates, a few at a time: large pools
// with a percentage maxUnavailable hand out dozens at once.
func (m *MCO) targetNodes(ctx context.Context, pool *mcfgv1.MachineConfigPool, candidates []*corev1.Node) error {
	target := pool.Spec.Configuration.Name
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(candidates))
	var wg sync.WaitGroup
	for _, n := range candidates {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.patchNode(ctx, n.Name, map[string]string{DesiredConfigAnnotation: target}, nil); err != nil {
				errs <- err
				return
			}
			m.opts.Logf("mcosim: pool %s: node %s targeted to %s", pool.Name, n.Name, target)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}
