// Package node runs real Kubernetes nodes for the test harness, of two kinds.
//
// RHCOS-like nodes (rhcos.go, the default of the harness): systemd as the
// node's PID 1 (systemd.go), CRI-O and the kubelet as units, the units and
// scripts of a real node (kubenswrapper, kubensenter, kubens.service shipped
// disabled, the 01-kubens.conf drop-ins). Whether a node is encapsulated
// follows from its units, which the simulated Machine Config Daemon writes;
// nothing here chooses it.
//
// Containerd nodes (this file): a kubelet and a containerd inside the node's
// own PID and mount namespace, with the harness's pause program as the
// namespace's PID 1, in a mode the harness chooses. Tests that must stage a
// state directly (a Split node, one node in each mode on one pool) use them.
//
// Why a namespace per node: a privileged hostPID debug pod must read PID 1's
// mount namespace (the test VMs deny that for the machine's real PID 1), and
// each node must be encapsulated or not on its own. Inside its namespace a
// containerd node mounts tmpfs over /run, /var/lib and /var/log, the parents
// of the paths kubelet and containerd hard-code (/run/containerd/{s,fifo},
// /var/lib/kubelet/device-plugins, /var/log/{containers,pods}), so nodes do
// not collide and nothing of them is left on the host once the namespace dies.
//
// A containerd node runs in one of three modes:
//
//   - Plain: kubelet and containerd in the node's namespace, like a default
//     OpenShift node;
//   - Encapsulated: exactly what kubens.service does: a tmpfs at /run/kubens,
//     a mount namespace pinned at /run/kubens/mnt by `unshare
//     --mount=/run/kubens/mnt --propagation slave mount --make-rshared /`,
//     KUBENSMNT=/run/kubens/mnt in /run/kubens/env, /run/netns made a mount
//     point by `ip netns add kubensmnt && ip netns delete kubensmnt` (the
//     unit's OCPBUGS-83562 step), and both daemons started under
//     `nsenter --mount=/run/kubens/mnt` with KUBENSMNT set;
//   - Split: the broken half state, kubelet inside /run/kubens/mnt and
//     containerd outside.
//
// Reboot replaces the whole namespace, like a real reboot.
package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// Mode is how a node's kubelet and containerd relate to mount namespaces.
type Mode string

const (
	// Plain runs kubelet and containerd in the node's (PID 1's) mount namespace.
	Plain Mode = "plain"
	// Encapsulated runs both in the kubens namespace pinned at KubensMnt.
	Encapsulated Mode = "encapsulated"
	// Split runs the kubelet in the kubens namespace and containerd outside.
	Split Mode = "split"
)

// ParseMode accepts "plain", "encapsulated" or "split".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Plain, Encapsulated, Split:
		return m, nil
	}
	return "", fmt.Errorf("unknown node mode %q: use plain, encapsulated or split", s)
}

const (
	// KubensDir, KubensMnt and KubensEnv are kubens.service's paths.
	KubensDir = "/run/kubens"
	KubensMnt = "/run/kubens/mnt"
	KubensEnv = "/run/kubens/env"

	// RoleLabelPrefix + role is the node-role label, set by the admin
	// because NodeRestriction forbids the kubelet to set it.
	RoleLabelPrefix = "node-role.kubernetes.io/"

	// InitPIDFile (in the node's folder) holds "PID STARTTIME" of the node's
	// PID 1 as seen from the host, for people debugging a node.
	InitPIDFile = "init.pid"
)

// Config describes one node. Certificates come from the control plane's CA.
type Config struct {
	Name       string // node name; must resolve to 127.0.0.1 on the host (the apiserver dials it)
	Role       string // "master", "worker", ...: the node-role label
	Dir        string // the node's folder on the host; not under /run, /var/lib or /var/log
	CgroupRoot string // the kubelet's cgroupRoot, e.g. "/oc-kubens/<cluster>/<node>"
	Mode       Mode   // starting mode (Plain when empty)

	KubeletBin string   // kubelet binary; empty runs no kubelet (tests of the namespace plumbing)
	InitBin    string   // the pause program, PID 1 of the node's namespace
	Images     []string // image archives imported into containerd at every boot

	APIServerURL                  string
	CAPEM                         []byte
	ClientCertPEM, ClientKeyPEM   []byte // CN=system:node:<Name>, O=system:nodes
	ServingCertPEM, ServingKeyPEM []byte // for Name, localhost, 127.0.0.1

	// Client (admin) waits for Ready and sets the role label; nil skips both.
	Client kubernetes.Interface
	// State, when set, records the node's PID 1 so that after a crash the
	// next run kills it (and with it the whole node namespace).
	State *testenv.State
}

// Node is a running node. Name and Role are fixed; Mode changes on Reboot.
type Node struct {
	Name string
	Role string

	cfg Config

	mu         sync.Mutex
	mode       Mode
	init       *proc // the unshare whose child is the node's PID 1
	initPID    int   // host PID of the node's PID 1
	containerd *proc
	kubelet    *proc
	port       int
}

// Start boots the node in cfg.Mode and, when cfg.Client is set, waits until
// the Node is Ready and labelled with its role.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Mode == "" {
		cfg.Mode = Plain
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, err
	}
	for _, bad := range []string{"/run/", "/var/lib/", "/var/log/"} {
		if strings.HasPrefix(filepath.Clean(cfg.Dir)+"/", bad) {
			return nil, fmt.Errorf("node folder %s is under %s, which the node hides behind a tmpfs", cfg.Dir, bad)
		}
	}
	n := &Node{Name: cfg.Name, Role: cfg.Role, cfg: cfg}
	if err := n.writeFiles(); err != nil {
		return nil, err
	}
	if err := n.boot(ctx, cfg.Mode); err != nil {
		_ = n.Stop(context.Background())
		return nil, err
	}
	return n, nil
}

// Mode is the node's current mode.
func (n *Node) Mode() Mode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mode
}

// Dir is the node's folder on the host (logs: kubelet.log, containerd.log).
func (n *Node) Dir() string { return n.cfg.Dir }

// InitPID is the host PID of the node's PID 1 (0 when stopped).
func (n *Node) InitPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.initPID
}

// ContainerdAddress is the node's containerd socket, reachable from the host
// (`ctr --address ... -n k8s.io ...`).
func (n *Node) ContainerdAddress() string { return filepath.Join(n.cfg.Dir, "containerd.sock") }

// Reboot stops the node (its whole namespace) and boots it again in mode,
// then waits for Ready like Start.
func (n *Node) Reboot(ctx context.Context, mode Mode) error {
	if _, err := ParseMode(string(mode)); err != nil {
		return err
	}
	if err := n.Stop(ctx); err != nil {
		return err
	}
	return n.boot(ctx, mode)
}

// StopKubelet stops only the kubelet (its Node then goes stale in the API).
func (n *Node) StopKubelet(ctx context.Context) error {
	n.mu.Lock()
	k := n.kubelet
	n.kubelet = nil
	n.mu.Unlock()
	k.stop(10 * time.Second)
	n.untrack(k)
	return nil
}

// StartKubelet starts the kubelet again after StopKubelet, in the node's
// current mode, and waits for Ready.
func (n *Node) StartKubelet(ctx context.Context) error {
	n.mu.Lock()
	running := n.kubelet != nil && !n.kubelet.exited()
	mode := n.mode
	n.mu.Unlock()
	if running || n.cfg.KubeletBin == "" {
		return nil
	}
	return n.startKubeletReady(ctx, mode, time.Now())
}

// Stop stops kubelet and containerd (SIGTERM, then SIGKILL), then the
// node's PID 1, which takes every process left in the namespace with it
// (pods, shims), and removes the node's cgroups.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	k, c, in := n.kubelet, n.containerd, n.init
	n.kubelet, n.containerd, n.init, n.initPID = nil, nil, nil, 0
	n.mu.Unlock()
	k.stop(5 * time.Second)
	c.stop(5 * time.Second)
	var errs []error
	if in != nil {
		in.stop(3 * time.Second)
		if !in.exited() {
			errs = append(errs, fmt.Errorf("node %s: PID 1 (%d) does not exit", n.Name, in.pid))
		} else if n.cfg.State != nil {
			errs = append(errs, n.cfg.State.RemoveProcess(in.pid))
		}
	}
	n.untrack(k)
	n.untrack(c)
	n.untrack(in)
	_ = os.Remove(filepath.Join(n.cfg.Dir, InitPIDFile))
	errs = append(errs, RemoveCgroup(n.cfg.CgroupRoot, false, 10*time.Second))
	return errors.Join(errs...)
}

// boot creates a fresh node namespace in mode and starts the daemons.
func (n *Node) boot(ctx context.Context, mode Mode) error {
	since := time.Now()
	if err := CreateCgroup(n.cfg.CgroupRoot); err != nil {
		return err
	}
	if err := n.startInit(ctx); err != nil {
		return err
	}
	if mode != Plain {
		if err := n.encapsulate(ctx); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.mode = mode
	n.mu.Unlock()
	if err := n.startContainerd(ctx, mode == Encapsulated); err != nil {
		return err
	}
	if err := images.Import(ctx, n.ContainerdAddress(), n.cfg.Images...); err != nil {
		return err
	}
	if n.cfg.KubeletBin == "" {
		return nil
	}
	return n.startKubeletReady(ctx, mode, since)
}

// startKubeletReady starts the kubelet and waits for Ready. The kubelet's
// port was free when the node's files were written; if another process took
// it since, the kubelet exits, and it is started again on a new port.
func (n *Node) startKubeletReady(ctx context.Context, mode Mode, since time.Time) error {
	for attempt := 1; ; attempt++ {
		if err := n.startKubelet(ctx, mode); err != nil {
			return err
		}
		err := n.waitReady(ctx, since)
		if err == nil || attempt == 3 || !n.kubeletPortClash() {
			return err
		}
		port, perr := FreePort()
		if perr != nil {
			return errors.Join(err, perr)
		}
		n.port = port
		if werr := os.WriteFile(filepath.Join(n.cfg.Dir, "kubelet.yaml"), []byte(n.kubeletConfig(port)), 0o600); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// kubeletPortClash says whether the kubelet exited because its port was taken.
func (n *Node) kubeletPortClash() bool {
	n.mu.Lock()
	k := n.kubelet
	n.mu.Unlock()
	if k == nil || !k.exited() {
		return false
	}
	b, _ := os.ReadFile(filepath.Join(n.cfg.Dir, "kubelet.log"))
	if i := bytes.LastIndex(b, []byte("\n==== ")); i >= 0 {
		b = b[i:] // this start's part of the log only
	}
	return bytes.Contains(b, []byte("address already in use"))
}

// initScript runs as the new namespace's first process: make / shared like
// systemd does (so the kubens namespace can be a slave of it), hide the
// hard-coded daemon paths behind tmpfs, then become the pause program.
const initScript = `set -e
mount --make-rshared /
for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=755 tmpfs "$d"; done
mkdir -p /run/containerd/s /run/containerd/fifo /var/lib/kubelet/device-plugins /var/log/containers /var/log/pods
exec "$0"`

func (n *Node) startInit(ctx context.Context) error {
	// taskset -c 0: on the test VMs pinning a mount namespace to a file fails
	// at random with EINVAL unless both namespaces were created on the same
	// CPU; the kubens namespace is created on CPU 0 too (see encapsulate).
	// The daemons are started from the harness, so they get every CPU.
	cmd := exec.Command("taskset", "-c", "0",
		"unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--propagation", "private",
		"--", "/bin/sh", "-c", initScript, n.cfg.InitBin)
	p, err := n.startProc("init", cmd, filepath.Join(n.cfg.Dir, "init.log"))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.init = p
	n.mu.Unlock()
	if err := p.findDescendant(ctx, filepath.Base(n.cfg.InitBin)); err != nil {
		return fmt.Errorf("node %s: namespace did not start (see %s/init.log): %w", n.Name, n.cfg.Dir, err)
	}
	st, err := StartTime(p.pid)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.initPID = p.pid
	n.mu.Unlock()
	if n.cfg.State != nil {
		if err := n.cfg.State.AddProcess("node "+n.Name+" PID 1", p.pid, false); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(n.cfg.Dir, InitPIDFile), []byte(fmt.Sprintf("%d %d\n", p.pid, st)), 0o644)
}

// kubensScript is kubens.service's recipe (openshift/machine-config-operator
// templates/common/_base/units/kubens.service.yaml), run in the node's
// namespace as systemd runs the unit in the host's.
const kubensScript = `set -e
mkdir -p ` + KubensDir + `
mount -t tmpfs -o mode=755 tmpfs ` + KubensDir + `
mount --make-unbindable ` + KubensDir + `
touch ` + KubensMnt + `
# Retried: the same-CPU quirk (see startInit) made this fail at random
# before both namespaces were created on CPU 0; the retry is insurance.
for i in 1 2 3 4 5; do
  unshare --mount=` + KubensMnt + ` --propagation slave mount --make-rshared / && break
  [ "$i" = 5 ] && exit 1
  sleep 0.1
done
echo KUBENSMNT=` + KubensMnt + ` > ` + KubensEnv + `
# Since OCPBUGS-83562 the unit makes sure /run/netns is a mount point: ip
# bind-mounts /run/netns on itself (shared) for its first netns, and the mount
# stays after the delete; it propagates into the slave kubens namespace.
# Same line, same exit code rule as the unit's last ExecStartPost.
ip netns add kubensmnt && ip netns delete kubensmnt || mountpoint -q /run/netns`

func (n *Node) encapsulate(ctx context.Context) error {
	pid := strconv.Itoa(n.InitPID())
	out, err := exec.CommandContext(ctx, "taskset", "-c", "0", "nsenter", "--target", pid, "--mount", "--pid",
		"--", "/bin/sh", "-c", kubensScript).CombinedOutput()
	if err != nil {
		return fmt.Errorf("node %s: creating the kubens namespace: %v\n%s", n.Name, err, out)
	}
	return nil
}

// daemonCmd runs bin inside the node's PID and mount namespaces, and inside
// the kubens namespace when inKubens, the way kubenswrapper does it.
func (n *Node) daemonCmd(inKubens bool, bin string, args ...string) *exec.Cmd {
	argv := []string{"--target", strconv.Itoa(n.InitPID()), "--pid", "--mount", "--"}
	env := os.Environ()
	if inKubens {
		argv = append(argv, "nsenter", "--mount="+KubensMnt, "--")
		env = append(env, "KUBENSMNT="+KubensMnt)
	}
	cmd := exec.Command("nsenter", append(append(argv, bin), args...)...)
	cmd.Env = env
	return cmd
}

func (n *Node) startContainerd(ctx context.Context, inKubens bool) error {
	cmd := n.daemonCmd(inKubens, "containerd", "--config", filepath.Join(n.cfg.Dir, "containerd.toml"))
	p, err := n.startProc("containerd", cmd, filepath.Join(n.cfg.Dir, "containerd.log"))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.containerd = p
	n.mu.Unlock()
	if err := p.findDescendant(ctx, "containerd"); err != nil {
		return fmt.Errorf("node %s: %w (see %s/containerd.log)", n.Name, err, n.cfg.Dir)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("unix", n.ContainerdAddress())
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("node %s: containerd does not answer on %s (see %s/containerd.log): %v", n.Name, n.ContainerdAddress(), n.cfg.Dir, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *Node) startKubelet(ctx context.Context, mode Mode) error {
	cmd := n.daemonCmd(mode != Plain, n.cfg.KubeletBin,
		"--config="+filepath.Join(n.cfg.Dir, "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(n.cfg.Dir, "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(n.cfg.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.cfg.Dir, "pki"),
		"--hostname-override="+n.Name,
		"--v=1",
	)
	p, err := n.startProc("kubelet", cmd, filepath.Join(n.cfg.Dir, "kubelet.log"))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.kubelet = p
	n.mu.Unlock()
	if err := p.findDescendant(ctx, "kubelet"); err != nil {
		return fmt.Errorf("node %s: %w (see %s/kubelet.log)", n.Name, err, n.cfg.Dir)
	}
	return nil
}

// waitReady waits until the Node reports Ready with a heartbeat from this
// boot, then makes sure it carries its role label.
func (n *Node) waitReady(ctx context.Context, since time.Time) error {
	alive := func() error {
		n.mu.Lock()
		k := n.kubelet
		n.mu.Unlock()
		if k == nil || k.exited() {
			return fmt.Errorf("node %s: kubelet exited", n.Name)
		}
		return nil
	}
	return waitNodeReady(ctx, n.cfg.Client, n.Name, n.cfg.Role, since, alive, filepath.Join(n.cfg.Dir, "kubelet.log"))
}

// waitNodeReady waits until the Node reports Ready with a heartbeat from
// since on, labelling it with its role first (NodeRestriction forbids the
// kubelet to). alive reports a node that can no longer become Ready; log
// names the kubelet's log in errors. A nil client waits for nothing.
func waitNodeReady(ctx context.Context, c kubernetes.Interface, name, role string, since time.Time, alive func() error, log string) error {
	if c == nil {
		return nil
	}
	// Heartbeats have a one-second resolution.
	since = since.Truncate(time.Second)
	labelled := false
	var last string
	for {
		if err := alive(); err != nil {
			return fmt.Errorf("%w (see %s)", err, log)
		}
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if !labelled && role != "" {
				if _, ok := node.Labels[RoleLabelPrefix+role]; !ok {
					patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{RoleLabelPrefix + role: ""}}})
					if _, err := c.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
						return fmt.Errorf("labelling node %s: %w", name, err)
					}
				}
				labelled = true
			}
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					last = fmt.Sprintf("Ready=%s (%s)", cond.Status, cond.Message)
					if cond.Status == corev1.ConditionTrue && !cond.LastHeartbeatTime.Time.Before(since) && (labelled || role == "") {
						return nil
					}
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready (%s; see %s): %w", name, last, log, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startProc starts a daemon or the node's namespace and records its
// host-side wrapper (taskset+unshare, or nsenter: own process group) in the
// run state. Recording only the node's PID 1 is not enough: after a crash
// the next run's cleanup kills PID 1, and the wrappers in the host's PID
// namespace would still be exiting when it returns. Recorded, they are
// killed and waited for too.
func (n *Node) startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	p, err := startProc(name, cmd, logPath)
	if err != nil || n.cfg.State == nil {
		return p, err
	}
	if err := n.cfg.State.AddProcess(fmt.Sprintf("node %s %s wrapper", n.Name, name), p.cmd.Process.Pid, true); err != nil {
		p.stop(time.Second)
		return nil, err
	}
	return p, nil
}

// untrack drops p's wrapper from the run state once it has exited.
func (n *Node) untrack(p *proc) {
	if p == nil || n.cfg.State == nil || !p.exited() {
		return
	}
	_ = n.cfg.State.RemoveProcess(p.cmd.Process.Pid)
}
