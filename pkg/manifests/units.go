package manifests

import (
	"encoding/json"
	"fmt"
	"strings"
)

// unitsOnly is the part of an Ignition 3.x config UnitEnabled needs. It is
// decoded generically on purpose: rendered MachineConfigs carry whatever 3.x
// version the operator writes (3.4.0, 3.5.0, ...), which the version-specific
// library parsers refuse, and the systemd.units shape is the same in all of them.
type unitsOnly struct {
	Ignition *struct {
		Version string `json:"version"`
	} `json:"ignition"`
	Systemd struct {
		Units []struct {
			Name    string `json:"name"`
			Enabled *bool  `json:"enabled"`
		} `json:"units"`
	} `json:"systemd"`
}

// UnitEnabled reads whether an Ignition 3.x config (JSON, e.g. the
// spec.config of a rendered MachineConfig) enables a systemd unit.
//
// found is true when the config lists the unit at all. A listed unit with no
// enabled field leaves the unit at its preset, which for kubens.service is
// disabled, so enabled is false then. If the unit appears more than once the
// last entry wins, as in the operator's merge.
func UnitEnabled(raw []byte, unit string) (enabled, found bool, err error) {
	if len(raw) == 0 {
		return false, false, fmt.Errorf("empty Ignition config")
	}
	var cfg unitsOnly
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return false, false, fmt.Errorf("parsing Ignition config: %w", err)
	}
	if cfg.Ignition == nil || cfg.Ignition.Version == "" {
		return false, false, fmt.Errorf("not an Ignition config: ignition.version is missing")
	}
	if !strings.HasPrefix(cfg.Ignition.Version, "3.") {
		return false, false, fmt.Errorf("unsupported Ignition version %q: want 3.x", cfg.Ignition.Version)
	}
	for _, u := range cfg.Systemd.Units {
		if u.Name != unit {
			continue
		}
		found = true
		enabled = u.Enabled != nil && *u.Enabled
	}
	return enabled, found, nil
}
