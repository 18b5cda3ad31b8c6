package change

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	opv1 "github.com/openshift/api/operator/v1"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MachineConfigurationName is the one MachineConfiguration the Machine
// Config Operator reads (operator.openshift.io/v1, cluster-scoped).
const MachineConfigurationName = "cluster"

// DisruptionPolicy is the node disruption policy of MachineConfiguration/cluster
// (OpenShift 4.17+): per systemd unit and per file path, what the Machine
// Config Daemon does after writing a change instead of rebooting.
type DisruptionPolicy struct {
	// Known is false when the object could not be read (Unknown says why);
	// a missing object or a cluster without the CRD is known: no policy,
	// every change reboots.
	Known   bool
	Unknown string
	Units   []opv1.NodeDisruptionPolicyStatusUnit
	Files   []opv1.NodeDisruptionPolicyStatusFile
}

// ReadDisruptionPolicy reads MachineConfiguration/cluster. No object and no
// CRD (clusters before 4.16) mean no policy; no permission to read it gives
// a policy that is not Known, not an error, so that the plan can say so.
// Other errors (the API server gone) are returned.
func ReadDisruptionPolicy(ctx context.Context, c operatorclient.Interface) (DisruptionPolicy, error) {
	if c == nil {
		return DisruptionPolicy{Unknown: "no client for operator.openshift.io"}, nil
	}
	mc, err := c.OperatorV1().MachineConfigurations().Get(ctx, MachineConfigurationName, metav1.GetOptions{})
	switch {
	case err == nil:
		return PolicyOf(mc), nil
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return DisruptionPolicy{Known: true}, nil
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return DisruptionPolicy{Unknown: "not allowed to read machineconfigurations.operator.openshift.io/cluster"}, nil
	}
	return DisruptionPolicy{}, fmt.Errorf("reading MachineConfiguration/%s (node disruption policy): %w", MachineConfigurationName, err)
}

// PolicyOf is the policy the daemon will apply. The daemon uses
// status.nodeDisruptionPolicyStatus.clusterPolicies (the operator's merge of
// its defaults and spec.nodeDisruptionPolicy), and waits until the status
// has caught up with the spec. So when the status is current it is the
// answer; when it lags, the spec entries are laid over it (spec wins for a
// unit or path, as in the operator's merge), since that is where the status
// is going.
func PolicyOf(mc *opv1.MachineConfiguration) DisruptionPolicy {
	st := mc.Status.NodeDisruptionPolicyStatus.ClusterPolicies
	p := DisruptionPolicy{Known: true, Units: st.Units, Files: st.Files}
	if mc.Status.ObservedGeneration == mc.Generation && (len(st.Units)+len(st.Files) > 0 || len(st.SSHKey.Actions) > 0) {
		return p
	}
	spec := mc.Spec.NodeDisruptionPolicy
	units := map[string]int{}
	p.Units = append([]opv1.NodeDisruptionPolicyStatusUnit(nil), p.Units...)
	for i, u := range p.Units {
		units[string(u.Name)] = i
	}
	for _, u := range spec.Units {
		su := opv1.NodeDisruptionPolicyStatusUnit{Name: u.Name, Actions: statusActions(u.Actions)}
		if i, ok := units[string(u.Name)]; ok {
			p.Units[i] = su
		} else {
			p.Units = append(p.Units, su)
		}
	}
	files := map[string]int{}
	p.Files = append([]opv1.NodeDisruptionPolicyStatusFile(nil), p.Files...)
	for i, f := range p.Files {
		files[f.Path] = i
	}
	for _, f := range spec.Files {
		sf := opv1.NodeDisruptionPolicyStatusFile{Path: f.Path, Actions: statusActions(f.Actions)}
		if i, ok := files[f.Path]; ok {
			p.Files[i] = sf
		} else {
			p.Files = append(p.Files, sf)
		}
	}
	return p
}

func statusActions(in []opv1.NodeDisruptionPolicySpecAction) []opv1.NodeDisruptionPolicyStatusAction {
	out := make([]opv1.NodeDisruptionPolicyStatusAction, 0, len(in))
	for _, a := range in {
		sa := opv1.NodeDisruptionPolicyStatusAction{Type: opv1.NodeDisruptionPolicyStatusActionType(a.Type)}
		if a.Reload != nil {
			sa.Reload = &opv1.ReloadService{ServiceName: a.Reload.ServiceName}
		}
		if a.Restart != nil {
			sa.Restart = &opv1.RestartService{ServiceName: a.Restart.ServiceName}
		}
		out = append(out, sa)
	}
	return out
}

// Disruption is what the Machine Config Daemon does to a node after writing
// one change, by the node disruption policy.
type Disruption struct {
	// Known is false when the policy could not be read (Unknown says why):
	// the nodes reboot unless a policy nobody could read says otherwise.
	Known   bool
	Unknown string
	// Actions are the effective actions, reduced the way the daemon reduces
	// them (calculatePostConfigChangeNodeDisruptionActionFromMCDiffs): any
	// Reboot or any change no policy covers is a single Reboot; None next
	// to other actions is dropped.
	Actions []opv1.NodeDisruptionPolicyStatusAction
	// Matched names the policy entries that decided it ("unit
	// kubens.service"), empty when the default Reboot did.
	Matched []string
}

// Reboots tells whether the nodes reboot (also when the policy is unknown:
// that is the default the daemon falls back to without a policy).
func (d Disruption) Reboots() bool {
	return len(d.Actions) == 0 || hasAction(d.Actions, opv1.RebootStatusAction)
}

// Describe is the actions in one phrase: "Reboot", "None", "Restart
// kubens.service, Drain".
func (d Disruption) Describe() string {
	if d.Reboots() {
		return string(opv1.RebootStatusAction)
	}
	parts := make([]string, 0, len(d.Actions))
	for _, a := range d.Actions {
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

func hasAction(actions []opv1.NodeDisruptionPolicyStatusAction, t opv1.NodeDisruptionPolicyStatusActionType) bool {
	for _, a := range actions {
		if a.Type == t {
			return true
		}
	}
	return false
}

var rebootOnly = []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.RebootStatusAction}}

// For is the disruption of a change to these units (added, removed or
// changed, drop-ins included: the daemon diffs whole units) and file paths,
// as the daemon computes it: units by exact name, files by the closest
// policy path (the path itself or its longest parent directory).
func (p DisruptionPolicy) For(units, files []string) Disruption {
	if !p.Known {
		return Disruption{Unknown: p.Unknown, Actions: rebootOnly}
	}
	d := Disruption{Known: true}
	var actions []opv1.NodeDisruptionPolicyStatusAction
	for _, f := range files {
		match, ok := closestFilePolicy(f, p.Files)
		if !ok {
			d.Actions, d.Matched = rebootOnly, nil
			return d
		}
		d.Matched = append(d.Matched, "file "+match.Path)
		actions = append(actions, match.Actions...)
	}
	for _, u := range units {
		found := false
		for _, pu := range p.Units {
			if string(pu.Name) == u {
				d.Matched = append(d.Matched, "unit "+u)
				actions = append(actions, pu.Actions...)
				found = true
				break
			}
		}
		if !found {
			d.Actions, d.Matched = rebootOnly, nil
			return d
		}
	}
	switch {
	case len(actions) == 0 || hasAction(actions, opv1.RebootStatusAction):
		d.Actions = rebootOnly
	case hasAction(actions, opv1.NoneStatusAction):
		for _, a := range actions {
			if a.Type != opv1.NoneStatusAction {
				d.Actions = append(d.Actions, a)
			}
		}
		if len(d.Actions) == 0 {
			d.Actions = []opv1.NodeDisruptionPolicyStatusAction{{Type: opv1.NoneStatusAction}}
		}
	default:
		d.Actions = actions
	}
	return d
}

// closestFilePolicy is the MCO's FindClosestFilePolicyPathMatch: the entry
// for the path itself or for its longest parent directory.
func closestFilePolicy(path string, files []opv1.NodeDisruptionPolicyStatusFile) (opv1.NodeDisruptionPolicyStatusFile, bool) {
	var best opv1.NodeDisruptionPolicyStatusFile
	found := false
	for _, f := range files {
		dir := filepath.Clean(f.Path) + "/"
		if (path == f.Path || strings.HasPrefix(filepath.Clean(path), dir)) && len(f.Path) > len(best.Path) {
			best, found = f, true
		}
	}
	return best, found
}

// DisruptionError: the node disruption policy gives the change an action
// other than Reboot, so the Machine Config Operator would mark the nodes
// updated without rebooting them, and kubelet and CRI-O would stay in the
// mount namespace they were started in.
type DisruptionError struct {
	Verb       string
	Disruption Disruption
	Pools      []string
}

func (e *DisruptionError) Error() string {
	return fmt.Sprintf("the node disruption policy gives %s the action %s: nodes of pool %s would not reboot",
		strings.Join(e.Disruption.Matched, ", "), e.Disruption.Describe(), strings.Join(e.Pools, ", "))
}
