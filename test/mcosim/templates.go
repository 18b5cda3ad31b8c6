package mcosim

import (
	"encoding/json"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The base configs stand in for the MCO's templates (templates/<role>/00-<role>
// and templates/common/_base/units): the units that matter to kubens, with
// kubens.service shipped disabled, as on every RHCOS node.

const kubensUnitContents = `[Unit]
Description=Manages a mount namespace for kubernetes-specific mounts

[Service]
Type=oneshot
RemainAfterExit=yes
RuntimeDirectory=kubens
Environment=RUNTIME_DIRECTORY=%t/kubens
Environment=BIND_POINT=%t/kubens/mnt
Environment=ENVFILE=%t/kubens/env

# Set up the runtime directory as an unbindable mountpoint
ExecStartPre=bash -c "findmnt ${RUNTIME_DIRECTORY} || mount --make-unbindable --bind ${RUNTIME_DIRECTORY} ${RUNTIME_DIRECTORY}"
# Ensure the bind point exists
ExecStartPre=touch ${BIND_POINT}
# Use 'unshare' to create the new mountpoint, then 'mount --make-rshared' so it cascades internally
ExecStart=unshare --mount=${BIND_POINT} --propagation slave mount --make-rshared /
# Finally, set an env pointer for ease-of-use
ExecStartPost=bash -c 'echo "KUBENSMNT=${BIND_POINT}" > "${ENVFILE}"'
# Make sure /run/netns is a mount point before CRI-O starts (OCPBUGS-83562)
ExecStartPost=bash -c "ip netns add kubensmnt && ip netns delete kubensmnt || mountpoint -q /run/netns"

# On stop, a recursive unmount cleans up the namespace and bind-mounted unbindable parent directory
ExecStop=umount -R ${RUNTIME_DIRECTORY}

[Install]
WantedBy=multi-user.target
`

const kubensDropin = `[Unit]
After=kubens.service

[Service]
EnvironmentFile=-/run/kubens/env
`

const kubeletUnitContents = `[Unit]
Description=Kubernetes Kubelet
Requires=crio.service kubelet-dependencies.target
After=kubelet-dependencies.target
After=ostree-finalize-staged.service

[Service]
Type=notify
ExecStartPre=/bin/mkdir --parents /etc/kubernetes/manifests
EnvironmentFile=/etc/os-release
EnvironmentFile=-/etc/kubernetes/kubelet-workaround
EnvironmentFile=-/etc/kubernetes/kubelet-env
ExecStart=/usr/local/bin/kubenswrapper \
    /usr/bin/kubelet \
      --config=/etc/kubernetes/kubelet.conf \
      --bootstrap-kubeconfig=/etc/kubernetes/kubeconfig \
      --kubeconfig=/var/lib/kubelet/kubeconfig \
      --container-runtime-endpoint=/var/run/crio/crio.sock \
      --node-labels=node-role.kubernetes.io/{{role}},node.openshift.io/os_id=${ID} \
      --v=2
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`

func ptr[T any](v T) *T { return &v }

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

// baseConfig is the 00-<role> MachineConfig.
func baseConfig(role string) *mcfgv1.MachineConfig {
	kubelet := strings.ReplaceAll(kubeletUnitContents, "{{role}}", role)
	cfg := map[string]any{
		// 3.5.0, like the MCO's templates and rendered configs today.
		"ignition": map[string]any{"version": "3.5.0"},
		"systemd": map[string]any{
			"units": []ignUnit{
				{Name: "crio.service", Dropins: []ignDropin{{Name: "01-kubens.conf", Contents: kubensDropin}}},
				{Name: "kubelet.service", Enabled: ptr(true), Contents: kubelet,
					Dropins: []ignDropin{{Name: "01-kubens.conf", Contents: kubensDropin}}},
				{Name: KubensUnit, Enabled: ptr(false), Contents: kubensUnitContents},
				{Name: "machine-config-daemon-firstboot.service", Enabled: ptr(true),
					Contents: "[Unit]\nDescription=Machine Config Daemon Firstboot\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/run/bin/machine-config-daemon firstboot-complete-machineconfig\n\n[Install]\nRequiredBy=multi-user.target\n"},
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
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}
}
