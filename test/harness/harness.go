// Package harness starts a whole local cluster for the integration tests and
// the demo: a real control plane (package controlplane) and real nodes
// (package node), with the tools and pause images imported into every node.
//
// Everything a cluster changes on the machine is recorded in its
// testenv.State: the nodes' PID 1s (killing one takes its whole node
// namespace with it), the control plane's processes, one cgroup tree per
// cluster (/oc-kubens-<id> in every hierarchy), the /etc/hosts lines that make
// node names resolve to 127.0.0.1, the sysctls the kubelet rewrites, and the
// run folder under testenv.StateRoot(). Down undoes it all; Leftovers checks
// that nothing is left. A run that crashed is undone by the next Up, and a
// live run (its owner holds a lock) is never touched.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/test/harness/controlplane"
	"github.com/oc-kubens/oc-kubens/test/harness/images"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// KubeletSysctls are the global sysctls the kubelet rewrites at start, and
// the inotify limit the harness raises; the harness saves them before the
// first kubelet and restores them when the last cluster on the machine goes
// down.
var KubeletSysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
	inotifyInstances,
}

// Each node takes about 7 inotify instances (kubelet 6, containerd 1);
// Debian's default of 128 per user caps all clusters on a machine together
// at about 15 nodes, so Up raises it to at least minInotifyInstances.
const (
	inotifyInstances    = "fs.inotify.max_user_instances"
	minInotifyInstances = 1024
)

// NodeSpec describes one node of the cluster.
type NodeSpec struct {
	Name string    // without the cluster's prefix, e.g. "worker-0"
	Role string    // node-role label: "master", "worker", "infra", ...
	Mode node.Mode // starting mode of a containerd node; empty takes Options.Mode
}

// NodeKind is what the cluster's nodes are.
type NodeKind string

const (
	// RHCOSNodes (the default) boot like RHCOS: systemd as PID 1, CRI-O,
	// kubelet and CRI-O run as units (node.StartRHCOS). The pool's rendered
	// config, written by the simulated Machine Config Daemon, decides
	// whether a node is encapsulated; the harness never does.
	RHCOSNodes NodeKind = "rhcos"
	// ContainerdNodes have a pause program as PID 1 and a kubelet and
	// containerd that the harness starts in a mode it chooses (node.Start):
	// for tests that stage a state directly (Split, a given mode per node)
	// and for the simulator's Rebooter.
	ContainerdNodes NodeKind = "containerd"
)

// Options configure Up. The zero value gives 1 master and 2 workers,
// RHCOS-like.
type Options struct {
	// Name names the cluster; node names get "<Name>-" in front so that two
	// clusters running at once never share a node name (/etc/hosts). Empty:
	// a random "kc" + 4 hex digits.
	Name string
	// NoNodePrefix names nodes exactly as their specs ("master-0"), for the
	// demo. Only one such cluster can run at a time.
	NoNodePrefix bool
	// Masters and Workers give the default node set (master-N, worker-N)
	// when Nodes is empty. Both zero means 1 and 2.
	Masters, Workers int
	// Nodes, when set, replaces Masters/Workers.
	Nodes []NodeSpec
	// Kind is what the nodes are (RHCOSNodes when empty).
	Kind NodeKind
	// Mode is every node's starting mode unless NodeModes or the spec says
	// otherwise. Containerd nodes only: on RHCOS nodes the config decides.
	Mode node.Mode
	// NodeModes sets the starting mode by node name (with or without prefix).
	NodeModes map[string]node.Mode
	// ExtraPools are created beside master and worker.
	ExtraPools []controlplane.Pool
	// NoMachineConfigCRDs starts plain Kubernetes (no MachineConfig CRDs, no pools).
	NoMachineConfigCRDs bool
	// SystemdNodes are extra nodes whose PID 1 is systemd (node.StartSystemd;
	// no kubelet yet, so they are not Kubernetes nodes), named like Nodes.
	SystemdNodes []string
	// Logf receives one line per start-up step; nil discards.
	Logf func(format string, args ...any)
}

// Cluster is a running cluster.
type Cluster struct {
	Name         string
	ControlPlane *controlplane.ControlPlane
	// Nodes are the containerd nodes, Machines the RHCOS-like ones (one
	// of the two is empty).
	Nodes        []*node.Node
	Machines     []*node.RHCOSNode
	SystemdNodes []*node.SystemdNode
	Images       *images.Set
	// Client is an admin clientset.
	Client kubernetes.Interface
	// StartDuration is how long Up took.
	StartDuration time.Duration

	state    *testenv.State
	fp       footprint
	pidsMu   sync.Mutex
	downOnce sync.Once
	downErr  error
}

// footprint is what a cluster puts on the machine, for Leftovers.
type footprint struct {
	ID        string            `json:"id"`     // state ID: hosts marker
	Dir       string            `json:"dir"`    // run folder
	Cgroup    string            `json:"cgroup"` // "/oc-kubens-<id>"
	HostNames []string          `json:"hostNames"`
	Sysctls   map[string]string `json:"sysctls"` // the machine's values before any kubelet
	PIDs      []procID          `json:"pids"`    // every process this cluster started
	// HostCgroups is node.HostCgroupSnapshot before the first systemd node.
	HostCgroups []string `json:"hostCgroups,omitempty"`
}

// Up starts the control plane and the nodes, and returns when every node is
// Ready and labelled. On error nothing is left running.
func Up(ctx context.Context, o Options) (_ *Cluster, err error) {
	begin := time.Now()
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := testenv.CheckRoot(); err != nil {
		return nil, err
	}
	if missing := node.MissingTools(); len(missing) > 0 {
		return nil, fmt.Errorf("node tools missing (%s): run `make node-deps`", strings.Join(missing, ", "))
	}
	specs, err := o.nodeSpecs()
	if err != nil {
		return nil, err
	}
	if o.Kind == "" {
		o.Kind = RHCOSNodes
	}
	switch o.Kind {
	case RHCOSNodes:
		if o.stagesModes(specs) {
			return nil, errors.New("node modes are chosen by the harness only on containerd nodes (Kind: ContainerdNodes); on RHCOS nodes the MachineConfig decides")
		}
		if missing := append(node.SystemdMissingTools(), node.RHCOSMissingTools()...); len(missing) > 0 {
			return nil, fmt.Errorf("RHCOS node tools missing (%s): run `make node-deps crio-deps crio-bins`", strings.Join(missing, ", "))
		}
	case ContainerdNodes:
	default:
		return nil, fmt.Errorf("unknown node kind %q", o.Kind)
	}
	state, err := testenv.NewState("cluster")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: o.Name, state: state,
		fp: footprint{ID: state.ID(), Dir: state.Dir(), Cgroup: "/oc-kubens-" + state.ID()}}
	defer func() {
		if err != nil {
			if derr := c.Down(context.Background()); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up after the failed start: %w", derr))
			}
		}
	}()
	if c.Name == "" {
		c.Name = randomName()
	}
	repo, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}

	if len(o.SystemdNodes) > 0 || o.Kind == RHCOSNodes {
		if c.fp.HostCgroups, err = node.HostCgroupSnapshot(); err != nil {
			return nil, err
		}
	}

	// Record the cgroup tree before anything creates it, so a crash at any
	// point still gets it removed.
	mounts, err := node.CgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if err := state.AddCgroup(filepath.Join(m, c.fp.Cgroup)); err != nil {
			return nil, err
		}
	}

	// The control plane and the images do not depend on each other.
	step := time.Now()
	imgErr := make(chan error, 1)
	go func() {
		var err error
		c.Images, err = images.Build(ctx, filepath.Join(c.fp.Dir, "images"), repo, "")
		imgErr <- err
	}()
	c.ControlPlane, err = controlplane.Start(ctx, controlplane.Options{
		Dir: filepath.Join(c.fp.Dir, "controlplane"), State: state,
		ExtraPools: o.ExtraPools, NoMachineConfigCRDs: o.NoMachineConfigCRDs,
		Logf: func(f string, a ...any) { logf("control plane: "+f, a...) },
	})
	if ierr := <-imgErr; ierr != nil {
		err = errors.Join(err, ierr)
	}
	if err != nil {
		return nil, err
	}
	for _, pid := range c.ControlPlane.PIDs() {
		c.addPID(pid)
	}
	logf("control plane and images: %s", time.Since(step).Round(time.Millisecond))
	if c.Client, err = kubernetes.NewForConfig(c.ControlPlane.RESTConfig()); err != nil {
		return nil, err
	}

	// Before the first kubelet rewrites them.
	if err := state.SaveSysctls(KubeletSysctls...); err != nil {
		return nil, err
	}
	if c.fp.Sysctls, err = readSysctls(); err != nil {
		return nil, err
	}
	if err := c.savedSysctls(); err != nil {
		return nil, err
	}
	if err := raiseSysctl(inotifyInstances, minInotifyInstances); err != nil {
		return nil, err
	}

	step = time.Now()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
		if !o.NoNodePrefix {
			names[i] = c.Name + "-" + s.Name
		}
		if err := state.AddHost(names[i], "127.0.0.1"); err != nil {
			return nil, err
		}
		c.fp.HostNames = append(c.fp.HostNames, names[i])
	}
	if o.Kind == RHCOSNodes {
		err = c.startMachines(ctx, names, specs)
	} else {
		err = c.startNodes(ctx, names, specs, o)
	}
	if err != nil {
		return nil, err
	}
	logf("%d %s nodes Ready: %s", len(specs), o.Kind, time.Since(step).Round(time.Millisecond))
	for _, s := range o.SystemdNodes {
		name := s
		if !o.NoNodePrefix {
			name = c.Name + "-" + s
		}
		step = time.Now()
		sn, err := node.StartSystemd(ctx, node.SystemdConfig{Name: name, Dir: filepath.Join(c.fp.Dir, "systemd-nodes", name),
			CgroupRoot: c.fp.Cgroup + "/" + name, State: state})
		if err != nil {
			return nil, err
		}
		c.SystemdNodes = append(c.SystemdNodes, sn)
		c.addPID(sn.PID())
		logf("systemd node %s booted: %s", name, time.Since(step).Round(time.Millisecond))
	}
	c.StartDuration = time.Since(begin)
	logf("cluster %s up in %s", c.Name, c.StartDuration.Round(time.Millisecond))
	return c, nil
}

// startNodes starts containerd nodes in parallel.
func (c *Cluster) startNodes(ctx context.Context, names []string, specs []NodeSpec, o Options) error {
	cfgs := make([]node.Config, len(specs))
	for i, s := range specs {
		var err error
		if cfgs[i], err = c.nodeConfig(names[i], s, o); err != nil {
			return err
		}
	}
	nodes, err := startAll(cfgs, func(cfg node.Config) (*node.Node, error) { return node.Start(ctx, cfg) })
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, n)
		c.addPID(n.InitPID())
	}
	return err
}

// startAll starts one node per config in parallel and returns those that
// started (a failed start leaves nothing running of its node), with every
// error.
func startAll[C any, N comparable](cfgs []C, start func(C) (N, error)) ([]N, error) {
	nodes := make([]N, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = start(cfgs[i])
		}()
	}
	wg.Wait()
	var zero N
	var started []N
	for _, n := range nodes {
		if n != zero {
			started = append(started, n)
		}
	}
	return started, errors.Join(errs...)
}

// stagesModes says whether the options choose node modes.
func (o Options) stagesModes(specs []NodeSpec) bool {
	if o.Mode != "" || len(o.NodeModes) > 0 {
		return true
	}
	for _, s := range specs {
		if s.Mode != "" {
			return true
		}
	}
	return false
}

func (o Options) nodeSpecs() ([]NodeSpec, error) {
	specs := o.Nodes
	if len(specs) == 0 {
		m, w := o.Masters, o.Workers
		if m == 0 && w == 0 {
			m, w = 1, 2
		}
		for i := 0; i < m; i++ {
			specs = append(specs, NodeSpec{Name: fmt.Sprintf("master-%d", i), Role: "master"})
		}
		for i := 0; i < w; i++ {
			specs = append(specs, NodeSpec{Name: fmt.Sprintf("worker-%d", i), Role: "worker"})
		}
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Name == "" || seen[s.Name] {
			return nil, fmt.Errorf("node names must be set and unique, got %q twice or empty", s.Name)
		}
		seen[s.Name] = true
	}
	return specs, nil
}

// nodeCerts issues a node's client (system:node:<name>) and serving certificates.
func (c *Cluster) nodeCerts(name string) (cert, key, scert, skey []byte, err error) {
	cp := c.ControlPlane
	if cert, key, err = cp.IssueClientCert("system:node:"+name, []string{"system:nodes"}); err != nil {
		return nil, nil, nil, nil, err
	}
	scert, skey, err = cp.IssueServingCert(name, []string{name, "localhost", "127.0.0.1"})
	return cert, key, scert, skey, err
}

func (c *Cluster) nodeConfig(name string, s NodeSpec, o Options) (node.Config, error) {
	mode := o.Mode
	if s.Mode != "" {
		mode = s.Mode
	}
	if m, ok := o.NodeModes[s.Name]; ok {
		mode = m
	}
	if m, ok := o.NodeModes[name]; ok {
		mode = m
	}
	cp := c.ControlPlane
	cert, key, scert, skey, err := c.nodeCerts(name)
	if err != nil {
		return node.Config{}, err
	}
	return node.Config{
		Name: name, Role: s.Role, Mode: mode,
		Dir:          filepath.Join(c.fp.Dir, "nodes", name),
		CgroupRoot:   c.fp.Cgroup + "/" + name,
		KubeletBin:   filepath.Join(testenv.K8sBinDir(), "kubelet"),
		InitBin:      c.Images.PauseBin,
		Images:       c.Images.Tarballs(),
		APIServerURL: cp.APIServerURL, CAPEM: cp.CAPEM(),
		ClientCertPEM: cert, ClientKeyPEM: key, ServingCertPEM: scert, ServingKeyPEM: skey,
		Client: c.Client, State: c.state,
	}, nil
}

// Node returns the node named name (with or without the cluster prefix), or nil.
func (c *Cluster) Node(name string) *node.Node {
	for _, n := range c.Nodes {
		if n.Name == name || n.Name == c.Name+"-"+name {
			return n
		}
	}
	return nil
}

// RESTConfig is an admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return c.ControlPlane.RESTConfig() }

// KubeconfigPath is the admin kubeconfig.
func (c *Cluster) KubeconfigPath() string { return c.ControlPlane.KubeconfigPath }

// Kubectl is the path of the kubectl binary matching the cluster.
func Kubectl() string { return filepath.Join(testenv.K8sBinDir(), "kubectl") }

// Dir is the cluster's run folder (logs: controlplane/*.log, nodes/*/*.log).
func (c *Cluster) Dir() string { return c.fp.Dir }

// Reboot reboots a node into encapsulation (encapsulated) or out of it, and
// waits until it is Ready again. It makes *Cluster a mcosim.Rebooter.
func (c *Cluster) Reboot(ctx context.Context, nodeName string, encapsulated bool) error {
	if c.Machine(nodeName) != nil {
		return fmt.Errorf("node %s is RHCOS-like: its units decide its mode (the simulated MCO writes its config and calls RebootMachine)", nodeName)
	}
	n := c.Node(nodeName)
	if n == nil {
		return fmt.Errorf("no node %q in cluster %s", nodeName, c.Name)
	}
	mode := node.Plain
	if encapsulated {
		mode = node.Encapsulated
	}
	return c.RebootMode(ctx, n.Name, mode)
}

// RebootMode reboots a node into any mode, including the broken Split.
func (c *Cluster) RebootMode(ctx context.Context, nodeName string, mode node.Mode) error {
	n := c.Node(nodeName)
	if n == nil {
		return fmt.Errorf("no node %q in cluster %s", nodeName, c.Name)
	}
	err := n.Reboot(ctx, mode)
	if pid := n.InitPID(); pid > 0 {
		c.addPID(pid)
	}
	return err
}

// Down stops the nodes and the control plane and undoes everything the
// cluster changed on the machine. It is safe to call more than once.
func (c *Cluster) Down(ctx context.Context) error {
	c.downOnce.Do(func() {
		var stops []func(context.Context) error
		for _, n := range c.Nodes {
			stops = append(stops, n.Stop)
		}
		for _, n := range c.Machines {
			stops = append(stops, n.Stop)
		}
		for _, n := range c.SystemdNodes {
			stops = append(stops, n.Stop)
		}
		errs := make([]error, len(stops))
		var wg sync.WaitGroup
		for i, stop := range stops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = stop(ctx)
			}()
		}
		wg.Wait()
		if c.ControlPlane != nil {
			errs = append(errs, c.ControlPlane.Stop(ctx))
		}
		// The safety net: kills whatever is still recorded, removes the
		// cgroups, hosts lines and the run folder, restores the sysctls
		// when no other cluster runs.
		errs = append(errs, c.state.Close())
		c.downErr = errors.Join(errs...)
	})
	return c.downErr
}

type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func (c *Cluster) addPID(pid int) {
	if pid <= 0 {
		return
	}
	st, err := node.StartTime(pid)
	if err != nil {
		return
	}
	c.pidsMu.Lock()
	c.fp.PIDs = append(c.fp.PIDs, procID{pid, st})
	c.pidsMu.Unlock()
}

func randomName() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "kc" + hex.EncodeToString(b)
}

func readSysctls() (map[string]string, error) {
	m := map[string]string{}
	for _, n := range KubeletSysctls {
		b, err := os.ReadFile(sysctlPath(n))
		if err != nil {
			return nil, err
		}
		m[n] = strings.TrimSpace(string(b))
	}
	return m, nil
}

// raiseSysctl sets an integer sysctl to min unless it is higher already.
func raiseSysctl(name string, min int) error {
	b, err := os.ReadFile(sysctlPath(name))
	if err != nil {
		return err
	}
	if cur, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && cur >= min {
		return nil
	}
	return os.WriteFile(sysctlPath(name), []byte(strconv.Itoa(min)+"\n"), 0o644)
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}
