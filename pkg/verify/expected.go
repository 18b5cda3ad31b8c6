package verify

import (
	"context"
	"encoding/json"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// CurrentConfigAnnotation names the rendered MachineConfig a node runs.
const CurrentConfigAnnotation = "machineconfiguration.openshift.io/currentConfig"

// ExpectedResolver finds the state each node should be in from the rendered
// MachineConfig named in its currentConfig annotation: the ground truth of
// what the node booted with, whatever MachineConfig names enabled the unit.
// It fetches each rendered config once.
type ExpectedResolver struct {
	// Get fetches a MachineConfig by name.
	Get   func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error)
	cache map[string]State
}

// For returns the expected state of node, or "" when it cannot be known
// (no annotation, config not readable or not parseable).
func (x *ExpectedResolver) For(ctx context.Context, node *corev1.Node) State {
	name := node.Annotations[CurrentConfigAnnotation]
	if name == "" || x.Get == nil {
		return ""
	}
	if x.cache == nil {
		x.cache = map[string]State{}
	}
	if s, ok := x.cache[name]; ok {
		return s
	}
	var s State
	if mc, err := x.Get(ctx, name); err == nil {
		s = ExpectedFromConfig(mc.Spec.Config.Raw)
	}
	x.cache[name] = s
	return s
}

// ExpectedFromConfig reads a rendered Ignition config: Encapsulated when it
// enables kubens.service or carries the telco (ZTP / RAN DU)
// container-mount-namespace.service, NotEncapsulated when neither, "" when it
// cannot be read.
func ExpectedFromConfig(raw []byte) State {
	enabled, _, err := manifests.UnitEnabled(raw, manifests.UnitName)
	if err != nil {
		return ""
	}
	if enabled {
		return Encapsulated
	}
	ztp, err := ztpInConfig(raw)
	if err != nil {
		return ""
	}
	if ztp {
		return Encapsulated
	}
	return NotEncapsulated
}

// ztpConfig is the part of an Ignition 3.x config ztpInConfig reads,
// decoded generically like manifests.UnitEnabled does: the systemd.units
// shape is the same in every 3.x version.
type ztpConfig struct {
	Systemd struct {
		Units []struct {
			Name     string  `json:"name"`
			Enabled  *bool   `json:"enabled"`
			Mask     *bool   `json:"mask"`
			Contents *string `json:"contents"`
			Dropins  []struct {
				Name     string  `json:"name"`
				Contents *string `json:"contents"`
			} `json:"dropins"`
		} `json:"units"`
	} `json:"systemd"`
}

// ztpInConfig tells whether a config sets up container-mount-namespace.service.
// The unit has no [Install] section: crio and kubelet pull it in with
// Wants= from their drop-ins (90-container-mount-namespace.conf, earlier
// 20-...), and configs since 2023 leave out enabled: true. So it is there
// when the unit is defined (contents, or enabled: true) and not masked or
// set enabled: false, or when crio.service or kubelet.service has a
// *container-mount-namespace*.conf drop-in and the unit is not masked.
func ztpInConfig(raw []byte) (bool, error) {
	var cfg ztpConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return false, err
	}
	var defined, off, masked, dropin bool
	// Units may repeat before a merge; later entries win field by field.
	for _, u := range cfg.Systemd.Units {
		switch u.Name {
		case manifests.ZTPUnitName:
			if u.Contents != nil && *u.Contents != "" {
				defined = true
			}
			if u.Enabled != nil {
				off = !*u.Enabled
				defined = defined || *u.Enabled
			}
			if u.Mask != nil {
				masked = *u.Mask
			}
		case "kubelet.service", "crio.service":
			for _, d := range u.Dropins {
				if strings.Contains(d.Name, "container-mount-namespace") && strings.HasSuffix(d.Name, ".conf") &&
					d.Contents != nil && strings.TrimSpace(*d.Contents) != "" {
					dropin = true
				}
			}
		}
	}
	switch {
	case masked:
		return false, nil
	case dropin:
		return true, nil
	default:
		return defined && !off, nil
	}
}
