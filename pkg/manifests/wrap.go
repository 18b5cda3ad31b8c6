package manifests

import (
	"encoding/json"
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	// WrapDropInName is the drop-in that runs a unit through kubensenter,
	// the name kubensmnt's own mkWrapperDropin helper writes by hand, so a
	// unit wrapped either way is recognised as wrapped.
	WrapDropInName = "99-kubens-wrapper.conf"
	// ComponentLabel tells oc-kubens' own MachineConfigs apart: the wrap
	// configs carry ComponentWrap; the kubens.service configs of enable
	// carry no such label (they predate it) and are never touched by wrap.
	ComponentLabel = "oc-kubens.io/component"
	// ComponentWrap marks the 99-kubens-wrap-<role> configs.
	ComponentWrap = "wrap"

	wrapNamePrefix = "99-kubens-wrap-"
)

// WrapName is the MachineConfig that holds the wrapper drop-ins of a role:
// 99-kubens-wrap-<role>.
func WrapName(role string) string { return wrapNamePrefix + role }

// IsManagedWrap reports whether mc is one of our wrap configs.
func IsManagedWrap(mc *mcfgv1.MachineConfig) bool {
	return IsManaged(mc) && mc.Labels[ComponentLabel] == ComponentWrap
}

// IsManagedKubens reports whether mc is one of the kubens.service configs
// that enable creates and disable deletes (managed, and not a wrap config).
func IsManagedKubens(mc *mcfgv1.MachineConfig) bool {
	return IsManaged(mc) && mc.Labels[ComponentLabel] == ""
}

// wrapConfig is the subset of an Ignition 3.2 config a wrap config emits:
// units with a drop-in and nothing else, so that the unit's own contents
// and enablement (another config's) are left to the merge.
type wrapConfig struct {
	Ignition struct {
		Version string `json:"version"`
	} `json:"ignition"`
	Systemd struct {
		Units []wrapUnit `json:"units"`
	} `json:"systemd"`
}

type wrapUnit struct {
	Dropins []wrapDropin `json:"dropins"`
	Name    string       `json:"name"`
}

type wrapDropin struct {
	Contents string `json:"contents"`
	Name     string `json:"name"`
}

// RenderWrap returns the validated wrap MachineConfig of a role: one unit
// entry per key of dropIns (unit name -> drop-in text), sorted by unit, each
// with the WrapDropInName drop-in. The texts come from pkg/wrap.
func RenderWrap(role string, dropIns map[string]string) (*mcfgv1.MachineConfig, error) {
	if err := ValidateRole(role); err != nil {
		return nil, err
	}
	if len(dropIns) == 0 {
		return nil, fmt.Errorf("a wrap MachineConfig for role %q needs at least one unit", role)
	}
	units := make([]string, 0, len(dropIns))
	for u := range dropIns {
		units = append(units, u)
	}
	sort.Strings(units)
	var cfg wrapConfig
	cfg.Ignition.Version = IgnitionVersion
	for _, u := range units {
		cfg.Systemd.Units = append(cfg.Systemd.Units, wrapUnit{Name: u, Dropins: []wrapDropin{{Name: WrapDropInName, Contents: dropIns[u]}}})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding Ignition config for role %q: %w", role, err)
	}
	mc := &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{
			Name: WrapName(role),
			Labels: map[string]string{
				RoleLabel:      role,
				ManagedByLabel: ManagedByValue,
				ComponentLabel: ComponentWrap,
			},
		},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}
	if err := Validate(mc); err != nil {
		return nil, err
	}
	return mc, nil
}

// WrapDropIns returns, for each unit of cfg that carries the wrapper
// drop-in (ours or one made by hand with the same name), the drop-in's
// text. A drop-in with empty contents does not count: Ignition deletes it.
func WrapDropIns(cfg Config) map[string]string {
	out := map[string]string{}
	for _, u := range cfg.Systemd.Units {
		for _, d := range u.Dropins {
			if d.Name == WrapDropInName && d.Contents != nil && *d.Contents != "" {
				out[u.Name] = *d.Contents
			}
		}
	}
	return out
}

// WrappedUnits lists the units of cfg that carry the wrapper drop-in,
// sorted.
func WrappedUnits(cfg Config) []string {
	m := WrapDropIns(cfg)
	out := make([]string, 0, len(m))
	for u := range m {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
