package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// nodeSelection is how verify and measure are told which nodes to visit:
// node names, or exactly one of --all-nodes, -l SELECTOR, --pool NAME.
type nodeSelection struct {
	Nodes    []string
	AllNodes bool
	Selector string
	Pool     string
}

// addFlags adds the selection flags; verb ("Verify", "Measure") starts
// their help.
func (o *nodeSelection) addFlags(cmd *cobra.Command, verb string) {
	f := cmd.Flags()
	f.BoolVar(&o.AllNodes, "all-nodes", false, verb+" every node of the cluster.")
	f.StringVarP(&o.Selector, "selector", "l", "", verb+" the nodes matching this label selector.")
	f.StringVar(&o.Pool, "pool", "", verb+" the nodes of this MachineConfigPool.")
}

// validate checks that exactly one way of choosing nodes was used.
func (o *nodeSelection) validate(verb string) error {
	chosen := 0
	for _, set := range []bool{len(o.Nodes) > 0, o.AllNodes, o.Selector != "", o.Pool != ""} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return usageErr(fmt.Errorf("say which nodes to %s: name them, or use exactly one of --all-nodes, -l SELECTOR or --pool NAME", verb))
	}
	if o.Selector != "" {
		if _, err := labels.Parse(o.Selector); err != nil {
			return usageErr(fmt.Errorf("--selector: %w", err))
		}
	}
	return nil
}

// podRunFlags shape the per-node pods of verify and measure.
type podRunFlags struct {
	Image           string
	ImagePullPolicy string
	Parallelism     int
	Timeout         time.Duration
	Keep            bool
	// parallelismFlag tells a --parallelism 0 given (an error) from none
	// (0: the engine sizes it to the node count).
	parallelismFlag *pflag.Flag
}

func (o *podRunFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	addDebugPodFlags(cmd, &o.Image, &o.ImagePullPolicy)
	f.IntVar(&o.Parallelism, "parallelism", 0, fmt.Sprintf("How many nodes to probe at once (pods on nodes already NotReady do not count). Default: %d, or a fifth of the nodes when that is more, at most %d.", verify.DefaultParallelism, verify.MaxAutoParallelism))
	o.parallelismFlag = f.Lookup("parallelism")
	f.DurationVar(&o.Timeout, "timeout", verify.DefaultTimeout, "How long each node's probe may take, image pull included; a node that takes longer is Unknown(Timeout), or Unknown(NodeNotReady).")
	f.BoolVar(&o.Keep, "keep", false, "Keep the temporary namespace and its pods for debugging (they stop by themselves after --timeout plus 30s).")
}

func (o *podRunFlags) validate() error {
	if o.Parallelism < 0 || o.Parallelism == 0 && o.parallelismFlag != nil && o.parallelismFlag.Changed {
		return usageErr(fmt.Errorf("--parallelism must be at least 1, got %d", o.Parallelism))
	}
	if o.Timeout < time.Second {
		return usageErr(fmt.Errorf("--timeout must be at least 1s, got %s", o.Timeout))
	}
	return validatePullPolicy(o.ImagePullPolicy)
}

// engine is the per-node pod engine for these flags.
func (o *podRunFlags) engine(clients *clusterClients, image string, log io.Writer) *verify.Engine {
	return &verify.Engine{
		Client:      clients.kube,
		Image:       image,
		PullPolicy:  corev1.PullPolicy(o.ImagePullPolicy),
		Parallelism: o.Parallelism,
		Timeout:     o.Timeout,
		Keep:        o.Keep,
		Log:         log,
	}
}

// selectNodes resolves the node arguments, sorted by name. mcErr is why it
// is unknown whether the MachineConfig API exists (see machineConfigAPI).
func (o *nodeSelection) selectNodes(ctx context.Context, clients *clusterClients, mcAPI bool, mcErr error) ([]corev1.Node, error) {
	nodes := clients.kube.CoreV1().Nodes()
	var out []corev1.Node
	switch {
	case len(o.Nodes) > 0:
		seen := map[string]bool{}
		for _, name := range o.Nodes {
			name = strings.TrimPrefix(strings.TrimPrefix(name, "node/"), "nodes/")
			if seen[name] {
				continue
			}
			seen[name] = true
			n, err := nodes.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("node %q not found; list the nodes with: oc get nodes", name)
			}
			if err != nil {
				return nil, explainAPIError(err, "get node "+name)
			}
			out = append(out, *n)
		}
	case o.Pool != "":
		if mcErr != nil {
			return nil, fmt.Errorf("--pool needs the MachineConfig API: %w", mcErr)
		}
		if !mcAPI {
			return nil, fmt.Errorf("--pool needs the MachineConfig API, which this cluster does not have; use --all-nodes or -l SELECTOR")
		}
		pools, err := clients.mcfg.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, explainAPIError(err, "list MachineConfigPools")
		}
		found := false
		var names []string
		for _, p := range pools.Items {
			names = append(names, p.Name)
			if p.Name != o.Pool {
				continue
			}
			found = true
			// A nodeSelector that does not parse selects no node: say
			// why, not "no nodes matched".
			if _, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector); err != nil {
				return nil, fmt.Errorf("pool %s: invalid nodeSelector: %w; fix it with: oc edit mcp %s", p.Name, err, p.Name)
			}
		}
		if !found {
			return nil, fmt.Errorf("MachineConfigPool %q not found; pools: %s", o.Pool, strings.Join(names, ", "))
		}
		all, err := nodes.List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, explainAPIError(err, "list nodes")
		}
		// A node belongs to the pool the MCO puts it in: custom pools take
		// their nodes out of worker.
		for i := range all.Items {
			if p, err := mcp.PoolForNode(pools.Items, &all.Items[i]); err == nil && p == o.Pool {
				out = append(out, all.Items[i])
			}
		}
	default:
		l, err := nodes.List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
		if err != nil {
			return nil, explainAPIError(err, "list nodes")
		}
		out = l.Items
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		// Kept for the whole run and never read: on a real node the image
		// list alone is tens of KB, hundreds of MB over 5000 nodes.
		out[i].Status.Images, out[i].ManagedFields = nil, nil
	}
	return out, nil
}
