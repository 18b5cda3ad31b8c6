package mcosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/vincent-petithory/dataurl"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
)

// The base configs stand in for the MCO's templates (templates/<role>/00-<role>
// and templates/common/_base/units): what an RHCOS node gets before any user
// MachineConfig, as far as kubens goes, and runnable on the harness's systemd
// nodes. kubens.service ships disabled, as on every RHCOS node.
//
// The kubens texts are github.com/containers/kubensmnt's, the module the MCO
// generates its templates from (hack/update-templates.sh), so that a new
// release of it shows up as a failing test rather than as a silent drift
// from the real node. They are read from the module cache, not imported:
// see kubensmnt_pin.go for why.

const kubensmntModule = "github.com/containers/kubensmnt"

// kubensmntDir is the module's directory in the module cache, found the way
// mk/crio.mk finds cri-o's C sources: go list -m, after go mod download when
// the module was never extracted. The go command runs in this source file's
// folder when it still exists, so the version is the one go.mod pins
// whatever the caller's working directory.
var kubensmntDir = sync.OnceValues(func() (string, error) {
	dir := ""
	if _, file, _, ok := runtime.Caller(0); ok {
		if fi, err := os.Stat(filepath.Dir(file)); err == nil && fi.IsDir() {
			dir = filepath.Dir(file)
		}
	}
	goCmd := func(args ...string) (string, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	moduleDir, err := goCmd("list", "-m", "-f", "{{.Dir}}", kubensmntModule)
	if err == nil && moduleDir == "" {
		if _, err = goCmd("mod", "download", kubensmntModule); err == nil {
			moduleDir, err = goCmd("list", "-m", "-f", "{{.Dir}}", kubensmntModule)
		}
	}
	if err == nil && moduleDir == "" {
		err = fmt.Errorf("go list -m gave no directory")
	}
	return moduleDir, err
})

// kubensmntText is a file of the module, by its path in the module. It
// panics when the file cannot be read: the base configs are static data,
// and there is nothing sensible to simulate without them.
func kubensmntText(rel string) string {
	dir, err := kubensmntDir()
	var b []byte
	if err == nil {
		b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	}
	if err != nil {
		panic(fmt.Sprintf("mcosim: reading %s from %s: %v", rel, kubensmntModule, err))
	}
	return string(b)
}

// netnsStep is the MCO template's addition to the module's kubens.service
// (OCPBUGS-83562): make /run/netns a mount point before CRI-O starts, so the
// later `ip netns add` of a network component cannot shadow the namespace
// mounts CRI-O made before it. The module does not have it; the MCO template
// does, after the module's ExecStartPost (with a longer comment).
const netnsStep = `# Make sure /run/netns is a mount point before CRI-O starts (OCPBUGS-83562)
ExecStartPost=bash -c "ip netns add kubensmnt && ip netns delete kubensmnt || mountpoint -q /run/netns"
`

// kubensUnitContents is the module's kubens.service (systemd.Service) with
// netnsStep inserted after its (only) ExecStartPost line.
func kubensUnitContents() string {
	return mustInsertAfter(kubensmntText("utils/systemd/kubens.service"), "ExecStartPost=", netnsStep)
}

// kubensDropin is the module's 01-kubens.conf (systemd.Dropin): kubelet and
// CRI-O start after kubens.service and read KUBENSMNT from /run/kubens/env.
func kubensDropin() string { return kubensmntText("utils/systemd/kubens-dropin.conf") }

// KubensenterScript is the module's kubensenter script (kubensenter.Script),
// for node images: kubenswrapper execs /usr/bin/kubensenter when it is there.
func KubensenterScript() string { return kubensmntText("utils/kubensenter/kubensenter") }

// kubenswrapperPath is where kubelet.service expects the wrapper.
const kubenswrapperPath = "/usr/local/bin/kubenswrapper"

// kubenswrapperContents behaves as the MCO template's kubenswrapper: kubelet
// is started through kubensenter, which joins kubens.service's namespace when
// it is pinned, and the wrapper falls back to a plain exec on an image
// without kubensenter.
const kubenswrapperContents = `#!/bin/sh
# Start the command through kubensenter when the image has it, else as is.
if [ -x /usr/bin/kubensenter ]; then
	exec /usr/bin/kubensenter "$@"
fi
exec "$@"
`

// kubeletUnitContents is the MCO's kubelet.service cut down to what the
// harness's systemd nodes can run: no role label (the harness labels the
// node), no bootstrap kubeconfig (the harness writes
// /etc/kubernetes/kubelet.conf and /etc/kubernetes/kubeconfig per node; the
// hostname is the node name), no kubelet-dependencies.target or ostree
// units, which the nodes lack.
const kubeletUnitContents = `[Unit]
Description=Kubernetes Kubelet
Requires=crio.service
After=crio.service network-online.target

[Service]
Type=notify
ExecStartPre=/bin/mkdir --parents /etc/kubernetes/manifests
EnvironmentFile=-/etc/kubernetes/kubelet-env
ExecStart=/usr/local/bin/kubenswrapper \
    /usr/bin/kubelet \
      --config=/etc/kubernetes/kubelet.conf \
      --kubeconfig=/etc/kubernetes/kubeconfig \
      --container-runtime-endpoint=/var/run/crio/crio.sock \
      --v=1
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`

// mustInsertAfter inserts add after the first line of s that starts with
// prefix. It panics when there is no such line: the input is the module's
// text, and a release without the line needs a look by hand.
func mustInsertAfter(s, prefix, add string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, "\n") {
			return strings.Join(lines[:i+1], "") + add + strings.Join(lines[i+1:], "")
		}
	}
	panic(fmt.Sprintf("mcosim: no %q line to insert after", prefix))
}

func ptr[T any](v T) *T { return &v }

// The Ignition 3.5 shapes of the base configs, with only the fields they
// use, so that the JSON has no empty sections.

type ignUnit struct {
	Name     string      `json:"name"`
	Enabled  *bool       `json:"enabled,omitempty"`
	Contents string      `json:"contents,omitempty"`
	Dropins  []ignDropin `json:"dropins,omitempty"`
}

type ignDropin struct {
	Name     string `json:"name"`
	Contents string `json:"contents"`
}

type ignFile struct {
	Path     string      `json:"path"`
	Mode     int         `json:"mode"`
	Contents ignResource `json:"contents"`
}

// ignResource has no compression field: mergeConfigs turns an explicit ""
// into no compression when it merges more than one config, but keeps it
// when the base config is alone, which would make a config that changes
// nothing change the rendered name.
type ignResource struct {
	Source string `json:"source"`
}

// BaseConfigRaw is the Ignition JSON of 00-<role>, for the harness to write
// at a node's first boot.
func BaseConfigRaw(role string) []byte {
	return baseConfig(role).Spec.Config.Raw
}

// baseConfig is the 00-<role> MachineConfig; only its name and label depend
// on the role. It has no machine-config-daemon-firstboot.service: on RHCOS
// that unit comes with the image, and here its RequiredBy=multi-user.target
// with no MCD binary on the node would fail the boot.
func baseConfig(role string) *mcfgv1.MachineConfig {
	dropin := kubensDropin()
	cfg := map[string]any{
		// 3.5.0, like the MCO's templates and rendered configs today.
		"ignition": map[string]any{"version": "3.5.0"},
		"storage": map[string]any{
			"files": []ignFile{{
				Path:     kubenswrapperPath,
				Mode:     0o755,
				Contents: ignResource{Source: dataurl.EncodeBytes([]byte(kubenswrapperContents))},
			}},
		},
		"systemd": map[string]any{
			"units": []ignUnit{
				// crio.service itself ships with the image.
				{Name: "crio.service", Dropins: []ignDropin{{Name: "01-kubens.conf", Contents: dropin}}},
				{Name: "kubelet.service", Enabled: ptr(true), Contents: kubeletUnitContents,
					Dropins: []ignDropin{{Name: "01-kubens.conf", Contents: dropin}}},
				{Name: KubensUnit, Enabled: ptr(false), Contents: kubensUnitContents()},
			},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // static data
	}
	return &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "00-" + role,
			Labels:      map[string]string{RoleLabel: role},
			Annotations: map[string]string{GeneratedByAnnotation: controllerVersion},
		},
		Spec: mcfgv1.MachineConfigSpec{Config: k8sruntime.RawExtension{Raw: raw}},
	}
}
