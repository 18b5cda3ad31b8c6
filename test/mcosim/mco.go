package mcosim

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	mcfginformers "github.com/openshift/client-go/machineconfiguration/informers/externalversions"
	mcfglisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Rebooter reboots a real node into (encapsulated=true) or out of mount
// namespace encapsulation. It returns once the node's kubelet is starting
// again; the simulator then waits for the node to report Ready. An error
// means the node did not come back: as with a real machine that does not
// boot, the node stays Working and NotReady, and the daemon waits for it
// without a deadline (it never goes Degraded for that).
type Rebooter interface {
	Reboot(ctx context.Context, nodeName string, encapsulated bool) error
}

// MachineHost is a Rebooter whose nodes may be RHCOS-like machines with
// their own files and systemd. For those the daemon does what the MCD does:
// it writes the new rendered config into the machine (WriteConfig, from the
// config the node is at), then reboots it with RebootMachine; the machine's
// units alone then decide whether kubelet and CRI-O end up encapsulated.
// Nodes for which MachineRoot says false go through Reboot.
type MachineHost interface {
	Rebooter
	// MachineRoot is the host path of the node's "/" (its mount
	// namespace's view), false when the node is not such a machine.
	MachineRoot(nodeName string) (root string, ok bool)
	// MachineSystemctl runs systemctl on the machine.
	MachineSystemctl(ctx context.Context, nodeName string, args ...string) error
	// RebootMachine halts the machine's systemd and boots a fresh one; it
	// returns once systemd has booted (the node reports Ready later).
	RebootMachine(ctx context.Context, nodeName string) error
}

// hostedMachine is one node of a MachineHost as a Machine.
type hostedMachine struct {
	host MachineHost
	name string
	root string
}

func (h hostedMachine) Root() string { return h.root }

func (h hostedMachine) Systemctl(ctx context.Context, args ...string) error {
	return h.host.MachineSystemctl(ctx, h.name, args...)
}

// Options tune the simulator. Zero values take the defaults.
type Options struct {
	// RenderDelay is how long the render controller waits after a change
	// before rendering (the MCO waits 5s to batch MachineConfig changes).
	RenderDelay time.Duration
	// StepDelay paces the daemon between Working, the drain request and
	// the reboot (stands in for the MCD's checks and file writes), and is how
	// long the drain controller's drain takes. Default 500ms.
	StepDelay time.Duration
	// RebootDuration is how long a reboot of a node takes when there is no
	// Rebooter (object-only nodes). Default 1s.
	RebootDuration time.Duration
	// ControlPlaneTopology is the cluster's Infrastructure
	// status.controlPlaneTopology (SingleReplica, DualReplica,
	// HighlyAvailable, HighlyAvailableArbiter). Empty: derived from the
	// control-plane nodes present at Start, as the installer does from its
	// replica count. On SingleReplica the daemon does not drain.
	ControlPlaneTopology configv1.TopologyMode
	// ResyncPeriod re-examines every pool and node now and then, a safety
	// net under the watches. Default 30s.
	ResyncPeriod time.Duration
	// Roles are the built-in pool roles whose pools and base MachineConfigs
	// (00-<role>) are created when absent. Default master, worker.
	Roles []string
	// Logf receives one line per notable step; nil discards.
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.RenderDelay <= 0 {
		o.RenderDelay = 5 * time.Second
	}
	if o.StepDelay <= 0 {
		o.StepDelay = 500 * time.Millisecond
	}
	if o.RebootDuration <= 0 {
		o.RebootDuration = time.Second
	}
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = 30 * time.Second
	}
	if len(o.Roles) == 0 {
		o.Roles = []string{masterRole, workerRole}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// MCO is a running simulated Machine Config Operator.
type MCO struct {
	opts   Options
	kube   kubernetes.Interface
	mcfg   mcfgclient.Interface
	op     operatorclient.Interface // MachineConfiguration/cluster
	reboot Rebooter

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nodes corelisters.NodeLister
	pools mcfglisters.MachineConfigPoolLister
	mcs   mcfglisters.MachineConfigLister

	renderQueue workqueue.TypedRateLimitingInterface[string] // pool names
	poolQueue   workqueue.TypedRateLimitingInterface[string] // pool names (node controller)
	daemonQueue workqueue.TypedRateLimitingInterface[string] // node names (the MCDs)
	drainQueue  workqueue.TypedRateLimitingInterface[string] // node names (drain controller)

	topology configv1.TopologyMode

	mu              sync.Mutex
	renderFail      map[string]string // pool -> message
	degraded        map[string]string // node -> reason, held until RepairNode
	degradeOnUpdate map[string]string // node -> reason, armed for its next update
	inflight        map[string]bool   // nodes with an update under way
	rebooted        map[string]string // node -> config it rebooted into, until recorded
	booted          map[string]string // node -> config its machine last booted with
	pending         map[string]*pendingWrite
	stopped         bool
	renderHeld      map[string]bool   // pool -> renders held (HoldRender)
	synced          map[string]uint64 // controller/key -> start of its last finished sync
	seq             atomic.Uint64     // counts sync starts and marks (Mark)
}

// Controller names for SyncedSince.
const (
	RenderController = "render"
	NodeController   = "node"
	DaemonController = "daemon"
	DrainController  = "drain"
)

// Start bootstraps the cluster the way an installed OpenShift looks (built-in
// pools, base MachineConfigs, a rendered config per pool, every node at it and
// Done, pool status Updated), then runs the controllers until Stop or until
// ctx ends. r may be nil for object-only clusters.
func Start(ctx context.Context, cfg *rest.Config, r Rebooter, o Options) (*MCO, error) {
	o.defaults()
	cfg = rest.CopyConfig(cfg)
	// The default 5 QPS would make a 500-node bootstrap take minutes.
	cfg.QPS, cfg.Burst = 400, 800
	cfg.UserAgent = "mcosim"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mcfg, err := mcfgclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	op, err := operatorclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if isNil(r) {
		r = nil
	}
	m := &MCO{
		opts: o, kube: kube, mcfg: mcfg, op: op, reboot: r,
		renderQueue:     newQueue("render"),
		poolQueue:       newQueue("node"),
		daemonQueue:     newQueue("daemon"),
		drainQueue:      newQueue("drain"),
		renderFail:      map[string]string{},
		degraded:        map[string]string{},
		degradeOnUpdate: map[string]string{},
		inflight:        map[string]bool{},
		rebooted:        map[string]string{},
		booted:          map[string]string{},
		pending:         map[string]*pendingWrite{},
		renderHeld:      map[string]bool{},
		synced:          map[string]uint64{},
	}
	m.ctx, m.cancel = context.WithCancel(ctx)

	m.topology = o.ControlPlaneTopology
	if m.topology == "" {
		nodeList, err := kube.CoreV1().Nodes().List(m.ctx, metav1.ListOptions{})
		if err != nil {
			m.cancel()
			return nil, fmt.Errorf("mcosim: listing nodes: %w", err)
		}
		nodes := make([]*corev1.Node, 0, len(nodeList.Items))
		for i := range nodeList.Items {
			nodes = append(nodes, &nodeList.Items[i])
		}
		m.topology = clusterTopology(nodes)
	}
	o.Logf("mcosim: controlPlaneTopology %s", m.topology)

	if err := m.bootstrap(m.ctx); err != nil {
		m.cancel()
		return nil, fmt.Errorf("mcosim bootstrap: %w", err)
	}

	kf := informers.NewSharedInformerFactory(kube, 0)
	mf := mcfginformers.NewSharedInformerFactory(mcfg, 0)
	nodeInf := kf.Core().V1().Nodes()
	poolInf := mf.Machineconfiguration().V1().MachineConfigPools()
	mcInf := mf.Machineconfiguration().V1().MachineConfigs()
	m.nodes, m.pools, m.mcs = nodeInf.Lister(), poolInf.Lister(), mcInf.Lister()
	if err := m.addHandlers(nodeInf.Informer(), poolInf.Informer(), mcInf.Informer()); err != nil {
		m.cancel()
		return nil, err
	}
	kf.Start(m.ctx.Done())
	mf.Start(m.ctx.Done())
	for _, ok := range kf.WaitForCacheSync(m.ctx.Done()) {
		if !ok {
			m.Stop()
			return nil, fmt.Errorf("mcosim: node cache did not sync: %w", context.Cause(m.ctx))
		}
	}
	for _, ok := range mf.WaitForCacheSync(m.ctx.Done()) {
		if !ok {
			m.Stop()
			return nil, fmt.Errorf("mcosim: MachineConfig caches did not sync: %w", context.Cause(m.ctx))
		}
	}

	m.run(RenderController, m.renderQueue, m.syncRender, true)
	m.run(NodeController, m.poolQueue, m.syncPool, true)
	for range 4 {
		// A daemon sync returns as soon as it has started an update; the
		// update itself resets the node's backoff when it succeeds.
		m.run(DaemonController, m.daemonQueue, m.syncDaemon, false)
	}
	for range 5 { // the MCO runs 5 drain workers
		m.run(DrainController, m.drainQueue, m.syncDrain, true)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(o.ResyncPeriod)
		defer t.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
				m.resyncAll()
			}
		}
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-m.ctx.Done()
		m.renderQueue.ShutDown()
		m.poolQueue.ShutDown()
		m.daemonQueue.ShutDown()
		m.drainQueue.ShutDown()
	}()
	m.resyncAll()
	return m, nil
}

// Stop ends the controllers and waits for them, including updates under way
// (their reboots see a cancelled context).
func (m *MCO) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// isNil also catches a typed nil pointer passed as a Rebooter.
func isNil(r Rebooter) bool {
	if r == nil {
		return true
	}
	v := reflect.ValueOf(r)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func newQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	rl := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 10*time.Second),
	)
	return workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[string]{Name: "mcosim-" + name})
}

// run starts a worker: errors are retried with backoff, so API outages and
// conflicts only delay things.
func (m *MCO) run(controller string, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error, forgetOnSuccess bool) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			key, quit := q.Get()
			if quit {
				return
			}
			began := m.seq.Add(1)
			err := sync(m.ctx, key)
			m.mu.Lock()
			m.synced[controller+"/"+key] = max(m.synced[controller+"/"+key], began)
			m.mu.Unlock()
			if err != nil && m.ctx.Err() == nil {
				m.opts.Logf("mcosim: %s: %v (retrying)", key, err)
				q.AddRateLimited(key)
			} else if forgetOnSuccess {
				q.Forget(key)
			}
			q.Done(key)
		}
	}()
}

func (m *MCO) addHandlers(nodeInf, poolInf, mcInf cache.SharedIndexInformer) error {
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { m.nodeChanged(obj) },
		DeleteFunc: func(obj any) { m.enqueueAllPools() },
	}); err != nil {
		return err
	}
	if _, err := poolInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p := obj.(*mcfgv1.MachineConfigPool)
			m.renderQueue.AddAfter(p.Name, m.opts.RenderDelay)
			m.poolQueue.Add(p.Name)
			m.enqueueAllNodes()
		},
		UpdateFunc: func(oldObj, obj any) {
			old, p := oldObj.(*mcfgv1.MachineConfigPool), obj.(*mcfgv1.MachineConfigPool)
			m.poolQueue.Add(p.Name)
			// Only spec changes ask for a render: status writes are our own,
			// and re-arming the delay on them would make it hard to observe.
			if old.Generation != p.Generation {
				m.renderQueue.AddAfter(p.Name, m.opts.RenderDelay)
				m.enqueueAllNodes()
			}
		},
	}); err != nil {
		return err
	}
	_, err := mcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.mcChanged(obj) },
		UpdateFunc: func(_, obj any) { m.mcChanged(obj) },
		DeleteFunc: func(obj any) { m.mcChanged(obj) },
	})
	return err
}

func (m *MCO) nodeChanged(obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		m.daemonQueue.Add(n.Name)
		m.drainQueue.Add(n.Name)
	}
	m.enqueueAllPools()
}

func (m *MCO) mcChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	mc, ok := obj.(*mcfgv1.MachineConfig)
	if !ok {
		m.enqueueAllPools()
		return
	}
	pools, err := m.pools.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pools {
		if ok, _ := selectorMatches(p.Spec.MachineConfigSelector, mc.Labels); ok {
			m.renderQueue.AddAfter(p.Name, m.opts.RenderDelay)
		}
	}
}

func (m *MCO) enqueueAllPools() {
	pools, err := m.pools.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pools {
		m.poolQueue.Add(p.Name)
	}
}

func (m *MCO) enqueueAllNodes() {
	nodes, err := m.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		m.daemonQueue.Add(n.Name)
		m.drainQueue.Add(n.Name)
	}
}

func (m *MCO) resyncAll() {
	pools, err := m.pools.List(labels.Everything())
	if err == nil {
		for _, p := range pools {
			m.renderQueue.Add(p.Name)
		}
	}
	m.enqueueAllPools()
	m.enqueueAllNodes()
}

// FailRender makes every render of pool fail with message (RenderDegraded,
// no new rendered config) until it is called again with an empty message.
// It takes effect at the pool's next render, RenderDelay from now.
func (m *MCO) FailRender(pool, message string) {
	m.mu.Lock()
	if message == "" {
		delete(m.renderFail, pool)
	} else {
		m.renderFail[pool] = message
	}
	m.mu.Unlock()
	m.renderQueue.AddAfter(pool, m.opts.RenderDelay)
}

// HoldRender keeps the render controller off pool until release is called
// (once or more): the renders that fall due meanwhile are dropped, and one
// runs at release. A test can so look at a pool before its render without
// racing RenderDelay.
func (m *MCO) HoldRender(pool string) (release func()) {
	m.mu.Lock()
	m.renderHeld[pool] = true
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			delete(m.renderHeld, pool)
			m.mu.Unlock()
			m.renderQueue.Add(pool)
		})
	}
}

func (m *MCO) renderIsHeld(pool string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.renderHeld[pool]
}

// Mark returns a point in the simulator's history for SyncedSince.
func (m *MCO) Mark() uint64 { return m.seq.Add(1) }

// SyncedSince says whether controller has finished a sync of key (a pool
// name for the render and node controllers, a node name for the daemon and
// drain controllers) that began after mark: one that looked at the state
// the caches held by then. A test that checks that nothing happened after a
// change the simulator has seen waits for this (with Resync to hurry it)
// instead of sleeping.
func (m *MCO) SyncedSince(controller, key string, mark uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced[controller+"/"+key] > mark
}

// Resync queues every pool and node for every controller now, as the
// periodic resync (Options.ResyncPeriod) does.
func (m *MCO) Resync() { m.resyncAll() }

// DegradeNode puts node into state Degraded with reason right away and holds
// it there (no update proceeds) until RepairNode.
func (m *MCO) DegradeNode(node, reason string) {
	if reason == "" {
		reason = "simulated failure"
	}
	m.mu.Lock()
	m.degraded[node] = reason
	m.mu.Unlock()
	m.daemonQueue.Add(node)
}

// DegradeNodeOnUpdate arms node to fail its next update: when the node
// controller hands it a new config, it goes Degraded with reason instead of
// rebooting, and stays so until RepairNode.
func (m *MCO) DegradeNodeOnUpdate(node, reason string) {
	if reason == "" {
		reason = "simulated failure"
	}
	m.mu.Lock()
	m.degradeOnUpdate[node] = reason
	m.mu.Unlock()
	m.daemonQueue.Add(node)
}

// RepairNode clears DegradeNode and DegradeNodeOnUpdate: the node resumes
// (or finishes) its update.
func (m *MCO) RepairNode(node string) {
	m.mu.Lock()
	delete(m.degraded, node)
	delete(m.degradeOnUpdate, node)
	m.mu.Unlock()
	m.daemonQueue.Add(node)
}

// SetPaused sets a pool's spec.paused, as `oc patch mcp` would.
func (m *MCO) SetPaused(ctx context.Context, pool string, paused bool) error {
	return patchPoolPaused(ctx, m.mcfg, pool, paused)
}
