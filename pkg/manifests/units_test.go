package manifests

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, raw string) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(raw))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", raw, err)
	}
	return cfg
}

func TestParseConfigIsStrictLikeTheMCO(t *testing.T) {
	// One 3.x config listing a unit twice is invalid Ignition: the MCO
	// refuses to render it, so the merge forecast must not guess.
	_, err := ParseConfig([]byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"kubens.service","enabled":false}]}}`))
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("ParseConfig of a 3.2 config with a duplicate unit: err = %v, want a duplicate entry error", err)
	}
	// ReadConfig reads the same for facts (a rendered config already
	// accepted), as the merge would: the later entry wins.
	cfg, err := ReadConfig([]byte(`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"kubens.service","enabled":false}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if Unit(cfg, UnitName).EnabledOn() {
		t.Error("ReadConfig: later enabled:false entry did not win")
	}
}

func TestParseConfigConvertsIgnition22(t *testing.T) {
	// The shape of the CI step's config and of ZTP's load-sctp-module.
	cfg := mustParse(t, `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/modules-load.d/sctp-load.conf","mode":420,"contents":{"source":"data:,sctp"}}]},"systemd":{"units":[{"name":"kubens.service","enabled":true},{"name":"crio.service","dropins":[{"name":"10-a.conf","contents":"[Service]\n"}]},{"name":"crio.service","dropins":[{"name":"20-b.conf","contents":"[Service]\n"}]}]}}`)
	if cfg.Ignition.Version != "3.5.0" {
		t.Errorf("version = %q, want 3.5.0", cfg.Ignition.Version)
	}
	if len(cfg.Storage.Files) != 1 || cfg.Storage.Files[0].Path != "/etc/modules-load.d/sctp-load.conf" {
		t.Errorf("files = %+v", cfg.Storage.Files)
	}
	if !Unit(cfg, UnitName).EnabledOn() {
		t.Error("kubens.service not enabled after conversion")
	}
	// Duplicate units are folded before conversion, keeping every drop-in.
	got := Unit(cfg, "crio.service").Dropins
	if strings.Join(got, ",") != "20-b.conf,10-a.conf" {
		t.Errorf("crio drop-ins after folding = %v, want both", got)
	}
}

func TestMergeConfigsNilEnabledKeepsEarlierValue(t *testing.T) {
	enable := mustParse(t, `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`)
	dropinOnly := mustParse(t, `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kubens.service","dropins":[{"name":"10-local.conf","contents":"[Unit]\n"}]}]}}`)
	disable := mustParse(t, `{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":false}]}}`)
	tests := []struct {
		name  string
		order []Config
		want  bool
	}{
		{"enable then drop-in only", []Config{enable, dropinOnly}, true},
		{"drop-in only alone", []Config{dropinOnly}, false},
		{"disable then enable", []Config{disable, enable}, true},
		{"enable then disable", []Config{enable, disable}, false},
		{"disable, enable, drop-in only", []Config{disable, enable, dropinOnly}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Unit(MergeConfigs(tt.order), UnitName)
			if got.EnabledOn() != tt.want {
				t.Errorf("merged enabled = %v, want %v", got.EnabledOn(), tt.want)
			}
		})
	}
	if d := Unit(MergeConfigs([]Config{enable, dropinOnly}), UnitName).Dropins; len(d) != 1 || d[0] != "10-local.conf" {
		t.Errorf("merged drop-ins = %v", d)
	}
}

func TestZTPPresent(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"unit with contents, no enabled (ZTP since 2023)", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","contents":"[Unit]\nDescription=x\n"}]}}`, true},
		{"unit enabled, no contents", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","enabled":true}]}}`, true},
		{"only the crio drop-in", `{"ignition":{"version":"3.1.0"},"systemd":{"units":[{"name":"crio.service","dropins":[{"name":"20-container-mount-namespace.conf","contents":"[Unit]\n"}]}]}}`, true},
		{"masked", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","contents":"[Unit]\n","mask":true}]}}`, false},
		{"defined but enabled false, nothing pulls it in", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","contents":"[Unit]\n","enabled":false}]}}`, false},
		{"enabled false, but the kubelet drop-in pulls it in", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"container-mount-namespace.service","contents":"[Unit]\n","enabled":false},{"name":"kubelet.service","dropins":[{"name":"90-container-mount-namespace.conf","contents":"[Unit]\nWants=container-mount-namespace.service\n"}]}]}}`, true},
		{"kubens only", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"kubens.service","enabled":true}]}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ZTPPresent(mustParse(t, tt.raw)); got != tt.want {
				t.Errorf("ZTPPresent = %v, want %v", got, tt.want)
			}
		})
	}
}
