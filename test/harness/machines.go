package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// startMachines starts RHCOS-like nodes in parallel. Each writes its pool's
// base config (mcosim's 00-<role>, what the simulated MCO renders for the
// pool at bootstrap) at its first boot, through the simulated Machine Config
// Daemon's writer, then reboots into it.
func (c *Cluster) startMachines(ctx context.Context, names []string, specs []NodeSpec) error {
	crioUnit, err := os.ReadFile(testenv.CrioUnitFile())
	if err != nil {
		return fmt.Errorf("crio.service from CRI-O: %w (run `make crio-bins`)", err)
	}
	cfgs := make([]node.RHCOSConfig, len(specs))
	for i, s := range specs {
		cert, key, scert, skey, err := c.nodeCerts(names[i])
		if err != nil {
			return err
		}
		base := mcosim.BaseConfigRaw(baseRole(s.Role))
		cfgs[i] = node.RHCOSConfig{
			Name: names[i], Role: s.Role,
			Dir:               filepath.Join(c.fp.Dir, "nodes", names[i]),
			CgroupRoot:        c.fp.Cgroup + "/" + names[i],
			KubeletBin:        filepath.Join(testenv.K8sBinDir(), "kubelet"),
			CrioBinDir:        testenv.CrioBinDir(),
			CrioUnit:          string(crioUnit),
			KubensenterScript: mcosim.KubensenterScript(),
			Images:            map[string]string{images.ToolsImage: c.Images.ToolsTar, images.PauseImage: c.Images.PauseTar},
			APIServerURL:      c.ControlPlane.APIServerURL, CAPEM: c.ControlPlane.CAPEM(),
			ClientCertPEM: cert, ClientKeyPEM: key, ServingCertPEM: scert, ServingKeyPEM: skey,
			Firstboot: func(ctx context.Context, n *node.RHCOSNode) error {
				return mcosim.WriteConfig(ctx, machine{n}, nil, base)
			},
			Client: c.Client, State: c.state,
		}
	}
	machines, err := startAll(cfgs, func(cfg node.RHCOSConfig) (*node.RHCOSNode, error) { return node.StartRHCOS(ctx, cfg) })
	for _, m := range machines {
		c.Machines = append(c.Machines, m)
		c.addPID(m.InitPID())
	}
	return err
}

// baseRole is the role whose base config a node boots with: the master's for
// masters, the worker's for every other pool (custom pools inherit the
// worker configs).
func baseRole(role string) string {
	if role == "master" {
		return "master"
	}
	return "worker"
}

// machine is an RHCOS node as the simulated Machine Config Daemon sees it.
type machine struct{ n *node.RHCOSNode }

func (m machine) Root() string { return m.n.Root() }

func (m machine) Systemctl(ctx context.Context, args ...string) error {
	_, err := m.n.Systemctl(ctx, args...)
	return err
}

// Machine returns the RHCOS node named name (with or without the cluster
// prefix), or nil.
func (c *Cluster) Machine(name string) *node.RHCOSNode {
	for _, n := range c.Machines {
		if n.Name == name || n.Name == c.Name+"-"+name {
			return n
		}
	}
	return nil
}

// NodeNames lists every Kubernetes node of the cluster, whatever its kind.
func (c *Cluster) NodeNames() []string {
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	for _, n := range c.Machines {
		names = append(names, n.Name)
	}
	return names
}

// NodeName is the full name of a node given with or without the cluster
// prefix ("" when there is none).
func (c *Cluster) NodeName(short string) string {
	if n := c.Node(short); n != nil {
		return n.Name
	}
	if m := c.Machine(short); m != nil {
		return m.Name
	}
	return ""
}

// The simulated MCO's MachineHost: RHCOS nodes get their rendered config
// written by its daemon and are rebooted without a mode.

// MachineRoot is the host path of the node's "/" (ok false unless it is a
// running RHCOS node).
func (c *Cluster) MachineRoot(name string) (string, bool) {
	m := c.Machine(name)
	if m == nil || m.Root() == "" {
		return "", false
	}
	return m.Root(), true
}

// MachineSystemctl runs systemctl on an RHCOS node.
func (c *Cluster) MachineSystemctl(ctx context.Context, name string, args ...string) error {
	m := c.Machine(name)
	if m == nil {
		return fmt.Errorf("no RHCOS node %q in cluster %s", name, c.Name)
	}
	return machine{m}.Systemctl(ctx, args...)
}

// RebootMachine reboots an RHCOS node: its systemd halts and a fresh one
// boots with the same files. It returns once systemd has booted; the node
// reports Ready a little later.
func (c *Cluster) RebootMachine(ctx context.Context, name string) error {
	m := c.Machine(name)
	if m == nil {
		return fmt.Errorf("no RHCOS node %q in cluster %s", name, c.Name)
	}
	err := m.Reboot(ctx)
	c.addPID(m.InitPID())
	return err
}
