package node

// RHCOS-like nodes (issue 10): a SystemdNode whose "OS image" is what an
// RHCOS node ships below the MachineConfigs (crio.service, kubensenter, the
// crio and kubelet programs), with CRI-O as the runtime and kubelet and CRI-O
// run by systemd as units. Nothing here decides whether the node is
// encapsulated: its units do. The pool's base config (kubelet.service through
// kubenswrapper, the disabled kubens.service, the 01-kubens.conf drop-ins) is
// written at the first boot by RHCOSConfig.Firstboot, the way Ignition writes
// a new machine's first config, and every later config by the simulated
// Machine Config Daemon, which then reboots the node.
//
// What is the harness's, not the image's, and why:
//   - the node-specific files (/etc/kubernetes/kubelet.conf, kubeconfig and
//     certificates): on a real cluster they come from the machine's own
//     bootstrap; here each node has its own port and certificate;
//   - CRI-O's configuration (/etc/crio/crio.conf): the harness's paths and
//     choices (cgroupfs, vfs storage, crun, the local pause image);
//   - CPUAffinity=0 for the units that pin a mount namespace on a file
//     (kubens.service, container-mount-namespace.service): a kernel quirk
//     of the test VMs (harnessCPU0Dropin);
//   - a drop-in for crio, kubelet and kubens.service in the image's
//     /usr/lib/systemd/system (<unit>.d/10-harness-log.conf) that appends
//     the unit's output to /var/log/units/<unit>.log, as the node has no
//     journald. Not for every service (service.d): at shutdown /var/log is
//     unmounted before systemd-halt.service runs, which then fails with
//     status 209/STDOUT and the node never halts;
//   - the images, loaded into CRI-O's storage with skopeo at the first boot
//     (there is no registry): pods use imagePullPolicy Never.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// RHCOS node paths, inside the node.
const (
	// CrioSocket is CRI-O's CRI socket.
	CrioSocket = "/var/run/crio/crio.sock"
	// CrioStorage and CrioRunRoot are CRI-O's containers/storage folders.
	CrioStorage = "/var/lib/containers/storage"
	CrioRunRoot = "/run/containers/storage"
	// CrioStorageDriver is vfs: no overlay-on-whatever surprises, and the
	// harness's images are tiny.
	CrioStorageDriver = "vfs"

	// firstbootDone marks (in the node's folder) that the first config was
	// written, so a Reboot never writes it again.
	firstbootDone = "firstboot.done"
	// rhcosTarget is what an RHCOS node boots; enabled units are wanted by it.
	rhcosTarget = "multi-user.target"
	// unitLogDir collects the units' output (no journald on the node).
	unitLogDir = "/var/log/units"
)

// RHCOSConfig describes an RHCOS-like node.
type RHCOSConfig struct {
	Name string // node name, also its hostname (the kubelet's node name)
	Role string // node-role label, set by Client (NodeRestriction forbids the kubelet)
	// Dir is the node's folder on the host, CgroupRoot its group in every
	// hierarchy (as SystemdConfig).
	Dir, CgroupRoot string

	KubeletBin string // installed as the image's /usr/bin/kubelet
	CrioBinDir string // crio and pinns, installed as /usr/local/bin/crio and /usr/bin/pinns
	// CrioUnit is crio.service as CRI-O ships it (contrib/systemd).
	CrioUnit string
	// KubensenterScript is the image's /usr/bin/kubensenter.
	KubensenterScript string
	// Images maps image references to docker-archive tarballs, loaded into
	// CRI-O's storage at the first boot.
	Images map[string]string

	APIServerURL                  string
	CAPEM                         []byte
	ClientCertPEM, ClientKeyPEM   []byte // CN=system:node:<Name>, O=system:nodes
	ServingCertPEM, ServingKeyPEM []byte // for Name, localhost, 127.0.0.1

	// Firstboot writes the machine's first config into the running node
	// (the pool's base config: kubelet.service and friends); the node then
	// reboots into it. Required: without it no kubelet runs.
	Firstboot func(ctx context.Context, n *RHCOSNode) error

	// Client (admin) waits for Ready and sets the role label; nil skips both.
	Client kubernetes.Interface
	State  *testenv.State
}

// RHCOSNode is a running RHCOS-like node.
type RHCOSNode struct {
	*SystemdNode
	Role string
	cfg  RHCOSConfig
	port int // the kubelet's
}

// StartRHCOS writes the node's image and machine files, boots it, writes its
// first config (Firstboot), reboots into it and waits for Ready.
func StartRHCOS(ctx context.Context, cfg RHCOSConfig) (*RHCOSNode, error) {
	if cfg.Firstboot == nil || cfg.KubeletBin == "" || cfg.CrioBinDir == "" || cfg.CrioUnit == "" || cfg.KubensenterScript == "" {
		return nil, errors.New("RHCOS node: Firstboot, KubeletBin, CrioBinDir, CrioUnit and KubensenterScript are required")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	n := &RHCOSNode{Role: cfg.Role, cfg: cfg, port: port}
	files, err := n.imageFiles()
	if err != nil {
		return nil, err
	}
	sn, err := StartSystemd(ctx, SystemdConfig{
		Name: cfg.Name, Dir: cfg.Dir, CgroupRoot: cfg.CgroupRoot, Target: rhcosTarget, State: cfg.State,
		Overlays: []string{"/usr/bin"}, ImageFiles: files,
	})
	if err != nil {
		return nil, err
	}
	n.SystemdNode = sn
	since := time.Now()
	if err := n.firstboot(ctx); err != nil {
		return nil, errors.Join(err, n.Stop(context.Background()))
	}
	if err := n.waitReady(ctx, since); err != nil {
		return nil, errors.Join(err, n.Stop(context.Background()))
	}
	return n, nil
}

// InitPID is the host PID of the node's PID 1, systemd (0 when stopped).
func (n *RHCOSNode) InitPID() int { return n.PID() }

// KubeletPort is the port the kubelet serves on 127.0.0.1.
func (n *RHCOSNode) KubeletPort() int { return n.port }

// Root is the host path of the node's "/" as the node sees it (its mount
// namespace): what the Machine Config Daemon writes through.
func (n *RHCOSNode) Root() string {
	if pid := n.PID(); pid > 0 {
		return fmt.Sprintf("/proc/%d/root", pid)
	}
	return ""
}

// RebootReady reboots the node (systemd halts, a fresh one boots with the
// same files) and waits until the Node is Ready again.
func (n *RHCOSNode) RebootReady(ctx context.Context) error {
	since := time.Now()
	if err := n.Reboot(ctx); err != nil {
		return err
	}
	return n.waitReady(ctx, since)
}

// firstboot writes the first config and the images once, then reboots.
func (n *RHCOSNode) firstboot(ctx context.Context) error {
	marker := filepath.Join(n.cfg.Dir, firstbootDone)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := n.cfg.Firstboot(ctx, n); err != nil {
		return fmt.Errorf("node %s: first boot config: %w", n.Name, err)
	}
	if err := n.loadImages(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return err
	}
	return n.Reboot(ctx)
}

// loadImages copies the image archives into CRI-O's storage inside the node
// (CRI-O is not running yet: nothing enables it before the first config).
func (n *RHCOSNode) loadImages(ctx context.Context) error {
	for ref, tar := range n.cfg.Images {
		dest := fmt.Sprintf("containers-storage:[%s@%s+%s]%s", CrioStorageDriver, CrioStorage, CrioRunRoot, ref)
		if _, err := n.Exec(ctx, "skopeo", "--insecure-policy", "copy", "--quiet", "docker-archive:"+tar, dest); err != nil {
			return fmt.Errorf("loading image %s into CRI-O's storage: %w", ref, err)
		}
	}
	return nil
}

// waitReady waits for the Node to be Ready with a heartbeat from this boot
// and labelled with its role.
func (n *RHCOSNode) waitReady(ctx context.Context, since time.Time) error {
	alive := func() error {
		if n.PID() == 0 {
			return fmt.Errorf("node %s is stopped", n.Name)
		}
		return nil
	}
	return waitNodeReady(ctx, n.cfg.Client, n.Name, n.cfg.Role, since, alive,
		filepath.Join(n.cfg.Dir, "fs", unitLogDir, "kubelet.service.log"))
}

// imageFiles is the node's image: what RHCOS ships in /usr (units,
// programs), the harness's per-node machine files in /etc, and the logging
// drop-in.
func (n *RHCOSNode) imageFiles() (map[string]string, error) {
	c := n.cfg
	crioUnit, err := imageCrioUnit(c.CrioUnit)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"/usr/lib/systemd/system/crio.service":                                             crioUnit,
		"/usr/lib/systemd/system/crio.service.d/10-harness-log.conf":                       harnessLogDropin,
		"/usr/lib/systemd/system/kubelet.service.d/10-harness-log.conf":                    harnessLogDropin,
		"/usr/lib/systemd/system/kubens.service.d/10-harness-log.conf":                     harnessLogDropin,
		"/usr/lib/systemd/system/kubens.service.d/10-harness-cpu0.conf":                    harnessCPU0Dropin,
		"/usr/lib/systemd/system/container-mount-namespace.service.d/10-harness-cpu0.conf": harnessCPU0Dropin,
		"/usr/bin/kubensenter":                           c.KubensenterScript,
		"/usr/bin/harness-runc":                          harnessRunc,
		"/usr/bin/kubelet":                               "symlink:" + c.KubeletBin,
		"/usr/bin/pinns":                                 "symlink:" + filepath.Join(c.CrioBinDir, "pinns"),
		"/usr/local/bin/crio":                            "symlink:" + filepath.Join(c.CrioBinDir, "crio"),
		"/etc/kubernetes/kubelet.conf":                   n.kubeletConf(),
		"/etc/kubernetes/kubeconfig":                     kubeconfigYAML(c.APIServerURL, c.Name, c.CAPEM, c.ClientCertPEM, c.ClientKeyPEM),
		"/etc/kubernetes/pki/ca.crt":                     string(c.CAPEM),
		"/etc/kubernetes/pki/kubelet.crt":                string(c.ServingCertPEM),
		"/etc/kubernetes/pki/kubelet.key":                string(c.ServingKeyPEM),
		"/etc/kubernetes/cni/net.d/10-loopback.conflist": cniConfig,
		"/etc/crio/crio.conf":                            crioConf,
		"/etc/crio/policy.json":                          insecurePolicy,
		"/etc/containers/policy.json":                    insecurePolicy,
		filepath.Join(unitLogDir, ".keep"):               "",
	}, nil
}

// imageCrioUnit adapts CRI-O's own crio.service to the node: the program is
// where the unit says (/usr/local/bin/crio); only OOMScoreAdjust goes, as
// the test VMs withhold CAP_SYS_RESOURCE and systemd would fail the unit
// when it cannot lower the score.
func imageCrioUnit(unit string) (string, error) {
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/crio") {
		return "", errors.New("crio.service from CRI-O does not start /usr/local/bin/crio; update the harness")
	}
	var out []string
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "OOMScoreAdjust=") {
			out = append(out, "# "+l+" (dropped by the harness: no CAP_SYS_RESOURCE on the test VMs)")
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), nil
}

const harnessLogDropin = `# The harness's: the node has no journald, so every service's output goes
# to /var/log/units/<unit>.log (the node's /var/log is a per-node folder).
[Service]
StandardOutput=append:/var/log/units/%n.log
StandardError=inherit
`

// harnessRunc is the runtime CRI-O calls: runc, after dropping from the
// bundle's (or exec's process file's) capability lists CAP_SYS_RESOURCE
// when it is not in the bounding set. The test VMs withhold it, and CRI-O
// gives a privileged container every capability the kernel knows, so runc
// fails with "unable to apply caps: operation not permitted" (containerd
// gives only the capabilities it has). The same VM limit as containerd's
// restrict_oom_score_adj.
const harnessRunc = `#!/bin/sh
# The harness's runc wrapper (see test/harness/node/rhcos.go).
bundle= process= prev=
for a in "$@"; do
  case $prev in --bundle|-b) bundle=$a ;; --process|-p) process=$a ;; esac
  case $a in --bundle=*) bundle=${a#*=} ;; --process=*) process=${a#*=} ;; esac
  prev=$a
done
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if [ $(( (0x$bnd >> 24) & 1 )) = 0 ]; then # CAP_SYS_RESOURCE is 24
  for f in ${bundle:+"$bundle/config.json"} ${process:+"$process"}; do
    [ -f "$f" ] && sed -i -E 's/"CAP_SYS_RESOURCE",[[:space:]]*//g; s/,[[:space:]]*"CAP_SYS_RESOURCE"//g' "$f"
  done
fi
exec /usr/sbin/runc "$@"
`

// harnessCPU0Dropin pins the units that pin a mount namespace on a file
// (kubens.service, ZTP's container-mount-namespace.service) to CPU 0. The
// test VMs' kernel fails that mount at random with EINVAL unless the new
// namespace is made on the CPU the node's own was made on (CPU 0, see
// boot's taskset): seen here as kubens.service failing on one boot in
// three, leaving kubelet and CRI-O in the host namespace. Real nodes do
// not need it; the unit texts stay the dependency's.
const harnessCPU0Dropin = `# The harness's (test VM kernel quirk, see test/harness/node/rhcos.go).
[Service]
CPUAffinity=0
`

const insecurePolicy = `{"default":[{"type":"insecureAcceptAnything"}]}
`

// crioConf is the harness's CRI-O configuration. Everything lives in the
// node's own paths (/run is the node's tmpfs, /var/lib a per-node folder).
// cgroupfs (not systemd): kubelet uses cgroupfs too, as on the containerd
// nodes. runc from Debian (bookworm's crun 1.8.1 refuses the OCI spec
// version CRI-O 1.34 writes: "unknown version specified"), conmon from Debian, the local pause image (never
// pulled), the loopback-only CNI config (only hostNetwork pods run).
const crioConf = `[crio]
root = "` + CrioStorage + `"
runroot = "` + CrioRunRoot + `"
storage_driver = "` + CrioStorageDriver + `"
log_dir = "/var/log/crio/pods"
version_file = "/var/run/crio/version"
version_file_persist = "/var/lib/crio/version"
clean_shutdown_file = "/var/lib/crio/clean.shutdown"

[crio.api]
listen = "` + CrioSocket + `"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
conmon = "/usr/bin/conmon"
conmon_cgroup = "pod"
cgroup_manager = "cgroupfs"
namespaces_dir = "/var/run/crio/ns"
pinns_path = "/usr/bin/pinns"
container_exits_dir = "/var/run/crio/exits"
container_attach_socket_dir = "/var/run/crio"

[crio.runtime.runtimes.runc]
runtime_path = "/usr/bin/harness-runc"
runtime_root = "/run/runc"

[crio.image]
pause_image = "` + images.PauseImage + `"
pause_command = "/pause"
signature_policy = "/etc/crio/policy.json"
signature_policy_dir = "/etc/crio/policies"

[crio.network]
network_dir = "/etc/kubernetes/cni/net.d"
plugin_dirs = ["` + CNIBinDir + `"]
`

// kubeletConf is the node's /etc/kubernetes/kubelet.conf.
func (n *RHCOSNode) kubeletConf() string {
	return kubeletConfigYAML(kubeletParams{
		Port:     n.port,
		CertFile: "/etc/kubernetes/pki/kubelet.crt", KeyFile: "/etc/kubernetes/pki/kubelet.key",
		CAFile: "/etc/kubernetes/pki/ca.crt",
		// The node's cgroup namespace is rooted at its own group.
		CgroupRoot: "/",
		Endpoint:   "unix://" + CrioSocket,
	})
}

// RHCOSMissingTools lists what an RHCOS node needs on the host beyond
// SystemdMissingTools: CRI-O's conmon (make crio-deps) and runc, skopeo
// (loads the images), and what the kubens units and kubensenter run.
func RHCOSMissingTools() []string {
	return missingTools("conmon", "runc", "skopeo", "bash", "findmnt", "ip", "mountpoint", "nsenter", "unshare")
}
