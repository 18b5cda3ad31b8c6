package mcosim

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ign2types "github.com/coreos/ignition/config/v2_2/types"
	igntypes "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/yaml"
)

// fixture reads a MachineConfig from testdata.
func fixture(t *testing.T, name string) *mcfgv1.MachineConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := &mcfgv1.MachineConfig{}
	if err := yaml.UnmarshalStrict(b, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func workerPool() *mcfgv1.MachineConfigPool {
	return pool("worker", []string{"worker"}, map[string]string{"node-role.kubernetes.io/worker": ""})
}

func fileByPath(cfg igntypes.Config, path string) *igntypes.File {
	for i := range cfg.Storage.Files {
		if cfg.Storage.Files[i].Path == path {
			return &cfg.Storage.Files[i]
		}
	}
	return nil
}

// Real Ignition 2.2.0 MachineConfigs (the shapes in the wild) parse, convert
// to 3.5 and merge, as the MCO's ParseAndConvertConfig does.
func TestParseAndConvertIgnition22(t *testing.T) {
	sctp, err := parseAndConvert(fixture(t, "load-sctp-module-2.2.yaml").Spec.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if sctp.Ignition.Version != "3.5.0" {
		t.Errorf("version = %q, want 3.5.0", sctp.Ignition.Version)
	}
	f := fileByPath(sctp, "/etc/modules-load.d/sctp-load.conf")
	if f == nil {
		t.Fatalf("file lost: %+v", sctp.Storage.Files)
	}
	if f.Mode == nil || *f.Mode != 420 {
		t.Errorf("mode = %v, want 420", f.Mode)
	}
	if f.Contents.Source == nil || *f.Contents.Source != "data:text/plain;charset=utf-8,sctp" {
		t.Errorf("source = %v", f.Contents.Source)
	}
	if fileByPath(sctp, "/etc/modprobe.d/sctp-blacklist.conf") == nil {
		t.Error("empty blacklist file lost")
	}

	kubens, err := parseAndConvert(fixture(t, "kubens-enable-2.2.yaml").Spec.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(kubens.Systemd.Units) != 1 || kubens.Systemd.Units[0].Name != KubensUnit ||
		kubens.Systemd.Units[0].Enabled == nil || !*kubens.Systemd.Units[0].Enabled {
		t.Errorf("units = %+v", kubens.Systemd.Units)
	}
}

func TestRenderIgnition22(t *testing.T) {
	kubens, sctp := fixture(t, "kubens-enable-2.2.yaml"), fixture(t, "load-sctp-module-2.2.yaml")
	res, err := renderPool(workerPool(), []*mcfgv1.MachineConfig{baseConfig("worker"), kubens, sctp})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	on, err := unitEnabled(res.rendered.Spec.Config.Raw, KubensUnit)
	if err != nil || !on {
		t.Errorf("kubens enabled = %v, %v; want true", on, err)
	}
	if c, _ := units(t, res.rendered.Spec)[KubensUnit]["contents"].(string); !strings.Contains(c, "unshare --mount") {
		t.Errorf("a 2.2 config without contents dropped the unit's contents: %q", c)
	}
	var merged igntypes.Config
	if err := json.Unmarshal(res.rendered.Spec.Config.Raw, &merged); err != nil {
		t.Fatal(err)
	}
	f := fileByPath(merged, "/etc/modules-load.d/sctp-load.conf")
	if f == nil || f.Overwrite == nil || !*f.Overwrite {
		t.Errorf("sctp-load.conf in rendered config: %+v", f)
	}
	if len(res.source) != 3 {
		t.Errorf("source = %v", res.source)
	}
}

// The spec versions the MCO takes, and its messages for the others.
func TestParseAnySpec(t *testing.T) {
	tests := []struct {
		name, raw, wantErr string
		wantV2             bool
	}{
		{name: "3.5", raw: `{"ignition":{"version":"3.5.0"}}`},
		{name: "3.0", raw: `{"ignition":{"version":"3.0.0"}}`},
		{name: "2.2", raw: `{"ignition":{"version":"2.2.0"}}`, wantV2: true},
		{name: "2.1 is read as 2.2", raw: `{"ignition":{"version":"2.1.0"}}`, wantV2: true},
		{name: "unknown version", raw: `{"ignition":{"version":"9.9.9"}}`,
			wantErr: "parsing Ignition config failed: unknown version. Supported spec versions: 2.2,3.0,3.1,3.2,3.3,3.4,3.5"},
		{name: "no version", raw: `{}`,
			wantErr: "parsing Ignition config failed: invalid version. Supported spec versions: 2.2,3.0,3.1,3.2,3.3,3.4,3.5"},
		{name: "invalid 3.x", raw: `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"etc/relative"}]}}`,
			wantErr: "parsing Ignition config spec v3 failed with error: config is not valid\nReport: "},
		{name: "invalid 2.2: no filesystem", raw: `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"path":"/etc/x","mode":420}]}}`,
			wantErr: "parsing Ignition spec v2 failed with error: config is not valid\nReport: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAnySpec([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %q, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, v2 := got.(ign2types.Config); v2 != tt.wantV2 {
				t.Errorf("parsed as %T", got)
			}
		})
	}
}

// removeIgnDuplicateFilesUnitsUsers: the last of a path or unit name wins,
// earlier drop-ins are added, SSH keys of all core users are gathered.
func TestDedupeV2(t *testing.T) {
	raw := `{"ignition":{"version":"2.2.0"},
	"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["a","b"]},{"name":"core","sshAuthorizedKeys":["b","c"]}]},
	"storage":{"files":[
		{"path":"/etc/x","filesystem":"root","mode":420,"contents":{"source":"data:,first"}},
		{"path":"/etc/y","filesystem":"root","mode":420,"contents":{"source":"data:,y"}},
		{"path":"/etc/x","filesystem":"root","mode":384,"contents":{"source":"data:,second"}}]},
	"systemd":{"units":[
		{"name":"a.service","enabled":false,"dropins":[{"name":"10-a.conf","contents":"[Unit]\n"},{"name":"20-a.conf","contents":"[Unit]\n"}]},
		{"name":"a.service","enabled":true,"dropins":[{"name":"20-a.conf","contents":"[Service]\n"}]}]}}`
	out, err := parseAndConvert([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Storage.Files) != 2 || out.Storage.Files[0].Path != "/etc/x" || out.Storage.Files[1].Path != "/etc/y" {
		t.Fatalf("files = %+v (want /etc/x, /etc/y: the MCO's reversed order)", out.Storage.Files)
	}
	if x := out.Storage.Files[0]; *x.Mode != 384 || *x.Contents.Source != "data:,second" {
		t.Errorf("/etc/x = mode %d %s, want the last one", *x.Mode, *x.Contents.Source)
	}
	if len(out.Systemd.Units) != 1 {
		t.Fatalf("units = %+v", out.Systemd.Units)
	}
	u := out.Systemd.Units[0]
	if u.Enabled == nil || !*u.Enabled || len(u.Dropins) != 2 || u.Dropins[0].Name != "20-a.conf" ||
		*u.Dropins[0].Contents != "[Service]\n" || u.Dropins[1].Name != "10-a.conf" {
		t.Errorf("unit = %+v", u)
	}
	if len(out.Passwd.Users) != 1 {
		t.Fatalf("users = %+v", out.Passwd.Users)
	}
	var keys []string
	for _, k := range out.Passwd.Users[0].SSHAuthorizedKeys {
		keys = append(keys, string(k))
	}
	if strings.Join(keys, ",") != "b,c,a" {
		t.Errorf("keys = %v, want b,c,a", keys)
	}

	if _, err := parseAndConvert([]byte(`{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"admin"}]}}`)); err == nil ||
		err.Error() != "unexpected user with name: admin. Only core user is supported" {
		t.Errorf("non-core user: %v", err)
	}
}

func TestValidateMachineConfig(t *testing.T) {
	const empty32 = `{"ignition":{"version":"3.2.0"}}`
	tests := []struct {
		name    string
		spec    mcfgv1.MachineConfigSpec
		wantErr string
	}{
		{name: "empty", spec: mcfgv1.MachineConfigSpec{}},
		{name: "kernel types", spec: mcfgv1.MachineConfigSpec{KernelType: "realtime"}},
		{name: "bad kernel type", spec: mcfgv1.MachineConfigSpec{KernelType: "rt"}, wantErr: "kernelType=rt is invalid"},
		{name: "extensions", spec: withIgn(mcfgv1.MachineConfigSpec{Extensions: []string{"usbguard", "kernel-devel"}}, empty32)},
		{name: "bad extensions", spec: withIgn(mcfgv1.MachineConfigSpec{Extensions: []string{"usbguard", "vim", "htop"}}, empty32),
			wantErr: "invalid extensions found: [vim htop]"},
		{name: "extensions unchecked without Ignition, as in the MCO", spec: mcfgv1.MachineConfigSpec{Extensions: []string{"vim"}}},
		{name: "setuid mode 3.x",
			spec:    withIgn(mcfgv1.MachineConfigSpec{}, `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/usr/local/bin/x","mode":2541}]}}`),
			wantErr: "invalid mode 04755 for /usr/local/bin/x, cannot exceed 0777"},
		{name: "sticky mode 2.2",
			spec:    withIgn(mcfgv1.MachineConfigSpec{}, `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"path":"/etc/x","filesystem":"root","mode":1023}]}}`),
			wantErr: "invalid mode 01777 for /etc/x, cannot exceed 0777"},
		{name: "plain modes", spec: withIgn(mcfgv1.MachineConfigSpec{}, `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","mode":511}]}}`)},
		{name: "unknown version", spec: withIgn(mcfgv1.MachineConfigSpec{}, `{"ignition":{"version":"9.9.9"}}`),
			wantErr: "parsing Ignition config failed: unknown version. Supported spec versions: 2.2,3.0,3.1,3.2,3.3,3.4,3.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateMachineConfig(tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func withIgn(spec mcfgv1.MachineConfigSpec, raw string) mcfgv1.MachineConfigSpec {
	spec.Config.Raw = []byte(raw)
	return spec
}

// renderPool fails the way the render controller does: the messages are
// the MCO's, which do not name the config at fault.
func TestRenderPoolValidation(t *testing.T) {
	bad := func(name string, mod func(*mcfgv1.MachineConfig)) *mcfgv1.MachineConfig {
		m := mc(name, "worker", `{"ignition":{"version":"3.2.0"}}`)
		mod(m)
		return m
	}
	tests := []struct {
		name string
		mc   *mcfgv1.MachineConfig
		want string
	}{
		{"kernel type", bad("99-rt", func(m *mcfgv1.MachineConfig) { m.Spec.KernelType = "rt" }),
			"could not generate rendered MachineConfig: kernelType=rt is invalid"},
		{"extensions", bad("99-ext", func(m *mcfgv1.MachineConfig) { m.Spec.Extensions = []string{"vim"} }),
			"could not generate rendered MachineConfig: invalid extensions found: [vim]"},
		{"mode", mc("99-suid", "worker", `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/usr/local/bin/x","mode":3565}]}}`),
			"could not generate rendered MachineConfig: invalid mode 06755 for /usr/local/bin/x, cannot exceed 0777"},
		{"version", mc("99-broken", "worker", `{"ignition":{"version":"9.9.9"}}`),
			"could not generate rendered MachineConfig: parsing Ignition config failed: unknown version. Supported spec versions: 2.2,3.0,3.1,3.2,3.3,3.4,3.5"},
		{"kernel-devel needs the default kernel", bad("99-devel", func(m *mcfgv1.MachineConfig) {
			m.Spec.KernelType = "realtime"
			m.Spec.Extensions = []string{"kernel-devel"}
		}), "could not generate rendered MachineConfig: installing kernel-devel extension is not supported with kernelType: realtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderPool(workerPool(), []*mcfgv1.MachineConfig{baseConfig("worker"), tt.mc})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

// The rendered config must fit etcd's request limit (ValidateMachineConfigSize).
func TestRenderPoolSizeLimit(t *testing.T) {
	big := func(name, path string, n int) *mcfgv1.MachineConfig {
		data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), n))
		return mc(name, "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"`+path+
			`","contents":{"source":"data:;base64,`+data+`"}}]}}`)
	}
	// Each fits on its own (the apiserver took them), together they do not.
	one := []*mcfgv1.MachineConfig{baseConfig("worker"), big("50-a", "/etc/a", 700_000)}
	if _, err := renderPool(workerPool(), one); err != nil {
		t.Fatalf("one big file: %v", err)
	}
	_, err := renderPool(workerPool(), append(one, big("50-b", "/etc/b", 700_000)))
	if err == nil || !strings.HasPrefix(err.Error(), "size validation failed: rendered MachineConfig rendered-worker-") ||
		!strings.Contains(err.Error(), " is too large (") || !strings.Contains(err.Error(), " bytes, max 1572864 bytes). This will exceed etcd's size limit.") {
		t.Fatalf("err = %v", err)
	}
}

// A later config's plain file replaces an earlier gzip one whole: the MCO
// does not let the compression of the earlier one leak into the result.
func TestMergeFileCompression(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte("zipped"))
	_ = zw.Close()
	gz := mc("10-gz", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","contents":{"compression":"gzip","source":"data:;base64,`+
		base64.StdEncoding.EncodeToString(buf.Bytes())+`"}}]}}`)
	plain := mc("20-plain", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,plain"}}]}}`)
	spec, err := mergeConfigs([]*mcfgv1.MachineConfig{gz, plain})
	if err != nil {
		t.Fatal(err)
	}
	var merged igntypes.Config
	if err := json.Unmarshal(spec.Config.Raw, &merged); err != nil {
		t.Fatal(err)
	}
	f := fileByPath(merged, "/etc/x")
	if f == nil || *f.Contents.Source != "data:,plain" || f.Contents.Compression != nil {
		t.Errorf("file = %+v", f)
	}
}

// Only user configs may set the OS images; generated ones are skipped.
func TestMergeOSImageFromUserConfigsOnly(t *testing.T) {
	user := mc("50-user", "worker", `{"ignition":{"version":"3.2.0"}}`)
	user.Spec.OSImageURL = "quay.io/user/os@sha256:1"
	generated := mc("99-generated", "worker", `{"ignition":{"version":"3.2.0"}}`)
	generated.Spec.OSImageURL = "quay.io/generated/os@sha256:2"
	generated.Annotations = map[string]string{GeneratedByAnnotation: controllerVersion}
	spec, err := mergeConfigs([]*mcfgv1.MachineConfig{user, generated})
	if err != nil {
		t.Fatal(err)
	}
	if spec.OSImageURL != user.Spec.OSImageURL {
		t.Errorf("osImageURL = %q, want the user's", spec.OSImageURL)
	}
}
