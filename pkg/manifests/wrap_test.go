package manifests

import (
	"strings"
	"testing"
)

func TestRenderWrap(t *testing.T) {
	mc, err := RenderWrap("worker", map[string]string{"b.service": "[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /bin/b\n", "a.service": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if mc.Name != "99-kubens-wrap-worker" || !IsManagedWrap(mc) || IsManagedKubens(mc) || mc.Labels[RoleLabel] != "worker" {
		t.Fatalf("object %s labels %v", mc.Name, mc.Labels)
	}
	want := `{"ignition":{"version":"3.2.0"},"systemd":{"units":[` +
		`{"dropins":[{"contents":"x","name":"99-kubens-wrapper.conf"}],"name":"a.service"},` +
		`{"dropins":[{"contents":"[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /bin/b\n","name":"99-kubens-wrapper.conf"}],"name":"b.service"}]}}`
	if got := string(mc.Spec.Config.Raw); got != want {
		t.Errorf("config\n got %s\nwant %s", got, want)
	}
	// What it renders reads back: the units and their texts.
	cfg, err := ParseConfig(mc.Spec.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := WrappedUnits(cfg); strings.Join(got, ",") != "a.service,b.service" {
		t.Errorf("wrapped units %v", got)
	}
	if WrapDropIns(cfg)["a.service"] != "x" {
		t.Errorf("drop-ins %v", WrapDropIns(cfg))
	}
}

func TestRenderWrapRefuses(t *testing.T) {
	for _, tt := range []struct {
		role    string
		dropIns map[string]string
		want    string
	}{
		{"worker", nil, "needs at least one unit"},
		{"Worker", map[string]string{"a.service": "x"}, "invalid role"},
		// Ignition's own validator: a unit name needs a known suffix.
		{"worker", map[string]string{"noSuffix": "x"}, "spec.config.systemd.units[0].name: invalid systemd unit extension"},
	} {
		if _, err := RenderWrap(tt.role, tt.dropIns); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: %v, want %q", tt.role, tt.dropIns, err, tt.want)
		}
	}
}

// Another drop-in of the unit, or ours emptied (Ignition deletes an empty
// one), is not a wrap.
func TestWrapDropInsIgnoresOthers(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[` +
		`{"name":"a.service","dropins":[{"name":"10-other.conf","contents":"[Service]\n"}]},` +
		`{"name":"b.service","dropins":[{"name":"99-kubens-wrapper.conf","contents":""}]},` +
		`{"name":"c.service","dropins":[{"name":"99-kubens-wrapper.conf"}]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := WrappedUnits(cfg); len(got) != 0 {
		t.Errorf("wrapped units %v, want none", got)
	}
}
