package mcosim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"

	v23tov30 "github.com/coreos/ign-converter/translate/v23tov30"
	ign2errors "github.com/coreos/ignition/config/shared/errors"
	ign2 "github.com/coreos/ignition/config/v2_2"
	ign2types "github.com/coreos/ignition/config/v2_2/types"
	ign23 "github.com/coreos/ignition/config/v2_3"
	ign2validate "github.com/coreos/ignition/config/validate"
	ign3errors "github.com/coreos/ignition/v2/config/shared/errors"
	v31translate "github.com/coreos/ignition/v2/config/v3_1/translate"
	v32translate "github.com/coreos/ignition/v2/config/v3_2/translate"
	v33translate "github.com/coreos/ignition/v2/config/v3_3/translate"
	v34translate "github.com/coreos/ignition/v2/config/v3_4/translate"
	ign "github.com/coreos/ignition/v2/config/v3_5"
	v35translate "github.com/coreos/ignition/v2/config/v3_5/translate"
	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	ign3validate "github.com/coreos/ignition/v2/config/validate"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
)

// This file is the simulator's counterpart of the MCO's Ignition handling in
// pkg/controller/common (helpers.go and ignition_converter.go): which spec
// versions a MachineConfig may use, how a 2.2 config becomes a 3.5 one, and
// what ValidateMachineConfig refuses. The error texts are the MCO's, since
// they end up in the pool's RenderDegraded message.

// supportedSpecVersions is what the MCO's converter lists in its "unknown
// version" errors (GetSupportedMinorVersions, sorted, joined by commas).
const supportedSpecVersions = "2.2,3.0,3.1,3.2,3.3,3.4,3.5"

// maxMachineConfigSize is the MCO's MaxMachineConfigSize: etcd's default
// request limit of 1.5 MiB, checked against the rendered config's JSON.
const maxMachineConfigSize = 1572864

// Kernel types a MachineConfig may ask for (the MCO's KernelType* constants).
const (
	kernelTypeDefault  = "default"
	kernelTypeRealtime = "realtime"
	kernelType64kPages = "64k-pages"
)

// supportedExtensions are the RHCOS extensions the MCO accepts (the keys of
// its SupportedExtensions map).
var supportedExtensions = map[string]bool{
	"two-node-ha":          true,
	"ipsec":                true,
	"usbguard":             true,
	"kerberos":             true,
	"kernel-devel":         true,
	"sandboxed-containers": true,
	"sysstat":              true,
}

// parseAnySpec is IgnParseWrapper: a 3.x config (any minor up to 3.5,
// upgraded to 3.5) as igntypes.Config, else a 2.2 config as ign2types.Config.
func parseAnySpec(raw []byte) (any, error) {
	cfg3, rpt3, err3 := ign.ParseCompatibleVersion(raw)
	if err3 == nil && !rpt3.IsFatal() {
		return cfg3, nil
	}
	if err3 == nil {
		// A fatal report without an error does not happen with the
		// Ignition releases the MCO uses; say so rather than guess.
		return igntypes.Config{}, fmt.Errorf("parsing Ignition config spec v3 failed with error: %v\nReport: %v", err3, rpt3)
	}
	if sameError(err3, ign3errors.ErrInvalidVersion) {
		return igntypes.Config{}, fmt.Errorf("parsing Ignition config failed: invalid version. Supported spec versions: %s", supportedSpecVersions)
	}
	if !sameError(err3, ign3errors.ErrUnknownVersion) {
		return igntypes.Config{}, fmt.Errorf("parsing Ignition config spec v3 failed with error: %v\nReport: %v", err3, rpt3)
	}
	cfg2, rpt2, err2 := ign2.Parse(raw)
	if err2 == nil && !rpt2.IsFatal() {
		return cfg2, nil
	}
	if err2 != nil && sameError(err2, ign2errors.ErrUnknownVersion) {
		return igntypes.Config{}, fmt.Errorf("parsing Ignition config failed: unknown version. Supported spec versions: %s", supportedSpecVersions)
	}
	return igntypes.Config{}, fmt.Errorf("parsing Ignition spec v2 failed with error: %v\nReport: %v", err2, rpt2)
}

// sameError compares by text too, as the MCO does: the two Ignition modules
// have their own error values with the same messages.
func sameError(err, target error) bool {
	return errors.Is(err, target) || err.Error() == target.Error()
}

// parseAndConvert is ParseAndConvertConfig: any supported config as 3.5. A
// 2.2 config first loses its duplicate files, units and users (spec 3
// forbids them within one config), then is translated 2.2 -> 2.3 -> 3.0 ->
// 3.1 -> ... -> 3.5, the path the MCO's converter takes.
func parseAndConvert(raw []byte) (igntypes.Config, error) {
	parsed, err := parseAnySpec(raw)
	if err != nil {
		return igntypes.Config{}, fmt.Errorf("failed to parse Ignition config: %w", err)
	}
	switch cfg := parsed.(type) {
	case igntypes.Config:
		return cfg, nil
	case ign2types.Config:
		deduped, err := dedupeV2(cfg)
		if err != nil {
			return igntypes.Config{}, err
		}
		out, err := convertV2(deduped)
		if err != nil {
			return igntypes.Config{}, fmt.Errorf("failed to convert Ignition config spec v2 to v3: %w", err)
		}
		return out, nil
	default:
		return igntypes.Config{}, fmt.Errorf("unexpected type for ignition config: %T", parsed)
	}
}

// convertV2 translates a 2.2 config to 3.5. Files of the "root" filesystem
// land under /, the only filesystem MachineConfigs may write to.
func convertV2(cfg ign2types.Config) (igntypes.Config, error) {
	v30, err := v23tov30.Translate(ign23.Translate(cfg), map[string]string{"root": "/"})
	if err != nil {
		return igntypes.Config{}, fmt.Errorf("unable to convert Ignition spec v2 config to v3: %w", err)
	}
	v32 := v32translate.Translate(v31translate.Translate(v30))
	return v35translate.Translate(v34translate.Translate(v33translate.Translate(v32))), nil
}

// dedupeV2 is removeIgnDuplicateFilesUnitsUsers. Going from the last entry
// to the first, the last file of a path and the last unit of a name win;
// the drop-ins of an earlier unit of the same name are added to the winner
// unless it has one of that name. The results come out in that reversed
// order, as they do in the MCO (which the rendered config's name depends on).
// Users must all be "core"; their SSH keys are gathered into one user, the
// last one's keys first, without repeats.
func dedupeV2(cfg ign2types.Config) (ign2types.Config, error) {
	var files []ign2types.File
	seenPath := map[string]bool{}
	for i := len(cfg.Storage.Files) - 1; i >= 0; i-- {
		f := cfg.Storage.Files[i]
		if seenPath[f.Path] {
			continue
		}
		seenPath[f.Path] = true
		files = append(files, f)
	}

	var units []ign2types.Unit
	unitAt := map[string]int{}
	for i := len(cfg.Systemd.Units) - 1; i >= 0; i-- {
		u := cfg.Systemd.Units[i]
		j, dup := unitAt[u.Name]
		if !dup {
			unitAt[u.Name] = len(units)
			units = append(units, u)
			continue
		}
		for _, d := range u.Dropins {
			has := false
			for _, have := range units[j].Dropins {
				if have.Name == d.Name {
					has = true
					break
				}
			}
			if !has {
				units[j].Dropins = append(units[j].Dropins, d)
			}
		}
	}

	if n := len(cfg.Passwd.Users); n > 0 {
		user := cfg.Passwd.Users[n-1]
		if user.Name != "core" {
			return cfg, fmt.Errorf("unexpected user with name: %v. Only core user is supported", user.Name)
		}
		keys := append([]ign2types.SSHAuthorizedKey(nil), user.SSHAuthorizedKeys...)
		for i := n - 2; i >= 0; i-- {
			if cfg.Passwd.Users[i].Name != "core" {
				return cfg, fmt.Errorf("unexpected user with name: %v. Only core user is supported", cfg.Passwd.Users[i].Name)
			}
			keys = append(keys, cfg.Passwd.Users[i].SSHAuthorizedKeys...)
		}
		seenKey := map[ign2types.SSHAuthorizedKey]bool{}
		unique := []ign2types.SSHAuthorizedKey{}
		for _, k := range keys {
			if !seenKey[k] {
				seenKey[k] = true
				unique = append(unique, k)
			}
		}
		user.SSHAuthorizedKeys = unique
		cfg.Passwd.Users = []ign2types.PasswdUser{user}
	}

	cfg.Storage.Files = files
	cfg.Systemd.Units = units
	return cfg, nil
}

// validateIgnition is ValidateIgnition: an entirely empty config is valid
// (MachineConfigs that only set kernel arguments); otherwise Ignition's own
// validation, then file modes without the setuid, setgid and sticky bits.
func validateIgnition(parsed any) error {
	switch cfg := parsed.(type) {
	case ign2types.Config:
		if reflect.DeepEqual(cfg, ign2types.Config{}) {
			return nil
		}
		if rpt := ign2validate.ValidateWithoutSource(reflect.ValueOf(cfg)); rpt.IsFatal() {
			return fmt.Errorf("invalid ignition V2 config found: %v", rpt)
		}
		for _, f := range cfg.Storage.Files {
			if err := checkMode(f.Mode, f.Path); err != nil {
				return err
			}
		}
		return nil
	case igntypes.Config:
		if reflect.DeepEqual(cfg, igntypes.Config{}) {
			return nil
		}
		if rpt := ign3validate.ValidateWithContext(cfg, nil); rpt.IsFatal() {
			return fmt.Errorf("invalid ignition V3 config found: %v", rpt)
		}
		for _, f := range cfg.Storage.Files {
			if err := checkMode(f.Mode, f.Path); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unrecognized ignition type")
	}
}

func checkMode(mode *int, path string) error {
	if mode != nil && os.FileMode(*mode) > os.ModePerm { //nolint:gosec // a mode from the config, compared only
		return fmt.Errorf("invalid mode %#o for %s, cannot exceed %#o", *mode, path, uint32(os.ModePerm))
	}
	return nil
}

// validateMachineConfig is ValidateMachineConfig, run on every selected
// config before the merge: the kernel type, then, for a config with an
// Ignition part, that it parses and validates and that its extensions are
// supported (the MCO checks extensions only when there is an Ignition part).
func validateMachineConfig(spec mcfgv1.MachineConfigSpec) error {
	switch spec.KernelType {
	case "", kernelTypeDefault, kernelTypeRealtime, kernelType64kPages:
	default:
		return fmt.Errorf("kernelType=%s is invalid", spec.KernelType)
	}
	if spec.Config.Raw == nil {
		return nil
	}
	parsed, err := parseAnySpec(spec.Config.Raw)
	if err != nil {
		return err
	}
	if err := validateIgnition(parsed); err != nil {
		return err
	}
	var invalid []string
	for _, e := range spec.Extensions {
		if !supportedExtensions[e] {
			invalid = append(invalid, e)
		}
	}
	if len(invalid) > 0 {
		return fmt.Errorf("invalid extensions found: %v", invalid)
	}
	return nil
}

// validateRenderedSize is ValidateMachineConfigSize: the rendered config as
// JSON (as the MCO has it: no apiVersion and kind) must fit etcd's limit.
func validateRenderedSize(mc *mcfgv1.MachineConfig) error {
	cp := *mc
	cp.TypeMeta = mcfgv1.MachineConfig{}.TypeMeta
	data, err := json.Marshal(&cp)
	if err != nil {
		return fmt.Errorf("failed to marshal MachineConfig: %w", err)
	}
	if len(data) > maxMachineConfigSize {
		return fmt.Errorf("rendered MachineConfig %s is too large (%d bytes, max %d bytes). "+
			"This will exceed etcd's size limit. Consider reducing the number or size of MachineConfigs, "+
			"particularly large registry mirror configurations (ImageDigestMirrorSet/ImageContentSourcePolicy)",
			mc.Name, len(data), maxMachineConfigSize)
	}
	return nil
}
