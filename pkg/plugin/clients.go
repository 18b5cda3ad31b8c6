package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// clusterClients are the clients the control commands (enable, disable, wait,
// status) share. Built once per command from the standard kubectl flags.
type clusterClients struct {
	config *rest.Config
	kube   kubernetes.Interface
	mcfg   mcfgclient.Interface
	disc   discovery.DiscoveryInterface
	// meta makes metadata-only requests; see metadataClient.
	meta metadata.Interface
	// op reads MachineConfiguration/cluster (the node disruption policy).
	op operatorclient.Interface
}

func newClusterClients(f *genericclioptions.ConfigFlags) (*clusterClients, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return clientsForConfig(cfg)
}

func clientsForConfig(cfg *rest.Config) (*clusterClients, error) {
	if cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil {
		// Built without the root command's flags (which set a handler on
		// the command's stderr): still no raw klog lines.
		cfg = rest.CopyConfig(cfg)
		cfg.WarningHandler = newWarningWriter(os.Stderr)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mc, err := mcfgclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// A plain discovery client, not the on-disk cache of ConfigFlags: one
	// request that always tells the truth about this cluster.
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	op, err := operatorclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clusterClients{config: cfg, kube: kube, mcfg: mc, disc: disc, op: op}, nil
}

// newWarningWriter prints API warnings the way kubectl does: "Warning: ..."
// on w, each distinct message once.
func newWarningWriter(w io.Writer) rest.WarningHandler {
	return rest.NewWarningWriter(w, rest.WarningWriterOptions{Deduplicate: true})
}

// errNoMachineConfigAPI is what every control command says on clusters
// without the Machine Config Operator.
var errNoMachineConfigAPI = errors.New("this cluster has no MachineConfig API (machineconfiguration.openshift.io/v1): it is not OpenShift, " +
	"or its nodes are not managed by the Machine Config Operator (HyperShift hosted control planes configure nodes through the NodePool on the management cluster). " +
	"enable, disable, wrap, unwrap, wait and status need an OpenShift cluster with the Machine Config Operator")

// requireMachineConfigAPI checks, with one discovery request, that the
// cluster serves MachineConfigs and MachineConfigPools.
func (c *clusterClients) requireMachineConfigAPI() error {
	res, err := c.disc.ServerResourcesForGroupVersion(mcfgv1.GroupVersion.String())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return errNoMachineConfigAPI
		}
		return explainAPIError(err, "discover the MachineConfig API")
	}
	have := map[string]bool{}
	for _, r := range res.APIResources {
		have[r.Name] = true
	}
	if !have["machineconfigs"] || !have["machineconfigpools"] {
		return errNoMachineConfigAPI
	}
	return nil
}

// explainAPIError turns the common API failures into one line that says
// what to do next.
func explainAPIError(err error, doing string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to %s: %s. Log in as a cluster administrator (or ask one to run this)", doing, apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("cannot %s: the cluster does not accept your credentials (%s); log in again", doing, apiMessage(err))
	case utilnet.IsConnectionRefused(err):
		// Nothing listens at the kubeconfig's address: say what to check,
		// as kubectl does ("did you specify the right host or port?").
		return fmt.Errorf("cannot %s: %w. Is the cluster up, and is the server in your kubeconfig right (oc whoami --show-server)?", doing, err)
	}
	return fmt.Errorf("cannot %s: %w", doing, err)
}

func apiMessage(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return s.Status().Message
	}
	return err.Error()
}

// snapshot reads the pools, every input MachineConfig (not the rendered
// ones) and, when asked, the nodes; enable and disable plan from it. The
// request count never depends on the node count. It is inputSnapshot plus
// a metadata-only list of all MachineConfigs (about 1 KB per rendered
// config instead of 0.5-1 MB) to find, and GET, the input configs that no
// pool selects: enable must see a same-name config that somebody else
// made, even one no pool selects (e.g. its role label taken off to switch
// it off), so as not to take it over.
func (c *clusterClients) snapshot(ctx context.Context, withNodes bool) (mcp.Snapshot, error) {
	s, err := c.inputSnapshot(ctx, withNodes)
	if err != nil {
		return s, err
	}
	meta, err := c.metadataClient()
	if err != nil {
		return s, err
	}
	have := map[string]bool{}
	for i := range s.MachineConfigs {
		have[s.MachineConfigs[i].Name] = true
	}
	var missing []string
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := meta.Resource(mcfgv1.GroupVersion.WithResource("machineconfigs")).List(ctx, opts)
		if err != nil {
			return s, explainAPIError(err, "list MachineConfigs")
		}
		for i := range l.Items {
			m := &l.Items[i]
			if !have[m.Name] && !mcp.IsRendered(&mcfgv1.MachineConfig{ObjectMeta: m.ObjectMeta}) {
				missing = append(missing, m.Name)
			}
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	got, err := c.getMachineConfigs(ctx, missing)
	if err != nil {
		return s, err
	}
	s.MachineConfigs = append(s.MachineConfigs, got...)
	sort.Slice(s.MachineConfigs, func(i, j int) bool { return s.MachineConfigs[i].Name < s.MachineConfigs[j].Name })
	return s, nil
}

// metadataClient is the client for metadata-only (PartialObjectMetadata)
// requests, made from the REST config on first use.
func (c *clusterClients) metadataClient() (metadata.Interface, error) {
	if c.meta == nil {
		m, err := metadata.NewForConfig(c.config)
		if err != nil {
			return nil, err
		}
		c.meta = m
	}
	return c.meta, nil
}

// inputSnapshot reads the pools, the input MachineConfigs the pools select
// and, when asked, the nodes: what status and wait derive from. Rendered
// configs are left out: on long-lived clusters there are hundreds of them
// at 0.5-1 MB each, and only the few the pools and nodes name matter
// (addRenderedConfigs fetches those).
//
// Input configs are listed with the pools' own label selectors, folded into
// one list when the pools all select by role (see mcp.InputSelectors):
// rendered configs carry no labels, so the server never sends them. A
// metadata-only list of everything would still cost about 1 KB per
// rendered config and then one GET per input config; a paged full list
// sends every byte of them. One more list, by the oc-kubens label, finds
// our configs that no pool selects any more (disable deletes those too).
func (c *clusterClients) inputSnapshot(ctx context.Context, withNodes bool) (mcp.Snapshot, error) {
	var s mcp.Snapshot
	pools, err := c.mcfg.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, explainAPIError(err, "list MachineConfigPools")
	}
	s.Pools = pools.Items
	selectors, err := mcp.InputSelectors(s.Pools)
	if err != nil {
		return s, err
	}
	selectors = append(selectors, manifests.ManagedByLabel+"="+manifests.ManagedByValue)
	seen := map[string]bool{}
	for _, sel := range selectors {
		mcs, err := c.listInputMachineConfigs(ctx, sel)
		if err != nil {
			return s, explainAPIError(err, "list MachineConfigs")
		}
		for _, mc := range mcs {
			if !seen[mc.Name] {
				seen[mc.Name] = true
				s.MachineConfigs = append(s.MachineConfigs, mc)
			}
		}
	}
	sort.Slice(s.MachineConfigs, func(i, j int) bool { return s.MachineConfigs[i].Name < s.MachineConfigs[j].Name })
	if withNodes {
		nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return s, explainAPIError(err, "list nodes")
		}
		s.Nodes = nodes.Items
	}
	return s, nil
}

// listPageSize bounds one page of a MachineConfig list: a pool selector
// that also matches unlabelled objects (NotIn, DoesNotExist) would list
// rendered configs, which are then dropped page by page.
const listPageSize = 50

// listInputMachineConfigs lists the MachineConfigs matching selector,
// without the rendered ones.
func (c *clusterClients) listInputMachineConfigs(ctx context.Context, selector string) ([]mcfgv1.MachineConfig, error) {
	var out []mcfgv1.MachineConfig
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPageSize}
	for {
		l, err := c.mcfg.MachineconfigurationV1().MachineConfigs().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			if !mcp.IsRendered(&l.Items[i]) {
				out = append(out, l.Items[i])
			}
		}
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// renderedFetchParallelism bounds the GETs of rendered configs in flight.
const renderedFetchParallelism = 4

// addRenderedConfigs fetches, by name, the rendered configs that the pools
// and nodes of s name, and adds them to s.MachineConfigs. One that is gone
// (NotFound: deleted by hand) is left out, so status shows "unknown" there.
func (c *clusterClients) addRenderedConfigs(ctx context.Context, s *mcp.Snapshot) error {
	have := map[string]bool{}
	for i := range s.MachineConfigs {
		have[s.MachineConfigs[i].Name] = true
	}
	var names []string
	for _, n := range mcp.ReferencedConfigs(s.Pools, s.Nodes) {
		if !have[n] {
			names = append(names, n)
		}
	}
	got, err := c.getMachineConfigs(ctx, names)
	if err != nil {
		return err
	}
	s.MachineConfigs = append(s.MachineConfigs, got...)
	return nil
}

// getMachineConfigs GETs the named MachineConfigs, at most
// renderedFetchParallelism at a time, in the order given; one that is gone
// (NotFound) is left out.
func (c *clusterClients) getMachineConfigs(ctx context.Context, names []string) ([]mcfgv1.MachineConfig, error) {
	got := make([]*mcfgv1.MachineConfig, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, renderedFetchParallelism)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mc, err := c.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs[i] = explainAPIError(err, "get MachineConfig "+name)
			default:
				got[i] = mc
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []mcfgv1.MachineConfig
	for _, mc := range got {
		if mc != nil {
			out = append(out, *mc)
		}
	}
	return out, nil
}

func (c *clusterClients) listNodes(ctx context.Context) ([]corev1.Node, error) {
	l, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// confirm asks a yes/no question on the terminal; anything but y/yes is no.
func confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprintf(out, "%s [y/N]: ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

const defaultWaitTimeout = 30 * time.Minute

// waitLimits are the --timeout and --stuck-after of wait, enable and
// disable. StuckAfter 0 turns the stuck-node warning off.
type waitLimits struct {
	Timeout    time.Duration
	StuckAfter time.Duration
	// Display names the command in advice ("oc kubens"); "oc kubens" when
	// empty.
	Display string
}

// runWait watches the pools until the expectations are met, printing
// progress to out: in place on a terminal, one line per change otherwise.
// Once a pool has work to do it also watches the nodes (one list, then one
// watch: no request per node), and warns once about each node that has
// been NotReady in the middle of its update for l.StuckAfter.
func runWait(ctx context.Context, c *clusterClients, exps []mcp.Expectation, l waitLimits, out io.Writer, tty bool) error {
	timeout := l.Timeout
	if len(exps) == 0 {
		fmt.Fprintln(out, "No pools to wait for.")
		return nil
	}
	names := make([]string, 0, len(exps))
	for _, e := range exps {
		names = append(names, e.Pool)
	}
	sort.Strings(names)
	fmt.Fprintf(out, "Waiting for pools %s to roll out (timeout %s; Ctrl-C stops the waiting, not the rollout)...\n", strings.Join(names, ", "), timeout)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pp := &progressPrinter{w: out, tty: tty, last: map[string]string{}}
	snaps := mcp.WatchPools(ctx, c.mcfg.MachineconfigurationV1().MachineConfigPools(), mcp.WatchOptions{
		OnError: pp.connectionLost,
	})
	stuckAfter := l.StuckAfter
	if stuckAfter == 0 {
		stuckAfter = -1 // off; mcp's zero means its default
	}
	err := mcp.Wait(ctx, snaps, mcp.WaitOptions{
		Expectations: exps,
		Progress:     pp.update,
		Nodes:        c.listNodes,
		WatchNodes: func(ctx context.Context) <-chan []corev1.Node {
			return mcp.WatchNodes(ctx, c.kube.CoreV1().Nodes(), mcp.WatchOptions{})
		},
		StuckAfter: stuckAfter,
		Stuck:      pp.stuck,
		GetMachineConfig: func(ctx context.Context, name string) (*mcfgv1.MachineConfig, error) {
			return c.mcfg.MachineconfigurationV1().MachineConfigs().Get(ctx, name, metav1.GetOptions{})
		},
	})
	pp.finish()
	if err != nil {
		return adviseWait(err, l.Display)
	}
	fmt.Fprintf(out, "All pools updated: %s (in %s)\n", strings.Join(names, ", "), time.Since(start).Round(time.Second))
	return nil
}

// adviseWait adds to the wait engine's errors what to do next, naming this
// command as the user runs it.
func adviseWait(err error, display string) error {
	if display == "" {
		display = ocDisplayName
	}
	var pe *mcp.PoolError
	var te *mcp.TimeoutError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%w: run `%s wait` again to keep waiting", err, display)
	case errors.As(err, &pe) && pe.Kind == mcp.KindPaused:
		return fmt.Errorf("%w. Unpause it with `oc patch mcp %s --type merge -p '{\"spec\":{\"paused\":false}}'` and run `%s wait` again", err, pe.Pool, display)
	case errors.As(err, &pe) && pe.Kind != mcp.KindMissing:
		return fmt.Errorf("%w. Fix the cause (`oc describe mcp %s`, `%s status -o wide`), then run `%s wait` again", err, pe.Pool, display, display)
	}
	return err
}

// progressPrinter shows wait progress. On a terminal it redraws one line per
// pool in place; otherwise it prints a pool's line only when it changed, so
// logs stay short.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	drawn int
	last  map[string]string
	lost  bool
	// mu: connectionLost runs on the watch goroutine, update on the waiter's.
	mu sync.Mutex
}

func (p *progressPrinter) update(progress []mcp.PoolProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost {
		p.lost = false
		p.println("Connection to the API server is back.")
	}
	if p.tty {
		if p.drawn > 0 {
			fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
		}
		for _, pr := range progress {
			fmt.Fprintf(p.w, "\x1b[2K%s\n", pr)
		}
		p.drawn = len(progress)
		return
	}
	for _, pr := range progress {
		line := pr.String()
		if p.last[pr.Pool] != line {
			p.last[pr.Pool] = line
			fmt.Fprintln(p.w, line)
		}
	}
}

// stuck warns about a node stuck in its update. On a terminal it takes the
// place of the pool lines, which the next update draws below it.
func (p *progressPrinter) stuck(n mcp.StuckNode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
	}
	p.println("Warning: " + n.Warning())
}

// connectionLost is told about failed lists and dropped watches; it reports
// the first of an outage only (WatchPools retries by itself).
func (p *progressPrinter) connectionLost(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost {
		return
	}
	p.lost = true
	p.println(fmt.Sprintf("Lost the API server (%v); retrying (a single-node cluster is unreachable while it reboots)...", oneLine(err)))
}

func (p *progressPrinter) println(s string) {
	fmt.Fprintln(p.w, s)
	p.drawn = 0 // redraw below the message
}

func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawn = 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
