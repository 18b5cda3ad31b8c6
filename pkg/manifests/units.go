package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	v23tov30 "github.com/coreos/ign-converter/translate/v23tov30"
	ign2 "github.com/coreos/ignition/config/v2_2"
	ign2types "github.com/coreos/ignition/config/v2_2/types"
	ign23 "github.com/coreos/ignition/config/v2_3"
	ignerrors "github.com/coreos/ignition/v2/config/shared/errors"
	translate31 "github.com/coreos/ignition/v2/config/v3_1/translate"
	translate32 "github.com/coreos/ignition/v2/config/v3_2/translate"
	translate33 "github.com/coreos/ignition/v2/config/v3_3/translate"
	translate34 "github.com/coreos/ignition/v2/config/v3_4/translate"
	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	translate35 "github.com/coreos/ignition/v2/config/v3_5/translate"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// Config is an Ignition config in the newest spec this build reads (3.5),
// the form every MachineConfig is converted to before it is merged, as the
// MCO does (pkg/controller/common ParseAndConvertConfig).
type Config = ign3types.Config

// ParseConfig reads the spec.config of a MachineConfig the way the Machine
// Config Operator does: Ignition 3.0 to 3.5 are parsed and translated up to
// 3.5; 2.x configs (2.0 to 2.2, still accepted by the MCO and common in CI
// tooling and telco manifests) are parsed with the 2.2 library, their
// duplicate entries folded, then converted to 3.0 with ign-converter and
// translated up. An empty config is an empty 3.5 config.
//
// A 3.x config newer than 3.5 (a future rendered config) is not an error for
// the fields oc-kubens reads: its systemd units are decoded generically.
func ParseConfig(raw []byte) (Config, error) {
	if len(raw) == 0 {
		return emptyConfig(), nil
	}
	version, err := configVersion(raw)
	if err != nil {
		return Config{}, err
	}
	switch {
	case strings.HasPrefix(version, "2."):
		return parseV2(raw)
	case strings.HasPrefix(version, "3."):
		cfg, rpt, err := ign3.ParseCompatibleVersion(raw)
		if errors.Is(err, ignerrors.ErrUnknownVersion) {
			return unitsOfNewerConfig(raw, version)
		}
		if err != nil {
			return Config{}, fmt.Errorf("parsing Ignition %s config: %w%s", version, err, reportSuffix(rpt.String()))
		}
		return cfg, nil
	}
	return Config{}, fmt.Errorf("unsupported Ignition version %q: the Machine Config Operator reads 2.2 and 3.x", version)
}

func emptyConfig() Config {
	return Config{Ignition: ign3types.Ignition{Version: ign3types.MaxVersion.String()}}
}

func configVersion(raw []byte) (string, error) {
	var head struct {
		Ignition *struct {
			Version string `json:"version"`
		} `json:"ignition"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", fmt.Errorf("parsing Ignition config: %w", err)
	}
	if head.Ignition == nil || head.Ignition.Version == "" {
		return "", fmt.Errorf("not an Ignition config: ignition.version is missing")
	}
	return head.Ignition.Version, nil
}

func reportSuffix(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return " (" + strings.ReplaceAll(s, "\n", "; ") + ")"
}

// parseV2 converts a 2.x config to 3.5 along the MCO's path: 2.2 parse, 2.3
// translate (the converter's input), 3.0 conversion, then 3.x translates.
func parseV2(raw []byte) (Config, error) {
	cfg2, rpt, err := ign2.Parse(raw)
	if err != nil || rpt.IsFatal() {
		if err == nil {
			err = errors.New("invalid config")
		}
		return Config{}, fmt.Errorf("parsing Ignition 2.x config: %w%s", err, reportSuffix(rpt.String()))
	}
	cfg2 = foldV2Duplicates(cfg2)
	cfg30, err := v23tov30.Translate(ign23.Translate(cfg2), map[string]string{"root": "/"})
	if err != nil {
		return Config{}, fmt.Errorf("converting Ignition 2.x config to 3.0: %w", err)
	}
	return translate35.Translate(translate34.Translate(translate33.Translate(translate32.Translate(translate31.Translate(cfg30))))), nil
}

// foldV2Duplicates keeps the last entry of each file path, unit name and user
// name: Ignition 2 allowed repeats, spec 3 and its converter do not. As in
// the MCO, the drop-ins of an earlier entry of a unit are kept when the last
// entry does not carry one of the same name.
func foldV2Duplicates(cfg ign2types.Config) ign2types.Config {
	var files []ign2types.File
	seenFile := map[string]bool{}
	for i := len(cfg.Storage.Files) - 1; i >= 0; i-- {
		f := cfg.Storage.Files[i]
		if !seenFile[f.Path] {
			seenFile[f.Path] = true
			files = append([]ign2types.File{f}, files...)
		}
	}
	cfg.Storage.Files = files

	var units []ign2types.Unit
	at := map[string]int{}
	for i := len(cfg.Systemd.Units) - 1; i >= 0; i-- {
		u := cfg.Systemd.Units[i]
		j, dup := at[u.Name]
		if !dup {
			units = append([]ign2types.Unit{u}, units...)
			for k := range at {
				at[k]++
			}
			at[u.Name] = 0
			continue
		}
		for _, d := range u.Dropins {
			if !hasV2Dropin(units[j].Dropins, d.Name) {
				units[j].Dropins = append(units[j].Dropins, d)
			}
		}
	}
	cfg.Systemd.Units = units

	var users []ign2types.PasswdUser
	seenUser := map[string]bool{}
	for i := len(cfg.Passwd.Users) - 1; i >= 0; i-- {
		u := cfg.Passwd.Users[i]
		if !seenUser[u.Name] {
			seenUser[u.Name] = true
			users = append([]ign2types.PasswdUser{u}, users...)
		}
	}
	cfg.Passwd.Users = users
	return cfg
}

func hasV2Dropin(ds []ign2types.SystemdDropin, name string) bool {
	for _, d := range ds {
		if d.Name == name {
			return true
		}
	}
	return false
}

// unitsOfNewerConfig keeps only the systemd units of a 3.x config newer than
// this build knows; their shape has not changed since 3.0.
func unitsOfNewerConfig(raw []byte, version string) (Config, error) {
	var generic struct {
		Systemd ign3types.Systemd `json:"systemd"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		return Config{}, fmt.Errorf("parsing Ignition %s config: %w", version, err)
	}
	cfg := emptyConfig()
	cfg.Systemd = generic.Systemd
	return cfg, nil
}

// MergeConfigs merges configs in the order given with Ignition's own merge
// (the MCO's MergeMachineConfigs calls the same): for a unit listed twice the
// later entry wins field by field, and a field the later entry leaves unset
// (enabled, mask, contents) keeps the earlier value; drop-ins merge by name.
func MergeConfigs(cfgs []Config) Config {
	out := emptyConfig()
	for _, c := range cfgs {
		out = ign3.Merge(out, c)
	}
	return out
}

// UnitInfo is what a config says about one systemd unit.
type UnitInfo struct {
	// Listed is true when the config has an entry for the unit at all.
	Listed bool
	// Enabled is the entry's enabled field; nil when no entry sets it, which
	// leaves the unit at its preset (kubens.service ships disabled).
	Enabled     *bool
	Masked      bool
	HasContents bool
	Dropins     []string
}

// EnabledOn tells whether the unit ends up enabled.
func (u UnitInfo) EnabledOn() bool { return u.Enabled != nil && *u.Enabled && !u.Masked }

// Unit returns what cfg says about the named unit. A config with the unit
// listed twice (only possible before a merge) reads as the merge would.
func Unit(cfg Config, name string) UnitInfo {
	var info UnitInfo
	for _, u := range cfg.Systemd.Units {
		if u.Name != name {
			continue
		}
		info.Listed = true
		if u.Enabled != nil {
			info.Enabled = u.Enabled
		}
		if u.Mask != nil {
			info.Masked = *u.Mask
		}
		if u.Contents != nil && *u.Contents != "" {
			info.HasContents = true
		}
		for _, d := range u.Dropins {
			info.Dropins = append(info.Dropins, d.Name)
		}
	}
	return info
}

// ZTPPresent tells whether a config carries the telco (ZTP / RAN DU)
// encapsulation. container-mount-namespace.service has no [Install]
// section: crio and kubelet pull it in with Wants= from their drop-ins
// (90-container-mount-namespace.conf, earlier 20-...), and configs since 2023
// leave out enabled: true. So detection goes by presence, not by the flag:
// a non-empty *container-mount-namespace*.conf drop-in on kubelet or crio, or
// the unit defined (contents, or enabled: true) and not set enabled: false;
// never when the unit is masked.
func ZTPPresent(cfg Config) bool {
	ztp := Unit(cfg, ZTPUnitName)
	if ztp.Masked {
		return false
	}
	for _, u := range cfg.Systemd.Units {
		if u.Name != "kubelet.service" && u.Name != "crio.service" {
			continue
		}
		for _, d := range u.Dropins {
			if strings.Contains(path.Base(d.Name), "container-mount-namespace") && strings.HasSuffix(d.Name, ".conf") &&
				d.Contents != nil && strings.TrimSpace(*d.Contents) != "" {
				return true
			}
		}
	}
	off := ztp.Enabled != nil && !*ztp.Enabled
	return (ztp.HasContents || ztp.EnabledOn()) && !off
}

// ReadConfig is ParseConfig for reading facts out of a config that the
// operator already accepted (a rendered MachineConfig): a 3.x config that
// fails Ignition's validation is still read for its systemd units, where a
// unit listed twice reads as the merge would. ParseConfig stays strict for
// input configs, where a validation error is what makes the MCO refuse to
// render.
func ReadConfig(raw []byte) (Config, error) {
	cfg, err := ParseConfig(raw)
	if err == nil {
		return cfg, nil
	}
	if version, verr := configVersion(raw); verr == nil && strings.HasPrefix(version, "3.") {
		if cfg, uerr := unitsOfNewerConfig(raw, version); uerr == nil {
			return cfg, nil
		}
	}
	return Config{}, err
}

// UnitEnabled reads whether an Ignition config (JSON, e.g. the spec.config of
// a MachineConfig, any version ParseConfig reads) enables a systemd unit.
//
// found is true when the config lists the unit at all. A listed unit with no
// enabled field leaves the unit at its preset, which for kubens.service is
// disabled, so enabled is false then.
func UnitEnabled(raw []byte, unit string) (enabled, found bool, err error) {
	if len(raw) == 0 {
		return false, false, fmt.Errorf("empty Ignition config")
	}
	cfg, err := ReadConfig(raw)
	if err != nil {
		return false, false, err
	}
	u := Unit(cfg, unit)
	return u.EnabledOn(), u.Listed, nil
}
