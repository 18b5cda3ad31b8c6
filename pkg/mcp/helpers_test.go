package mcp

import (
	"encoding/json"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// pool builds a pool selecting MCs whose role is in roles and nodes with the
// node-role label of its name, as the built-in and custom pools do.
func pool(name string, roles ...string) mcfgv1.MachineConfigPool {
	return mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: manifests.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles,
			}}},
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}},
		},
	}
}

type poolOpt func(*mcfgv1.MachineConfigPool)

func withSpec(name string, sources ...string) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) {
		p.Spec.Configuration.Name = name
		p.Spec.Configuration.Source = nil
		for _, s := range sources {
			p.Spec.Configuration.Source = append(p.Spec.Configuration.Source, corev1.ObjectReference{Kind: "MachineConfig", Name: s})
		}
	}
}

func withStatus(current string, total, ready, updated, degraded int32) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) {
		p.Status.Configuration.Name = current
		p.Status.MachineCount, p.Status.ReadyMachineCount, p.Status.UpdatedMachineCount, p.Status.DegradedMachineCount = total, ready, updated, degraded
		p.Status.ObservedGeneration = p.Generation
	}
}

func withCond(t mcfgv1.MachineConfigPoolConditionType, status bool, msg string) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) {
		s := corev1.ConditionFalse
		if status {
			s = corev1.ConditionTrue
		}
		p.Status.Conditions = append(p.Status.Conditions, mcfgv1.MachineConfigPoolCondition{Type: t, Status: s, Message: msg})
	}
}

func paused(p *mcfgv1.MachineConfigPool) { p.Spec.Paused = true }

func withGeneration(gen, observed int64) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) { p.Generation, p.Status.ObservedGeneration = gen, observed }
}

func withMaxUnavailable(v intstr.IntOrString) poolOpt {
	return func(p *mcfgv1.MachineConfigPool) { p.Spec.MaxUnavailable = &v }
}

func mkPool(name string, roles []string, opts ...poolOpt) mcfgv1.MachineConfigPool {
	p := pool(name, roles...)
	for _, o := range opts {
		o(&p)
	}
	return p
}

// ign returns an Ignition 3.2 config enabling (or disabling) units.
func ign(units map[string]bool) []byte {
	type unit struct {
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
	}
	cfg := map[string]any{"ignition": map[string]string{"version": "3.4.0"}}
	var us []unit
	for n, e := range units {
		us = append(us, unit{n, e})
	}
	cfg["systemd"] = map[string]any{"units": us}
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	return b
}

// mc builds an input MachineConfig for role.
func mc(name, role string, units map[string]bool) mcfgv1.MachineConfig {
	m := mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{manifests.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: ign(units)}},
	}
	return m
}

func managed(m mcfgv1.MachineConfig) mcfgv1.MachineConfig {
	m.Labels[manifests.ManagedByLabel] = manifests.ManagedByValue
	return m
}

// rendered builds a rendered MC owned by pool.
func rendered(name, poolName string, units map[string]bool) mcfgv1.MachineConfig {
	return mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{Kind: "MachineConfigPool", Name: poolName}}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: ign(units)}},
	}
}

func node(name string, roles []string, current, desired, state, reason string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
	for _, r := range roles {
		n.Labels["node-role.kubernetes.io/"+r] = ""
	}
	set := func(k, v string) {
		if v != "" {
			n.Annotations[k] = v
		}
	}
	set(CurrentConfigAnnotation, current)
	set(DesiredConfigAnnotation, desired)
	set(StateAnnotation, state)
	set(ReasonAnnotation, reason)
	return n
}

func ptrs(mcs ...mcfgv1.MachineConfig) []*mcfgv1.MachineConfig {
	out := make([]*mcfgv1.MachineConfig, len(mcs))
	for i := range mcs {
		out[i] = &mcs[i]
	}
	return out
}
