package mcosim

import (
	"context"
	"fmt"
	"sync"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// builtInPool is the pool the installer creates for a role.
func builtInPool(role string) *mcfgv1.MachineConfigPool {
	labels := map[string]string{
		BuiltInPoolLabel: "",
		"pools.operator.machineconfiguration.openshift.io/" + role: "",
	}
	if role == masterRole {
		labels["operator.machineconfiguration.openshift.io/required-for-upgrade"] = ""
	}
	return &mcfgv1.MachineConfigPool{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool"},
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: labels},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{RoleLabel: role}},
			NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + role: ""}},
		},
	}
}

// bootstrap brings the cluster to what an installed cluster looks like, with
// direct API calls (the caches are not running yet): pools and base configs
// when absent, a rendered config for each pool without one, every node of a
// pool at its config and Done, and the status of each rendered pool written.
func (m *MCO) bootstrap(ctx context.Context) error {
	mc := m.mcfg.MachineconfigurationV1()
	for _, role := range m.opts.Roles {
		if _, err := mc.MachineConfigPools().Create(ctx, builtInPool(role), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating pool %s: %w", role, err)
		}
		if _, err := mc.MachineConfigs().Create(ctx, baseConfig(role), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating MachineConfig 00-%s: %w", role, err)
		}
	}

	poolList, err := mc.MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	mcList, err := mc.MachineConfigs().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	all := make([]*mcfgv1.MachineConfig, 0, len(mcList.Items))
	for i := range mcList.Items {
		all = append(all, &mcList.Items[i])
	}
	for i := range poolList.Items {
		p := &poolList.Items[i]
		if p.Spec.Configuration.Name != "" {
			continue // already rendered (a restart): the controller catches up
		}
		if err := m.render(ctx, p, all); err != nil {
			return fmt.Errorf("rendering pool %s: %w", p.Name, err)
		}
	}

	// Fresh pools, now with spec.configuration.
	poolList, err = mc.MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pools := make([]*mcfgv1.MachineConfigPool, 0, len(poolList.Items))
	for i := range poolList.Items {
		pools = append(pools, &poolList.Items[i])
	}
	nodeList, err := m.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	nodes := make([]*corev1.Node, 0, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes = append(nodes, &nodeList.Items[i])
	}
	if err := m.firstBoot(ctx, nodes, pools); err != nil {
		return err
	}

	nodeList, err = m.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	nodes = nodes[:0]
	for i := range nodeList.Items {
		nodes = append(nodes, &nodeList.Items[i])
	}
	byPool := nodesByPool(nodes, pools)
	for _, p := range pools {
		if p.Spec.Configuration.Name == "" {
			continue // not rendered: no status, as syncPool
		}
		members := byPool[p.Name]
		if err := m.updatePoolStatus(ctx, p.Name, func(cur *mcfgv1.MachineConfigPool) {
			cur.Status = calculateStatus(cur, members, now())
		}); err != nil {
			return fmt.Errorf("writing status of pool %s: %w", p.Name, err)
		}
	}
	return nil
}

// firstBoot gives every node of a pool that has no config yet its pool's
// rendered config, in parallel (500-node benchmark clusters).
func (m *MCO) firstBoot(ctx context.Context, nodes []*corev1.Node, pools []*mcfgv1.MachineConfigPool) error {
	work := make(chan [2]string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				a := firstBootAnnotations(w[1])
				// The node controller's first sync would add it; written
				// here, it saves a write per node on large clusters.
				a[ControlPlaneTopologyAnnotation] = string(m.topology)
				err := m.patchNode(ctx, w[0], a, nil)
				if err == nil {
					m.setBooted(w[0], w[1])
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("node %s: %w", w[0], err):
					default:
					}
				}
			}
		}()
	}
	for _, n := range nodes {
		if n.Annotations[CurrentConfigAnnotation] != "" {
			continue
		}
		p, err := poolForNode(n, pools)
		if err != nil || p == nil || p.Spec.Configuration.Name == "" {
			continue
		}
		work <- [2]string{n.Name, p.Spec.Configuration.Name}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
