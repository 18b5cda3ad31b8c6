package verify

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// Rendered configs shaped like the telco ZTP / RAN DU ones: the unit without
// an [Install] section, pulled in by crio's and kubelet's drop-ins, with or
// without enabled: true, next to the rest of a rendered config.

const ztpUnit = `[Unit]
Description=Manages a mount namespace that both kubelet and crio can use to share their container-specific mounts

[Service]
Type=oneshot
RemainAfterExit=yes
RuntimeDirectory=container-mount-namespace
Environment=RUNTIME_DIRECTORY=%t/container-mount-namespace
Environment=BIND_POINT=%t/container-mount-namespace/mnt
ExecStartPre=bash -c "findmnt ${RUNTIME_DIRECTORY} || mount --make-unbindable --bind ${RUNTIME_DIRECTORY} ${RUNTIME_DIRECTORY}"
ExecStartPre=touch ${BIND_POINT}
ExecStart=unshare --mount=${BIND_POINT} --propagation slave mount --make-rshared /
ExecStop=umount -R ${RUNTIME_DIRECTORY}
`

const ztpDropin = `[Unit]
Wants=container-mount-namespace.service
After=container-mount-namespace.service

[Service]
ExecStartPre=/usr/local/bin/extractExecStart %n /%t/%N-execstart.env ORIG_EXECSTART
EnvironmentFile=-/%t/%N-execstart.env
ExecStart=
ExecStart=bash -c "nsenter --mount=%t/container-mount-namespace/mnt \
    ${ORIG_EXECSTART}"
`

type tUnit struct {
	Name     string    `json:"name"`
	Enabled  *bool     `json:"enabled,omitempty"`
	Mask     *bool     `json:"mask,omitempty"`
	Contents *string   `json:"contents,omitempty"`
	Dropins  []tDropin `json:"dropins,omitempty"`
}

type tDropin struct {
	Name     string  `json:"name"`
	Contents *string `json:"contents,omitempty"`
}

func renderedConfig(t *testing.T, version string, units ...tUnit) []byte {
	t.Helper()
	// What every rendered config has besides: kubelet and crio with the
	// MCO's own drop-ins, other units and files.
	base := []tUnit{
		{Name: "kubelet.service", Enabled: ptr.To(true), Contents: ptr.To("[Unit]\nDescription=Kubernetes Kubelet\n")},
		{Name: "crio.service", Dropins: []tDropin{{Name: "10-mco-default-madv.conf", Contents: ptr.To("[Service]\nEnvironment=\"GODEBUG=madvdontneed=1\"\n")}}},
		{Name: "kubens.service"},
		{Name: "chronyd.service", Enabled: ptr.To(true)},
	}
	cfg := map[string]any{
		"ignition": map[string]any{"version": version},
		"storage": map[string]any{"files": []any{map[string]any{
			"path": "/usr/local/bin/extractExecStart", "mode": 493, "overwrite": true,
			"contents": map[string]any{"source": "data:,%23!%2Fbin%2Fbash%0A"},
		}}},
		"systemd": map[string]any{"units": append(base, units...)},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestExpectedFromConfigZTP(t *testing.T) {
	dropins := func(name string) []tUnit {
		return []tUnit{
			{Name: "crio.service", Dropins: []tDropin{{Name: name, Contents: ptr.To(ztpDropin)}}},
			{Name: "kubelet.service", Dropins: []tDropin{{Name: name, Contents: ptr.To(ztpDropin)}, {Name: "30-kubelet-interval-tuning.conf", Contents: ptr.To("[Service]\nEnvironment=\"OPENSHIFT_EVICTION_MONITORING_PERIOD_DURATION=30s\"\n")}}},
		}
	}
	unit := func(enabled *bool) tUnit {
		return tUnit{Name: "container-mount-namespace.service", Enabled: enabled, Contents: ptr.To(ztpUnit)}
	}
	tests := []struct {
		name    string
		version string
		units   []tUnit
		want    State
	}{
		{"ztp since 2023, no enabled field", "3.2.0", append([]tUnit{unit(nil)}, dropins("90-container-mount-namespace.conf")...), Encapsulated},
		{"ztp with enabled: true", "3.4.0", append([]tUnit{unit(ptr.To(true))}, dropins("90-container-mount-namespace.conf")...), Encapsulated},
		{"early ztp, 20- drop-ins", "3.1.0", append([]tUnit{unit(ptr.To(true))}, dropins("20-container-mount-namespace.conf")...), Encapsulated},
		{"drop-ins only (unit file elsewhere)", "3.4.0", dropins("90-container-mount-namespace.conf"), Encapsulated},
		{"unit only, no enabled", "3.2.0", []tUnit{unit(nil)}, Encapsulated},
		{"unit enabled: false, drop-ins still pull it in", "3.2.0", append([]tUnit{unit(ptr.To(false))}, dropins("90-container-mount-namespace.conf")...), Encapsulated},
		{"masked", "3.2.0", append([]tUnit{{Name: "container-mount-namespace.service", Mask: ptr.To(true)}}, dropins("90-container-mount-namespace.conf")...), NotEncapsulated},
		{"unit enabled: false only", "3.2.0", []tUnit{{Name: "container-mount-namespace.service", Enabled: ptr.To(false)}}, NotEncapsulated},
		{"listed without contents or enabled", "3.2.0", []tUnit{{Name: "container-mount-namespace.service"}}, NotEncapsulated},
		{"empty drop-in", "3.2.0", []tUnit{{Name: "kubelet.service", Dropins: []tDropin{{Name: "90-container-mount-namespace.conf"}}}}, NotEncapsulated},
		{"drop-in on another unit", "3.2.0", []tUnit{{Name: "other.service", Dropins: []tDropin{{Name: "90-container-mount-namespace.conf", Contents: ptr.To(ztpDropin)}}}}, NotEncapsulated},
		{"plain rendered config", "3.4.0", nil, NotEncapsulated},
		{"kubens.service enabled", "3.5.0", []tUnit{{Name: "kubens.service", Enabled: ptr.To(true)}}, Encapsulated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExpectedFromConfig(renderedConfig(t, tt.version, tt.units...)); got != tt.want {
				t.Errorf("%q, want %q", got, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `{}`, `{"ignition":{"version":"3.2.0"},"systemd":{"units":{}}}`} {
		if got := ExpectedFromConfig([]byte(bad)); got != "" {
			t.Errorf("%q: %q, want unknown", bad, got)
		}
	}
}

// TestExpectedResolverWrapped: the wrapped units come from the same rendered
// config as the expected state, fetched once whichever is asked first.
func TestExpectedResolverWrapped(t *testing.T) {
	wrap := tDropin{Name: manifests.WrapDropInName, Contents: ptr.To("[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /usr/bin/agent\n")}
	configs := map[string][]byte{
		"rendered-wrap": renderedConfig(t, "3.4.0",
			tUnit{Name: "kubens.service", Enabled: ptr.To(true)},
			tUnit{Name: "zagent.service", Dropins: []tDropin{wrap}},
			tUnit{Name: "agent.service", Dropins: []tDropin{{Name: "10-other.conf", Contents: ptr.To("[Service]\n")}, wrap}},
			// Ignition deletes an empty drop-in: not wrapped.
			tUnit{Name: "gone.service", Dropins: []tDropin{{Name: manifests.WrapDropInName}}}),
		"rendered-plain": renderedConfig(t, "3.4.0"),
	}
	gets := map[string]int{}
	x := &ExpectedResolver{Get: func(_ context.Context, name string) (*mcfgv1.MachineConfig, error) {
		gets[name]++
		if raw, ok := configs[name]; ok {
			return &mcfgv1.MachineConfig{Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}}}, nil
		}
		return nil, errors.New("not found")
	}}
	node := func(cfg string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{CurrentConfigAnnotation: cfg}}}
	}
	ctx := context.Background()
	if got := x.WrappedFor(ctx, node("rendered-wrap")); !slices.Equal(got, []string{"agent.service", "zagent.service"}) {
		t.Errorf("wrapped %q", got)
	}
	if got := x.For(ctx, node("rendered-wrap")); got != Encapsulated {
		t.Errorf("expected %q", got)
	}
	if got := x.For(ctx, node("rendered-plain")); got != NotEncapsulated {
		t.Errorf("plain: expected %q", got)
	}
	for cfg, want := range map[string][]string{"rendered-plain": nil, "rendered-missing": nil, "": nil} {
		if got := x.WrappedFor(ctx, node(cfg)); got != nil || !slices.Equal(got, want) {
			t.Errorf("%q: wrapped %q", cfg, got)
		}
	}
	for name, n := range gets {
		if n != 1 {
			t.Errorf("%s fetched %d times", name, n)
		}
	}
}
