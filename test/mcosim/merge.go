package mcosim

import (
	"crypto/md5" //nolint:gosec // a name, not a security boundary: the real MCO uses md5 here too
	"encoding/json"
	"fmt"
	"sort"

	ign "github.com/coreos/ignition/v2/config/v3_5"
	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Label, annotation and state names the real MCO uses; kept here, not imported
// from the plugin, so the simulator stays an independent yardstick.
const (
	RoleLabel        = "machineconfiguration.openshift.io/role"
	BuiltInPoolLabel = "machineconfiguration.openshift.io/mco-built-in"

	CurrentConfigAnnotation = "machineconfiguration.openshift.io/currentConfig"
	DesiredConfigAnnotation = "machineconfiguration.openshift.io/desiredConfig"
	StateAnnotation         = "machineconfiguration.openshift.io/state"
	ReasonAnnotation        = "machineconfiguration.openshift.io/reason"

	// GeneratedByAnnotation is set on rendered configs, as the MCO sets
	// GeneratedByControllerVersionAnnotationKey.
	GeneratedByAnnotation = "machineconfiguration.openshift.io/generated-by-controller-version"
	// ReleaseImageVersionAnnotation is the other annotation the MCO puts on rendered configs.
	ReleaseImageVersionAnnotation = "machineconfiguration.openshift.io/release-image-version"

	StateDone           = "Done"
	StateWorking        = "Working"
	StateDegraded       = "Degraded"
	StateUnreconcilable = "Unreconcilable"

	// PostConfigActionAnnotation is set by the daemon to StateRebooting
	// just before it reboots a node, and set to "" when the node is back
	// (the MCO's MachineConfigDaemonPostConfigAction). The state annotation
	// stays Working meanwhile: the real daemon never writes state=Rebooting.
	PostConfigActionAnnotation = "machineconfiguration.openshift.io/post-config-action"
	// StateRebooting is the MCO's MachineConfigDaemonStateRebooting. Despite
	// its name it is only ever a value of PostConfigActionAnnotation.
	StateRebooting = "Rebooting"

	// DesiredDrainAnnotation is the daemon's request to the drain controller
	// ("drain-<config>" or "uncordon-<config>"), LastAppliedDrainAnnotation the
	// drain controller's answer once the request is done (the MCO's
	// DesiredDrainerAnnotationKey and LastAppliedDrainerAnnotationKey).
	DesiredDrainAnnotation     = "machineconfiguration.openshift.io/desiredDrain"
	LastAppliedDrainAnnotation = "machineconfiguration.openshift.io/lastAppliedDrain"
	// ControlPlaneTopologyAnnotation is the node controller's copy of the
	// cluster's controlPlaneTopology on each node, which the daemon reads to
	// decide whether to drain (ClusterControlPlaneTopologyAnnotationKey).
	ControlPlaneTopologyAnnotation = "machineconfiguration.openshift.io/controlPlaneTopology"

	drainVerbDrain    = "drain"    // DrainerStateDrain
	drainVerbUncordon = "uncordon" // DrainerStateUncordon

	// ZoneLabel orders the node controller's candidates (node_controller.go zoneLabel).
	ZoneLabel = "topology.kubernetes.io/zone"

	// KubensUnit is the unit whose enablement decides encapsulation on reboot.
	KubensUnit = "kubens.service"

	workerRole  = "worker"
	masterRole  = "master"
	arbiterRole = "arbiter"

	// controllerVersion stands in for the MCO's version.Hash.
	controllerVersion = "mcosim"
	releaseVersion    = "4.99.0-mcosim"
)

// sortForMerge orders MachineConfigs the way MergeMachineConfigs does: the
// worker-role configs first, then all others, each group by name. A custom
// pool (infra selecting role in (worker, infra)) thereby overrides worker
// settings with its own, whatever the names.
func sortForMerge(mcs []*mcfgv1.MachineConfig) []*mcfgv1.MachineConfig {
	var worker, other []*mcfgv1.MachineConfig
	for _, mc := range mcs {
		if mc.Labels[RoleLabel] == workerRole {
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

// mergeConfigs is MergeMachineConfigs: Ignition merged in sortForMerge
// order (later configs override fields of units, files and drop-ins with the
// same name; a config without an Ignition part is skipped, and the first
// one's absence leaves an empty 3.5 config), every file set to overwrite,
// kernel arguments and extensions concatenated, FIPS if any asks for it, the
// last non-default kernel type, and the last OS image a user config (not a
// generated one) sets.
func mergeConfigs(mcs []*mcfgv1.MachineConfig) (mcfgv1.MachineConfigSpec, error) {
	if len(mcs) == 0 {
		return mcfgv1.MachineConfigSpec{}, fmt.Errorf("no MachineConfigs to merge")
	}
	for _, mc := range mcs {
		if mc.Labels == nil {
			return mcfgv1.MachineConfigSpec{}, fmt.Errorf("cannot find label in MachineConfig %s", mc.Name)
		}
	}
	ordered := sortForMerge(mcs)
	out := igntypes.Config{Ignition: igntypes.Ignition{Version: igntypes.MaxVersion.String()}}
	for i, mc := range ordered {
		if mc.Spec.Config.Raw == nil {
			continue
		}
		cfg, err := parseAndConvert(mc.Spec.Config.Raw)
		if err != nil {
			return mcfgv1.MachineConfigSpec{}, err
		}
		if i == 0 {
			out = cfg
			continue
		}
		// Ignition merges a file's compression apart from its contents: a
		// later plain file would keep an earlier one's gzip. An explicit
		// empty compression overrides it; it goes back to unset after.
		for j := range cfg.Storage.Files {
			if cfg.Storage.Files[j].Contents.Compression == nil {
				empty := ""
				cfg.Storage.Files[j].Contents.Compression = &empty
			}
		}
		out = ign.Merge(out, cfg)
		for j := range out.Storage.Files {
			if c := out.Storage.Files[j].Contents.Compression; c != nil && *c == "" {
				out.Storage.Files[j].Contents.Compression = nil
			}
		}
	}
	// The MCO always overwrites files; make that explicit as it does.
	for i := range out.Storage.Files {
		if out.Storage.Files[i].Overwrite == nil {
			t := true
			out.Storage.Files[i].Overwrite = &t
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return mcfgv1.MachineConfigSpec{}, err
	}
	spec := mcfgv1.MachineConfigSpec{
		Config:          runtime.RawExtension{Raw: raw},
		KernelArguments: []string{},
		Extensions:      []string{},
		KernelType:      kernelTypeDefault,
	}
	for _, mc := range ordered {
		spec.KernelArguments = append(spec.KernelArguments, mc.Spec.KernelArguments...)
		spec.Extensions = append(spec.Extensions, mc.Spec.Extensions...)
		if mc.Spec.FIPS {
			spec.FIPS = true
		}
		if mc.Spec.KernelType == kernelTypeRealtime || mc.Spec.KernelType == kernelType64kPages {
			spec.KernelType = mc.Spec.KernelType
		}
		if mc.Annotations[GeneratedByAnnotation] != "" {
			// Only a user config (or a rendered one) may set the images.
			continue
		}
		if mc.Spec.OSImageURL != "" {
			spec.OSImageURL = mc.Spec.OSImageURL
		}
		if mc.Spec.BaseOSExtensionsContainerImage != "" {
			spec.BaseOSExtensionsContainerImage = mc.Spec.BaseOSExtensionsContainerImage
		}
	}
	if spec.KernelType != kernelTypeDefault {
		for _, e := range spec.Extensions {
			if e == "kernel-devel" {
				return mcfgv1.MachineConfigSpec{}, fmt.Errorf("installing kernel-devel extension is not supported with kernelType: %s", spec.KernelType)
			}
		}
	}
	return spec, nil
}

// renderedName is rendered-<pool>-<md5 of the merged spec>, the MCO's scheme:
// equal merged content gives an equal name, so an MC that changes nothing
// starts no rollout.
func renderedName(pool string, spec mcfgv1.MachineConfigSpec) (string, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(data) //nolint:gosec // see import
	return fmt.Sprintf("rendered-%s-%x", pool, sum), nil
}

// unitEnabled reports whether unit is enabled in a (merged) Ignition config.
func unitEnabled(raw []byte, unit string) (bool, error) {
	if raw == nil {
		return false, nil
	}
	cfg, err := parseAndConvert(raw)
	if err != nil {
		return false, err
	}
	for _, u := range cfg.Systemd.Units {
		if u.Name == unit {
			return u.Enabled != nil && *u.Enabled, nil
		}
	}
	return false, nil
}
