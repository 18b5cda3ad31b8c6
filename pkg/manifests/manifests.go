// Package manifests renders the MachineConfigs that switch mount namespace
// encapsulation on or off, validates them with the Ignition library the
// Machine Config Operator itself uses, and reads unit state back out of
// (rendered) Ignition configs.
package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	ignerrors "github.com/coreos/ignition/v2/config/shared/errors"
	ign32 "github.com/coreos/ignition/v2/config/v3_2"
	"github.com/coreos/vcontext/report"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// UnitName is the systemd unit every RHCOS node ships, disabled, that pins
	// the private mount namespace for kubelet and CRI-O.
	UnitName = "kubens.service"
	// ZTPUnitName is the unit telco (ZTP / RAN DU) clusters use for the same
	// purpose; when it runs, kubens.service stays inactive.
	ZTPUnitName = "container-mount-namespace.service"
	// RoleLabel is the label MachineConfigPools select MachineConfigs by.
	RoleLabel = "machineconfiguration.openshift.io/role"
	// ManagedByLabel marks the MachineConfigs oc-kubens owns, so that enable,
	// disable and status can tell them from hand-made ones.
	ManagedByLabel = "oc-kubens.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on our objects.
	ManagedByValue = "oc-kubens"
	// IgnitionVersion is the Ignition spec version of the rendered configs: the
	// one the product documentation uses, which every supported MCO accepts.
	IgnitionVersion = "3.2.0"

	namePrefix = "99-kubens-"
)

// Name returns the MachineConfig name for a role, as in the product
// documentation: 99-kubens-<role>. The 99 prefix sorts it after the
// operator's own configs so its unit setting wins the merge.
func Name(role string) string { return namePrefix + role }

// ValidateRole reports whether role can be used as a pool role: it ends up
// both in a label value and in an object name, so it must be a lowercase
// RFC 1123 label (like master, worker, arbiter, infra).
func ValidateRole(role string) error {
	if role == "" {
		return errors.New("role must not be empty (pool roles look like master, worker, infra)")
	}
	if errs := validation.IsDNS1123Label(role); len(errs) > 0 {
		return fmt.Errorf("invalid role %q: must be a lowercase RFC 1123 label "+
			"(a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters), like infra or worker-cnf", role)
	}
	return nil
}

// RenderOptions says which MachineConfigs Render produces.
type RenderOptions struct {
	// Roles to render one MachineConfig for. Empty means master and worker,
	// the two pools every OpenShift cluster has.
	// Duplicates are dropped and the result is sorted by role, so the
	// output does not depend on flag order.
	Roles []string
	// Enabled is the value of kubens.service's enabled flag: true turns
	// encapsulation on, false renders the explicit turn-it-off variant.
	Enabled bool
}

// ignitionConfig is the subset of an Ignition 3.2 config we emit. The
// library's own types.Config would serialise every empty section
// ("passwd": {}, "storage": {}, ...); this keeps spec.config identical to the
// documented procedure. Validate still runs the full library parser on it.
type ignitionConfig struct {
	Ignition struct {
		Version string `json:"version"`
	} `json:"ignition"`
	Systemd struct {
		Units []ignitionUnit `json:"units"`
	} `json:"systemd"`
}

type ignitionUnit struct {
	Enabled *bool  `json:"enabled,omitempty"`
	Name    string `json:"name"`
}

// Render returns one validated MachineConfig per role, sorted by role.
func Render(o RenderOptions) ([]*mcfgv1.MachineConfig, error) {
	roles := o.Roles
	if len(roles) == 0 {
		roles = []string{"master", "worker"}
	}
	roles = slices.Clone(roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)

	mcs := make([]*mcfgv1.MachineConfig, 0, len(roles))
	for _, role := range roles {
		if err := ValidateRole(role); err != nil {
			return nil, err
		}
		mc, err := renderOne(role, o.Enabled)
		if err != nil {
			return nil, err
		}
		if err := Validate(mc); err != nil {
			return nil, err
		}
		mcs = append(mcs, mc)
	}
	return mcs, nil
}

func renderOne(role string, enabled bool) (*mcfgv1.MachineConfig, error) {
	var cfg ignitionConfig
	cfg.Ignition.Version = IgnitionVersion
	cfg.Systemd.Units = []ignitionUnit{{Enabled: &enabled, Name: UnitName}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding Ignition config for role %q: %w", role, err)
	}
	return &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{
			APIVersion: mcfgv1.GroupVersion.String(),
			Kind:       "MachineConfig",
		},
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(role),
			Labels: map[string]string{
				RoleLabel:      role,
				ManagedByLabel: ManagedByValue,
			},
		},
		Spec: mcfgv1.MachineConfigSpec{
			Config: runtime.RawExtension{Raw: raw},
		},
	}, nil
}

// Validate checks a kubens MachineConfig: its role label and its Ignition
// config, with the coreos Ignition v3.2 parser and validator (the API server
// never looks inside spec.config, so a bad config would only surface later as
// a degraded pool). Errors name the field path, e.g.
// spec.config.systemd.units[0].name.
func Validate(mc *mcfgv1.MachineConfig) error {
	if mc == nil {
		return errors.New("no MachineConfig given")
	}
	prefix := fmt.Sprintf("MachineConfig %q: ", mc.Name)
	if mc.Name == "" {
		return errors.New("MachineConfig: metadata.name: must not be empty")
	}
	role, ok := mc.Labels[RoleLabel]
	if !ok {
		return fmt.Errorf("%smetadata.labels[%s]: missing, so no pool would select it", prefix, RoleLabel)
	}
	if err := ValidateRole(role); err != nil {
		return fmt.Errorf("%smetadata.labels[%s]: %w", prefix, RoleLabel, err)
	}
	raw := mc.Spec.Config.Raw
	if len(raw) == 0 {
		return fmt.Errorf("%sspec.config: empty Ignition config", prefix)
	}
	_, rpt, err := ign32.Parse(raw)
	if err != nil || rpt.IsFatal() {
		return fmt.Errorf("%s%s", prefix, describeIgnitionFailure(rpt, err))
	}
	return nil
}

// describeIgnitionFailure turns the library's report into one line of
// "path: message" entries. Paths are rooted at spec.config so the user can
// find the field in the MachineConfig, not in the embedded document.
func describeIgnitionFailure(rpt report.Report, err error) string {
	var parts []string
	for _, e := range rpt.Entries {
		if !e.Kind.IsFatal() {
			continue
		}
		parts = append(parts, fieldPath(e.Context.Path)+": "+e.Message)
	}
	if len(parts) == 0 {
		switch {
		case errors.Is(err, ignerrors.ErrUnknownVersion):
			return fmt.Sprintf("spec.config.ignition.version: must be %s: %v", IgnitionVersion, err)
		case err != nil:
			return "spec.config: " + err.Error()
		default:
			return "spec.config: invalid Ignition config"
		}
	}
	return strings.Join(parts, "; ")
}

func fieldPath(elems []interface{}) string {
	var b strings.Builder
	b.WriteString("spec.config")
	for _, e := range elems {
		switch v := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		default:
			fmt.Fprintf(&b, ".%v", v)
		}
	}
	return b.String()
}

// IsManaged reports whether oc-kubens created mc (it carries our marker
// label). Objects with the same name but without the marker were made by
// hand and are left alone.
func IsManaged(mc *mcfgv1.MachineConfig) bool {
	return mc != nil && mc.Labels[ManagedByLabel] == ManagedByValue
}
