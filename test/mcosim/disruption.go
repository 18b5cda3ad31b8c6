package mcosim

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The node disruption policy (OpenShift 4.17+): MachineConfiguration/cluster
// says, per unit, file path and for SSH keys, what the daemon does after
// writing a change instead of rebooting. Followed: pkg/daemon/update.go
// calculatePostConfigChangeNodeDisruptionAction and
// calculatePostConfigChangeNodeDisruptionActionFromMCDiffs, common/helpers.go
// FindClosestFilePolicyPathMatch.
//
// Simplified: the real daemon reads status.nodeDisruptionPolicyStatus
// (which the operator fills with its defaults merged with the spec) once
// the status has caught up; the simulator has no operator loop and reads
// spec.nodeDisruptionPolicy, without the operator's defaults. With no
// MachineConfiguration at all it reboots for every change, as it always did.

var rebootAction = []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.RebootStatusAction}}

// readDisruptionPolicy is spec.nodeDisruptionPolicy of
// MachineConfiguration/cluster; nil when there is no such object or CRD.
func (m *MCO) readDisruptionPolicy(ctx context.Context) (*opv1.NodeDisruptionPolicyConfig, error) {
	if m.op == nil {
		return nil, nil
	}
	mc, err := m.op.OperatorV1().MachineConfigurations().Get(ctx, "cluster", metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &mc.Spec.NodeDisruptionPolicy, nil
}

// disruptionActions is what the daemon does after writing the change from
// oldSpec to newSpec under policy (nil: no policy, always Reboot).
func disruptionActions(oldSpec, newSpec mcfgv1.MachineConfigSpec, policy *opv1.NodeDisruptionPolicyConfig) ([]opv1.NodeDisruptionPolicyStatusAction, error) {
	if policy == nil {
		return rebootAction, nil
	}
	oldRest, newRest := oldSpec.DeepCopy(), newSpec.DeepCopy()
	oldRest.Config, newRest.Config = runtime.RawExtension{}, runtime.RawExtension{}
	if !reflect.DeepEqual(oldRest, newRest) {
		// OS image, kernel arguments, FIPS, kernel type, extensions.
		return rebootAction, nil
	}
	oldCfg, err := parseAndConvert(oldSpec.Config.Raw)
	if err != nil {
		return nil, err
	}
	newCfg, err := parseAndConvert(newSpec.Config.Raw)
	if err != nil {
		return nil, err
	}
	files, units := changedFiles(oldCfg, newCfg), changedUnits(oldCfg, newCfg)
	sshChanged := !reflect.DeepEqual(oldCfg.Passwd, newCfg.Passwd)
	if len(files) == 0 && len(units) == 0 && !sshChanged {
		return []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.NoneStatusAction}}, nil
	}
	var actions []opv1.NodeDisruptionPolicyStatusAction
	for _, f := range files {
		a, ok := closestFileActions(f, policy.Files)
		if !ok {
			return rebootAction, nil
		}
		actions = append(actions, a...)
	}
	for _, u := range units {
		found := false
		for _, pu := range policy.Units {
			if string(pu.Name) == u {
				actions = append(actions, specToStatus(pu.Actions)...)
				found = true
				break
			}
		}
		if !found {
			return rebootAction, nil
		}
	}
	if sshChanged {
		actions = append(actions, specToStatus(policy.SSHKey.Actions)...)
	}
	if hasActionType(actions, opv1.RebootStatusAction) {
		return rebootAction, nil
	}
	var out []opv1.NodeDisruptionPolicyStatusAction
	for _, a := range actions {
		if a.Type != opv1.NoneStatusAction {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.NoneStatusAction}}
	}
	return out, nil
}

func specToStatus(in []opv1.NodeDisruptionPolicySpecAction) []opv1.NodeDisruptionPolicyStatusAction {
	out := make([]opv1.NodeDisruptionPolicyStatusAction, 0, len(in))
	for _, a := range in {
		s := opv1.NodeDisruptionPolicyStatusAction{Type: opv1.NodeDisruptionPolicyStatusActionType(a.Type)}
		if a.Reload != nil {
			s.Reload = &opv1.ReloadService{ServiceName: a.Reload.ServiceName}
		}
		if a.Restart != nil {
			s.Restart = &opv1.RestartService{ServiceName: a.Restart.ServiceName}
		}
		out = append(out, s)
	}
	return out
}

func hasActionType(actions []opv1.NodeDisruptionPolicyStatusAction, t opv1.NodeDisruptionPolicyStatusActionType) bool {
	for _, a := range actions {
		if a.Type == t {
			return true
		}
	}
	return false
}

// closestFileActions is FindClosestFilePolicyPathMatch: the entry for the
// path itself or its longest parent directory.
func closestFileActions(path string, files []opv1.NodeDisruptionPolicySpecFile) ([]opv1.NodeDisruptionPolicyStatusAction, bool) {
	best, found := -1, false
	for i, f := range files {
		if path == f.Path || strings.HasPrefix(filepath.Clean(path), filepath.Clean(f.Path)+"/") {
			if best < 0 || len(f.Path) > len(files[best].Path) {
				best, found = i, true
			}
		}
	}
	if !found {
		return nil, false
	}
	return specToStatus(files[best].Actions), true
}

// changedFiles is CalculateConfigFileDiffs: paths added, removed or changed.
func changedFiles(oldCfg, newCfg igntypes.Config) []string {
	old := map[string]igntypes.File{}
	for _, f := range oldCfg.Storage.Files {
		old[f.Path] = f
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range newCfg.Storage.Files {
		seen[f.Path] = true
		if o, ok := old[f.Path]; !ok || !reflect.DeepEqual(o, f) {
			out = append(out, f.Path)
		}
	}
	for _, f := range oldCfg.Storage.Files {
		if !seen[f.Path] {
			out = append(out, f.Path)
		}
	}
	return out
}

// changedUnits is the names of GetChangedConfigUnitsByType's Added, Updated
// and Removed: a unit differing in anything (enabled, mask, contents,
// drop-ins) counts.
func changedUnits(oldCfg, newCfg igntypes.Config) []string {
	var out []string
	for _, u := range addedOrChangedUnits(oldCfg, newCfg) {
		out = append(out, u.Name)
	}
	inNew := map[string]bool{}
	for _, u := range newCfg.Systemd.Units {
		inNew[u.Name] = true
	}
	for _, u := range oldCfg.Systemd.Units {
		if !inNew[u.Name] {
			out = append(out, u.Name)
		}
	}
	return out
}

// describeActions is the actions for the log: "None", "Restart crio.service".
func describeActions(actions []opv1.NodeDisruptionPolicyStatusAction) string {
	parts := make([]string, 0, len(actions))
	for _, a := range actions {
		s := string(a.Type)
		switch {
		case a.Reload != nil:
			s += " " + string(a.Reload.ServiceName)
		case a.Restart != nil:
			s += " " + string(a.Restart.ServiceName)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// runDisruptionActions is performPostConfigChangeNodeDisruptionAction for
// a machine: reload, restart or daemon-reload through its systemd. Nodes
// that are only objects have nothing to run.
func runDisruptionActions(ctx context.Context, mach hostedMachine, isMachine bool, actions []opv1.NodeDisruptionPolicyStatusAction) error {
	if !isMachine {
		return nil
	}
	for _, a := range actions {
		var args []string
		switch {
		case a.Type == opv1.ReloadStatusAction && a.Reload != nil:
			args = []string{"reload", string(a.Reload.ServiceName)}
		case a.Type == opv1.RestartStatusAction && a.Restart != nil:
			args = []string{"restart", string(a.Restart.ServiceName)}
		case a.Type == opv1.DaemonReloadStatusAction:
			args = []string{"daemon-reload"}
		default:
			continue
		}
		if err := mach.Systemctl(ctx, args...); err != nil {
			return fmt.Errorf("node disruption action %s: %w", describeActions([]opv1.NodeDisruptionPolicyStatusAction{a}), err)
		}
	}
	return nil
}
