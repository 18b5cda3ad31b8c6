package mcp

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// The envelope of `oc kubens status -o json|yaml`. The schema is versioned:
// fields are only ever added within one apiVersion; a rename or removal gets a
// new apiVersion. README.md ("### status") documents every field.
const (
	ReportAPIVersion = "oc-kubens.io/v1alpha1"
	ReportKind       = "KubensStatus"
)

// UnitState is what a rendered config says about a systemd unit.
type UnitState string

const (
	UnitEnabled  UnitState = "enabled"
	UnitDisabled UnitState = "disabled" // disabled or absent: the shipped default is off
	UnitUnknown  UnitState = "unknown"  // the rendered MC is missing or unreadable
)

// Report is the machine-readable status of the cluster.
type Report struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Pools      []PoolStatus `json:"pools"`
	Nodes      []NodeStatus `json:"nodes"`
}

// PoolStatus is one MachineConfigPool as oc-kubens sees it.
type PoolStatus struct {
	Name string `json:"name"`
	// Kubens is kubens.service in the rendered config the pool has rolled out
	// (status.configuration): the ground truth for "is it on".
	Kubens        UnitState `json:"kubens"`
	CurrentConfig string    `json:"currentConfig"`
	// DesiredConfig is spec.configuration; PendingChange is true when it
	// differs from CurrentConfig, DesiredKubens is the unit in it.
	DesiredConfig string    `json:"desiredConfig"`
	DesiredKubens UnitState `json:"desiredKubens"`
	PendingChange bool      `json:"pendingChange"`
	// EnabledBy lists the MCs the pool selects that enable kubens.service
	// (ours or anyone's); Managed lists the MCs oc-kubens manages.
	EnabledBy []string `json:"enabledBy"`
	Managed   []string `json:"managed"`
	// ZTP is true when the pool encapsulates through the telco
	// container-mount-namespace.service instead.
	ZTP bool `json:"ztpContainerMountNamespace"`
	// Wrapped lists the units the rolled-out config (CurrentConfig) runs
	// through kubensenter (oc kubens wrap, or a drop-in of the same name
	// made by hand), sorted; empty when none or the config is unknown. A
	// change to it is pending like any other (PendingChange).
	Wrapped []string `json:"wrapped"`

	Updated        bool   `json:"updated"`
	Updating       bool   `json:"updating"`
	Degraded       bool   `json:"degraded"`
	Paused         bool   `json:"paused"`
	DegradedReason string `json:"degradedReason,omitempty"`

	MachineCount            int32 `json:"machineCount"`
	ReadyMachineCount       int32 `json:"readyMachineCount"`
	UpdatedMachineCount     int32 `json:"updatedMachineCount"`
	UnavailableMachineCount int32 `json:"unavailableMachineCount"`
	DegradedMachineCount    int32 `json:"degradedMachineCount"`
	MaxUnavailable          int   `json:"maxUnavailable"`
}

// NodeStatus is one node: its pool and the Machine Config Daemon's view.
type NodeStatus struct {
	Name          string    `json:"name"`
	Pool          string    `json:"pool"`
	CurrentConfig string    `json:"currentConfig"`
	DesiredConfig string    `json:"desiredConfig"`
	State         string    `json:"state"`
	Reason        string    `json:"reason,omitempty"`
	Kubens        UnitState `json:"kubens"`
	// NotRebooted: the node is Done at its current config but has not
	// rebooted since that config was rendered (see notRebooted), while the
	// node disruption policy lets kubens.service change without a reboot:
	// kubelet and CRI-O may not run as the config says. Only set when
	// Snapshot.KubensRebootless.
	NotRebooted bool `json:"notRebooted,omitempty"`
}

// Snapshot is everything status derivation reads: one List of each kind,
// whatever the node count.
type Snapshot struct {
	Pools          []mcfgv1.MachineConfigPool
	MachineConfigs []mcfgv1.MachineConfig
	Nodes          []corev1.Node
	// KubensRebootless: the node disruption policy gives kubens.service an
	// action other than Reboot, so nodes can be Done at a config that
	// changed it without rebooting; Derive then checks each node.
	KubensRebootless bool
}

// configReader caches the parsed Ignition of each MC it is asked about:
// rendered configs are shared by many nodes and can be large (0.5-1 MB).
type configReader struct {
	byName map[string]*mcfgv1.MachineConfig
	parsed map[string]parsedConfig
}

type parsedConfig struct {
	cfg   manifests.Config
	empty bool
	ok    bool
}

func newConfigReader(mcs []mcfgv1.MachineConfig) *configReader {
	r := &configReader{byName: map[string]*mcfgv1.MachineConfig{}, parsed: map[string]parsedConfig{}}
	for i := range mcs {
		r.byName[mcs[i].Name] = &mcs[i]
	}
	return r
}

// config reads the named MC (leniently, as a rendered config the operator
// accepted); ok is false when it is missing or unreadable.
func (r *configReader) config(mcName string) parsedConfig {
	if mcName == "" {
		return parsedConfig{}
	}
	if pc, ok := r.parsed[mcName]; ok {
		return pc
	}
	var pc parsedConfig
	if mc, ok := r.byName[mcName]; ok {
		if len(mc.Spec.Config.Raw) == 0 {
			pc = parsedConfig{empty: true, ok: true}
		} else if cfg, err := manifests.ReadConfig(mc.Spec.Config.Raw); err == nil {
			pc = parsedConfig{cfg: cfg, ok: true}
		}
	}
	r.parsed[mcName] = pc
	return pc
}

func (r *configReader) state(mcName, unit string) UnitState {
	pc := r.config(mcName)
	switch {
	case !pc.ok:
		return UnitUnknown
	case !pc.empty && manifests.Unit(pc.cfg, unit).EnabledOn():
		return UnitEnabled
	default:
		return UnitDisabled
	}
}

// ztp tells whether the named config carries the telco
// container-mount-namespace mechanism (by presence, see manifests.ZTPPresent).
func (r *configReader) ztp(mcName string) bool {
	pc := r.config(mcName)
	return pc.ok && !pc.empty && manifests.ZTPPresent(pc.cfg)
}

// wrapped lists the units the named config wraps with kubensenter, sorted;
// empty when it wraps none or is missing or unreadable.
func (r *configReader) wrapped(mcName string) []string {
	pc := r.config(mcName)
	if !pc.ok || pc.empty {
		return []string{}
	}
	return manifests.WrappedUnits(pc.cfg)
}

func mcUnitState(mc *mcfgv1.MachineConfig, unit string) UnitState {
	if len(mc.Spec.Config.Raw) == 0 {
		return UnitDisabled
	}
	enabled, _, err := manifests.UnitEnabled(mc.Spec.Config.Raw, unit)
	switch {
	case err != nil:
		return UnitUnknown
	case enabled:
		return UnitEnabled
	default:
		return UnitDisabled
	}
}

// EnablingMCs returns the names of the input (non-rendered) MCs the pool
// selects whose Ignition enables unit, sorted.
func EnablingMCs(pool *mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, unit string) []string {
	var out []string
	for i := range mcs {
		mc := &mcs[i]
		if IsRendered(mc) {
			continue
		}
		if ok, err := PoolSelectsMC(pool, mc); err != nil || !ok {
			continue
		}
		if mcUnitState(mc, unit) == UnitEnabled {
			out = append(out, mc.Name)
		}
	}
	sort.Strings(out)
	return out
}

// inputsCarryZTP tells whether the input MCs the pool selects carry the ZTP
// container-mount-namespace mechanism: in their merge when every one of them
// can be read, else in any readable one.
func inputsCarryZTP(pool *mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig) bool {
	f := ForecastPool(pool, mcs)
	if f.Err == nil {
		return f.ZTP
	}
	for i := range mcs {
		mc := &mcs[i]
		if IsRendered(mc) || len(mc.Spec.Config.Raw) == 0 {
			continue
		}
		if ok, err := PoolSelectsMC(pool, mc); err != nil || !ok {
			continue
		}
		if cfg, err := manifests.ReadConfig(mc.Spec.Config.Raw); err == nil && manifests.ZTPPresent(cfg) {
			return true
		}
	}
	return false
}

// condition returns the status of a pool condition ("" when absent) and its message.
func condition(pool *mcfgv1.MachineConfigPool, t mcfgv1.MachineConfigPoolConditionType) (bool, string) {
	for _, c := range pool.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue, c.Message
		}
	}
	return false, ""
}

// Derive computes the report from a snapshot. It makes no API calls.
func Derive(s Snapshot) Report {
	r := newConfigReader(s.MachineConfigs)
	rep := Report{APIVersion: ReportAPIVersion, Kind: ReportKind, Pools: []PoolStatus{}, Nodes: []NodeStatus{}}

	pools := append([]mcfgv1.MachineConfigPool(nil), s.Pools...)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	for i := range pools {
		p := &pools[i]
		ps := PoolStatus{
			Name:                    p.Name,
			CurrentConfig:           p.Status.Configuration.Name,
			DesiredConfig:           p.Spec.Configuration.Name,
			Paused:                  p.Spec.Paused,
			MachineCount:            p.Status.MachineCount,
			ReadyMachineCount:       p.Status.ReadyMachineCount,
			UpdatedMachineCount:     p.Status.UpdatedMachineCount,
			UnavailableMachineCount: p.Status.UnavailableMachineCount,
			DegradedMachineCount:    p.Status.DegradedMachineCount,
			MaxUnavailable:          MaxUnavailable(p, int(p.Status.MachineCount)),
			EnabledBy:               EnablingMCs(p, s.MachineConfigs, manifests.UnitName),
			Managed:                 []string{},
		}
		if ps.EnabledBy == nil {
			ps.EnabledBy = []string{}
		}
		ps.Kubens = r.state(ps.CurrentConfig, manifests.UnitName)
		ps.DesiredKubens = r.state(ps.DesiredConfig, manifests.UnitName)
		ps.PendingChange = ps.DesiredConfig != "" && ps.DesiredConfig != ps.CurrentConfig
		// ZTP by presence: its unit has no [Install] section and configs
		// since 2023 do not set enabled, so the flag says nothing.
		ps.ZTP = r.ztp(ps.CurrentConfig) || inputsCarryZTP(p, s.MachineConfigs)
		ps.Wrapped = r.wrapped(ps.CurrentConfig)
		for j := range s.MachineConfigs {
			mc := &s.MachineConfigs[j]
			if !manifests.IsManaged(mc) {
				continue
			}
			if ok, _ := PoolSelectsMC(p, mc); ok {
				ps.Managed = append(ps.Managed, mc.Name)
			}
		}
		sort.Strings(ps.Managed)
		ps.Updated, _ = condition(p, mcfgv1.MachineConfigPoolUpdated)
		ps.Updating, _ = condition(p, mcfgv1.MachineConfigPoolUpdating)
		var reasons []string
		for _, t := range []mcfgv1.MachineConfigPoolConditionType{
			mcfgv1.MachineConfigPoolNodeDegraded, mcfgv1.MachineConfigPoolRenderDegraded, mcfgv1.MachineConfigPoolDegraded,
		} {
			if ok, msg := condition(p, t); ok {
				ps.Degraded = true
				if msg != "" && !slices.Contains(reasons, msg) {
					reasons = append(reasons, msg)
				}
			}
		}
		ps.DegradedReason = strings.Join(reasons, "; ")
		rep.Pools = append(rep.Pools, ps)
	}

	for i := range s.Nodes {
		n := &s.Nodes[i]
		pool, err := PoolForNode(s.Pools, n)
		ns := NodeStatus{
			Name:          n.Name,
			Pool:          pool,
			CurrentConfig: n.Annotations[CurrentConfigAnnotation],
			DesiredConfig: n.Annotations[DesiredConfigAnnotation],
			State:         n.Annotations[StateAnnotation],
			Reason:        n.Annotations[ReasonAnnotation],
		}
		if err != nil {
			ns.Reason = err.Error()
		}
		ns.Kubens = r.state(ns.CurrentConfig, manifests.UnitName)
		if s.KubensRebootless && ns.State == "Done" && ns.CurrentConfig == ns.DesiredConfig {
			ns.NotRebooted = notRebooted(n, r.byName[ns.CurrentConfig])
		}
		rep.Nodes = append(rep.Nodes, ns)
	}
	sort.Slice(rep.Nodes, func(i, j int) bool {
		if rep.Nodes[i].Pool != rep.Nodes[j].Pool {
			return rep.Nodes[i].Pool < rep.Nodes[j].Pool
		}
		return rep.Nodes[i].Name < rep.Nodes[j].Name
	})
	return rep
}

// notRebooted tells whether the node has not restarted since its current
// rendered config was created. Heuristic: a reboot takes the kubelet down,
// so its Ready condition changes, and the kubelet that starts again
// reports a new transition; a Ready condition that last changed before the
// rendered config existed means no reboot since. It can miss (false): the
// kubelet restarted or Ready flapped without a reboot. It says nothing
// (false) when the condition has no transition time or the config is not
// known. The boot ID (status.nodeInfo.bootID) is exact but needs the value
// from before the change, which no API object keeps; the MCO's
// MachineConfigNode objects (4.19+) record the update's reboot, but not on
// every cluster.
func notRebooted(n *corev1.Node, rendered *mcfgv1.MachineConfig) bool {
	if rendered == nil || rendered.CreationTimestamp.IsZero() {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Before(&rendered.CreationTimestamp)
		}
	}
	return false
}

// DegradedNodes lists "name: reason" for the nodes of pool whose daemon
// reports Degraded or Unreconcilable, for fail-fast messages.
func DegradedNodes(pools []mcfgv1.MachineConfigPool, nodes []corev1.Node, pool string) []string {
	var out []string
	for i := range nodes {
		n := &nodes[i]
		st := n.Annotations[StateAnnotation]
		if st != "Degraded" && st != "Unreconcilable" {
			continue
		}
		if p, _ := PoolForNode(pools, n); p != pool {
			continue
		}
		reason := n.Annotations[ReasonAnnotation]
		if reason == "" {
			reason = "no reason given"
		}
		out = append(out, fmt.Sprintf("%s (%s: %s)", n.Name, st, reason))
	}
	sort.Strings(out)
	return out
}

// ExpectedUnitState is the state of unit that the pool's next rendered
// config will have, from the input MCs it selects, merged as the MCO merges
// them (see ForecastPool); UnitUnknown when a selected config cannot be read.
func ExpectedUnitState(pool *mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig, unit string) UnitState {
	f := ForecastPool(pool, mcs)
	if f.Err != nil {
		return UnitUnknown
	}
	if unit == manifests.UnitName {
		return f.Kubens
	}
	if manifests.Unit(f.Merged, unit).EnabledOn() {
		return UnitEnabled
	}
	return UnitDisabled
}
