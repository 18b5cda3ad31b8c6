package mcp

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// SortForMerge orders input MachineConfigs the way the MCO's
// MergeMachineConfigs (pkg/controller/common/helpers.go) merges them: the
// configs labelled with the worker role first, then all others, each group by
// name. So on a custom pool (infra selecting role in (worker, infra)) an
// infra config overrides a worker one whatever their names; on the built-in
// pools this is plain name order. The input slice is not changed.
func SortForMerge(mcs []*mcfgv1.MachineConfig) []*mcfgv1.MachineConfig {
	var worker, other []*mcfgv1.MachineConfig
	for _, mc := range mcs {
		if mc.Labels[mcfgv1.MachineConfigRoleLabelKey] == WorkerPool {
			worker = append(worker, mc)
		} else {
			other = append(other, mc)
		}
	}
	byName := func(s []*mcfgv1.MachineConfig) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	}
	byName(worker)
	byName(other)
	return append(worker, other...)
}

// Forecast is what a pool's next rendered config will say, computed from the
// input MachineConfigs the pool selects with Ignition's own merge in the
// MCO's order.
type Forecast struct {
	Pool string
	// Sources are the input MCs the pool selects, in merge order.
	Sources []string
	// Merged is the merged Ignition config (valid only when Err is nil).
	Merged manifests.Config
	// Kubens is kubens.service in the merged config; UnitUnknown when a
	// selected config cannot be read (the MCO would refuse to render too).
	Kubens UnitState
	// KubensSetBy is the last config in merge order whose kubens.service
	// entry sets enabled or mask, the one that decides Kubens; "" when no
	// config does and the unit keeps its preset (disabled).
	KubensSetBy string
	// ZTP is true when the merged config carries the telco
	// container-mount-namespace mechanism.
	ZTP bool
	// Err names the selected configs the MCO cannot read.
	Err error
}

// SameMergedConfig tells whether two forecasts merge to the same Ignition
// config: the MCO hashes the merged spec into the rendered name, so a change
// that leaves it alone renders the same config and reboots nothing.
func (f Forecast) SameMergedConfig(g Forecast) bool {
	return f.Err == nil && g.Err == nil && reflect.DeepEqual(f.Merged, g.Merged)
}

// ForecastPool merges the input (non-rendered) MCs of mcs that the pool
// selects. It makes no API calls.
func ForecastPool(pool *mcfgv1.MachineConfigPool, mcs []mcfgv1.MachineConfig) Forecast {
	f := Forecast{Pool: pool.Name, Kubens: UnitUnknown}
	var selected []*mcfgv1.MachineConfig
	for i := range mcs {
		mc := &mcs[i]
		if IsRendered(mc) {
			continue
		}
		ok, err := PoolSelectsMC(pool, mc)
		if err != nil {
			f.Err = err
			return f
		}
		if ok {
			selected = append(selected, mc)
		}
	}
	cfgs := make([]manifests.Config, 0, len(selected))
	var bad []string
	for _, mc := range SortForMerge(selected) {
		f.Sources = append(f.Sources, mc.Name)
		cfg, err := manifests.ParseConfig(mc.Spec.Config.Raw)
		if err != nil {
			bad = append(bad, fmt.Sprintf("MachineConfig %s: %v", mc.Name, err))
			continue
		}
		if u := manifests.Unit(cfg, manifests.UnitName); u.Enabled != nil || u.Masked {
			f.KubensSetBy = mc.Name
		}
		cfgs = append(cfgs, cfg)
	}
	if len(bad) > 0 {
		f.Err = errors.New(strings.Join(bad, "; "))
		return f
	}
	f.Merged = manifests.MergeConfigs(cfgs)
	f.Kubens = UnitDisabled
	if manifests.Unit(f.Merged, manifests.UnitName).EnabledOn() {
		f.Kubens = UnitEnabled
	}
	f.ZTP = manifests.ZTPPresent(f.Merged)
	return f
}

// Outcome is what a change to the input MachineConfigs does to one pool.
type Outcome struct {
	Pool          string
	Before, After Forecast
}

// Rollout tells whether the pool gets a new rendered config, so that its
// nodes are drained and rebooted. The MCO names rendered configs by a hash
// of the merged spec: a change that leaves the merged config as it was
// (another config already enables the unit) renders the same config.
func (o Outcome) Rollout() bool { return !o.Before.SameMergedConfig(o.After) }

// Outcomes forecasts each named pool before and after a change, where
// before and after are the cluster's MachineConfigs without and with it.
func Outcomes(pools []mcfgv1.MachineConfigPool, names []string, before, after []mcfgv1.MachineConfig) []Outcome {
	out := make([]Outcome, 0, len(names))
	for _, n := range names {
		for i := range pools {
			if pools[i].Name == n {
				out = append(out, Outcome{Pool: n, Before: ForecastPool(&pools[i], before), After: ForecastPool(&pools[i], after)})
			}
		}
	}
	return out
}
