package node

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
)

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeFiles writes the node's certificates and the kubelet, containerd and
// CNI configuration into its folder. They survive reboots, like /etc.
func (n *Node) writeFiles() error {
	d := n.cfg.Dir
	for _, sub := range []string{"", "pki", "kubelet", "cni", "containerd"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	n.port = port
	files := map[string]string{
		"pki/ca.crt":               string(n.cfg.CAPEM),
		"pki/kubelet.crt":          string(n.cfg.ServingCertPEM),
		"pki/kubelet.key":          string(n.cfg.ServingKeyPEM),
		"kubelet.kubeconfig":       n.kubeconfig(),
		"kubelet.yaml":             n.kubeletConfig(port),
		"containerd.toml":          n.containerdConfig(),
		"cni/10-loopback.conflist": cniConfig,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// KubeletPort is the port the kubelet serves on 127.0.0.1.
func (n *Node) KubeletPort() int { return n.port }

func (n *Node) kubeconfig() string {
	return kubeconfigYAML(n.cfg.APIServerURL, n.Name, n.cfg.CAPEM, n.cfg.ClientCertPEM, n.cfg.ClientKeyPEM)
}

// kubeconfigYAML is a kubelet's kubeconfig with its client certificate inline.
func kubeconfigYAML(server, user string, ca, cert, key []byte) string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: harness
  context: {cluster: harness, user: %s}
current-context: harness
`, server, b64(ca), user, b64(cert), b64(key), user)
}

func (n *Node) kubeletConfig(port int) string {
	return kubeletConfigYAML(kubeletParams{
		Port:     port,
		CertFile: filepath.Join(n.cfg.Dir, "pki/kubelet.crt"), KeyFile: filepath.Join(n.cfg.Dir, "pki/kubelet.key"),
		CAFile: filepath.Join(n.cfg.Dir, "pki/ca.crt"), CgroupRoot: n.cfg.CgroupRoot,
		Endpoint: "unix://" + n.ContainerdAddress(),
	})
}

// kubeletParams are what differ between the kubelets of the harness's nodes.
type kubeletParams struct {
	Port                 int
	CertFile, KeyFile    string // serving certificate
	CAFile               string // client CA
	CgroupRoot, Endpoint string
}

// kubeletConfigYAML: cgroupfs on cgroup v1, no swap check, x509 + webhook
// authn/authz with its own serving cert, its own cgroupRoot (so kubelets do
// not reap each other's pod cgroups), no image GC (images are imported,
// never pulled), near-zero eviction thresholds (shared test disks run full).
func kubeletConfigYAML(p kubeletParams) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 10s}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 5s}
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: %s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 10Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
nodeStatusReportFrequency: 20s
resolvConf: /etc/resolv.conf
serializeImagePulls: false
syncFrequency: 10s
`, p.Port, p.CertFile, p.KeyFile, p.CAFile, p.CgroupRoot, p.Endpoint)
}

// containerdConfig: restrict_oom_score_adj because the VMs withhold
// CAP_SYS_RESOURCE (every sandbox fails without it), cgroupfs, the local
// pause image, loopback-only CNI (only hostNetwork pods run). State lives in
// the node's /run tmpfs, the content store in the node's folder.
func (n *Node) containerdConfig() string {
	d := n.cfg.Dir
	return strings.TrimLeft(fmt.Sprintf(`
version = 2
root = %q
state = "/run/containerd"
oom_score = 0

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, filepath.Join(d, "containerd", "root"), filepath.Join(d, "containerd.sock"), filepath.Join(d, "containerd.sock.ttrpc"),
		filepath.Join(d, "containerd", "opt"), images.PauseImage, CNIBinDir, filepath.Join(d, "cni")), "\n")
}

const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "loopback",
  "plugins": [{"type": "loopback"}]
}
`

// CNIBinDir holds the loopback plugin (Debian's containernetworking-plugins).
const CNIBinDir = "/usr/lib/cni"

// MissingTools lists the host programs a node needs that are not installed
// (`make node-deps` installs them): containerd, ctr and runc from Debian's
// containerd and runc packages, the loopback CNI plugin, and util-linux's
// unshare, nsenter, taskset and mountpoint, and iproute2's ip (kubens.service's
// /run/netns step).
func MissingTools() []string {
	return missingTools("containerd", "ctr", "runc", "unshare", "nsenter", "taskset", "mount", "mountpoint", "ip")
}

// missingTools lists the commands not on PATH, and the loopback CNI plugin
// when it is missing (every kind of node needs it).
func missingTools(commands ...string) []string {
	var missing []string
	for _, p := range commands {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := os.Stat(filepath.Join(CNIBinDir, "loopback")); err != nil {
		missing = append(missing, filepath.Join(CNIBinDir, "loopback"))
	}
	return missing
}
