package mcosim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
)

// renderResult is what rendering a pool produced.
type renderResult struct {
	rendered *mcfgv1.MachineConfig
	source   []corev1.ObjectReference
}

// renderPool merges what pool selects out of all into a rendered config
// object (not yet created), as the render controller's
// syncMachineConfigPool and syncGeneratedMachineConfig do. Errors read like
// the MCO's RenderDegraded messages, without the "Failed to render
// configuration for pool" prefix.
func renderPool(pool *mcfgv1.MachineConfigPool, all []*mcfgv1.MachineConfig) (*renderResult, error) {
	selected, err := configsForPool(pool, all)
	if err != nil {
		return nil, err
	}
	if len(selected) == 0 {
		sel, _ := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
		return nil, fmt.Errorf("no MachineConfigs found matching selector %v", sel)
	}
	// generateRenderedMachineConfig: every config must pass
	// ValidateMachineConfig (in name order) before anything is merged. Like
	// the MCO's, these messages do not say which config is at fault.
	spec, err := func() (mcfgv1.MachineConfigSpec, error) {
		for _, mc := range selected {
			if err := validateMachineConfig(mc.Spec); err != nil {
				return mcfgv1.MachineConfigSpec{}, err
			}
		}
		return mergeConfigs(selected)
	}()
	if err != nil {
		return nil, fmt.Errorf("could not generate rendered MachineConfig: %w", err)
	}
	name, err := renderedName(pool.Name, spec)
	if err != nil {
		return nil, fmt.Errorf("could not generate rendered MachineConfig: %w", err)
	}
	rendered := &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool,
				mcfgv1.GroupVersion.WithKind("MachineConfigPool"))},
			Annotations: map[string]string{
				GeneratedByAnnotation:         controllerVersion,
				ReleaseImageVersionAnnotation: releaseVersion,
			},
		},
		Spec: spec,
	}
	if err := validateRenderedSize(rendered); err != nil {
		return nil, fmt.Errorf("size validation failed: %w", err)
	}
	source := make([]corev1.ObjectReference, 0, len(selected))
	for _, mc := range selected {
		source = append(source, corev1.ObjectReference{
			Kind: "MachineConfig", Name: mc.Name, APIVersion: mcfgv1.GroupVersion.String(),
		})
	}
	return &renderResult{rendered: rendered, source: source}, nil
}

// syncRender is the render controller's sync of one pool.
func (m *MCO) syncRender(ctx context.Context, name string) error {
	if m.renderIsHeld(name) {
		return nil
	}
	pool, err := m.pools.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	all, err := m.mcs.List(labels.Everything())
	if err != nil {
		return err
	}
	return m.render(ctx, pool, all)
}

// render writes the rendered config and points the pool's spec at it, or
// sets RenderDegraded. Used by the controller (from caches) and bootstrap
// (from fresh lists).
func (m *MCO) render(ctx context.Context, pool *mcfgv1.MachineConfigPool, all []*mcfgv1.MachineConfig) error {
	if pool.Spec.MachineConfigSelector == nil || len(pool.Spec.MachineConfigSelector.MatchLabels)+len(pool.Spec.MachineConfigSelector.MatchExpressions) == 0 {
		// The MCO refuses to select everything and only emits an event.
		m.opts.Logf("mcosim: pool %s selects all or no MachineConfigs; not rendering", pool.Name)
		return nil
	}
	m.mu.Lock()
	failMsg := m.renderFail[pool.Name]
	m.mu.Unlock()
	if failMsg != "" {
		return m.setRenderDegraded(ctx, pool.Name, fmt.Errorf("%s", failMsg))
	}
	res, err := renderPool(pool, all)
	if err != nil {
		return m.setRenderDegraded(ctx, pool.Name, err)
	}
	_, err = m.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, res.rendered, metav1.CreateOptions{})
	switch {
	case err == nil:
		m.opts.Logf("mcosim: generated %s from %d configs", res.rendered.Name, len(res.source))
	case apierrors.IsAlreadyExists(err):
		// Same content, same name: nothing to write; old rendered configs are
		// kept, as the MCO keeps them.
	default:
		return err
	}
	if pool.Spec.Configuration.Name != res.rendered.Name || !equality.Semantic.DeepEqual(pool.Spec.Configuration.Source, res.source) {
		// An Update of the spec, as the MCO does it: generation moves, so
		// observedGeneration lags until the node controller syncs status.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := m.mcfg.MachineconfigurationV1().MachineConfigPools().Get(ctx, pool.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.Spec.Configuration.Name == res.rendered.Name && equality.Semantic.DeepEqual(cur.Spec.Configuration.Source, res.source) {
				return nil
			}
			cur.Spec.Configuration.Name = res.rendered.Name
			cur.Spec.Configuration.Source = res.source
			_, err = m.mcfg.MachineconfigurationV1().MachineConfigPools().Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return err
		}
		if pool.Spec.Configuration.Name != res.rendered.Name {
			m.opts.Logf("mcosim: pool %s now targeting %s", pool.Name, res.rendered.Name)
		}
	}
	return m.clearRenderDegraded(ctx, pool)
}

// setRenderDegraded is syncFailingStatus: RenderDegraded=True, no reason,
// "Failed to render configuration for pool <pool>: <error>".
func (m *MCO) setRenderDegraded(ctx context.Context, pool string, cause error) error {
	prefix := fmt.Sprintf("Failed to render configuration for pool %s: ", pool)
	// A FailRender message may already carry the prefix; say it once.
	msg := prefix + strings.TrimPrefix(cause.Error(), prefix)
	m.opts.Logf("mcosim: %s", msg)
	return m.updatePoolStatus(ctx, pool, func(p *mcfgv1.MachineConfigPool) {
		setCondition(&p.Status, newCondition(mcfgv1.MachineConfigPoolRenderDegraded, corev1.ConditionTrue, "", msg, now()))
		// The node controller folds RenderDegraded into Degraded; do it here
		// too so the pool reads consistently before its next sync. A pool
		// never rendered has no node controller sync, so no Degraded.
		if p.Spec.Configuration.Name != "" && !conditionTrue(p.Status.Conditions, mcfgv1.MachineConfigPoolDegraded) {
			setCondition(&p.Status, newCondition(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionTrue, "", "", now()))
		}
	})
}

func (m *MCO) clearRenderDegraded(ctx context.Context, pool *mcfgv1.MachineConfigPool) error {
	if conditionFalse(pool.Status.Conditions, mcfgv1.MachineConfigPoolRenderDegraded) {
		return nil
	}
	return m.updatePoolStatus(ctx, pool.Name, func(p *mcfgv1.MachineConfigPool) {
		setCondition(&p.Status, newCondition(mcfgv1.MachineConfigPoolRenderDegraded, corev1.ConditionFalse, "", "", now()))
	})
}

// updatePoolStatus applies mutate to a fresh copy of the pool and writes it
// through the status subresource, retrying conflicts.
func (m *MCO) updatePoolStatus(ctx context.Context, pool string, mutate func(*mcfgv1.MachineConfigPool)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := m.mcfg.MachineconfigurationV1().MachineConfigPools().Get(ctx, pool, metav1.GetOptions{})
		if err != nil {
			return err
		}
		before := cur.Status.DeepCopy()
		mutate(cur)
		if equality.Semantic.DeepEqual(before, &cur.Status) {
			return nil
		}
		if cur.Status.CertExpirys == nil {
			cur.Status.CertExpirys = []mcfgv1.CertExpiry{}
		}
		if cur.Status.Conditions == nil {
			cur.Status.Conditions = []mcfgv1.MachineConfigPoolCondition{}
		}
		_, err = m.mcfg.MachineconfigurationV1().MachineConfigPools().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func patchPoolPaused(ctx context.Context, c mcfgclient.Interface, pool string, paused bool) error {
	data, _ := json.Marshal(map[string]any{"spec": map[string]any{"paused": paused}})
	_, err := c.MachineconfigurationV1().MachineConfigPools().Patch(ctx, pool, types.MergePatchType, data, metav1.PatchOptions{})
	return err
}
