package plugin

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Tab completion. Completing a node or pool name reads the cluster while the
// user waits at the prompt, so every read has a short, fixed time limit and
// fetches metadata only (names and labels, no status). When the cluster
// cannot be read in time, completion offers nothing rather than hanging the
// shell or printing errors into the command line; cobra's debug log (set
// BASH_COMP_DEBUG_FILE) says why.

// completionTimeout bounds each cluster read made for completion.
const completionTimeout = 3 * time.Second

var (
	nodesResource = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	poolsResource = schema.GroupVersionResource{Group: "machineconfiguration.openshift.io", Version: "v1", Resource: "machineconfigpools"}
)

// defaultRoles are offered for --role when the cluster has no pools to read
// (render works offline).
var defaultRoles = []string{"master", "worker"}

// NodeNameCompletion completes node names read from the cluster, each with
// its roles as the description. maxArgs limits how many positional
// arguments are node names (0: any number); names already typed are not
// offered again.
func NodeNameCompletion(f genericclioptions.RESTClientGetter, maxArgs int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if maxArgs > 0 && len(args) >= maxArgs {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		items, err := listMetadata(cmd.Context(), f, nodesResource)
		if err != nil {
			cobra.CompDebugln(fmt.Sprintf("listing nodes for completion: %v", err), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, it := range items {
			if !strings.HasPrefix(it.Name, toComplete) || slices.Contains(args, it.Name) {
				continue
			}
			out = append(out, cobra.CompletionWithDesc(it.Name, nodeRoles(it.Labels)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// PoolNameCompletion completes MachineConfigPool names read from the
// cluster. It suits positional arguments and flags alike (cobra passes the
// flag's partial value as toComplete).
func PoolNameCompletion(f genericclioptions.RESTClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		names, err := poolNames(cmd.Context(), f)
		if err != nil {
			cobra.CompDebugln(fmt.Sprintf("listing MachineConfigPools for completion: %v", err), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return filterPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// RoleCompletion completes --role: the cluster's pool names (a built-in
// pool's name is its role), or master and worker when there is no cluster
// to ask.
func RoleCompletion(f genericclioptions.RESTClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		names, err := poolNames(cmd.Context(), f)
		if err != nil || len(names) == 0 {
			cobra.CompDebugln(fmt.Sprintf("no pools for --role completion (%v); offering the defaults", err), true)
			names = defaultRoles
		}
		return filterPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// OutputCompletion completes -o with formats: each command's printFlags
// registers it with PrintFlags.AllowedFormats() (and wide where the command
// has a wide table).
func OutputCompletion(formats ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterPrefix(formats, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// nodeArgCommands take node names as positional arguments: how many (0: any).
var nodeArgCommands = map[string]int{
	"exec":    1,
	"measure": 0,
	"verify":  0,
}

// RegisterCompletions wires the dynamic completions into the command tree
// built by NewCmdKubens: node names for the node arguments of exec and
// verify, pool names for every --pool flag, roles for every --role flag and
// -o with PrintFlags' formats where the command's printFlags did not
// complete it already. Completions a command already registered itself are
// kept.
func RegisterCompletions(root *cobra.Command, f genericclioptions.RESTClientGetter) {
	for _, cmd := range root.Commands() {
		if maxArgs, ok := nodeArgCommands[cmd.Name()]; ok && cmd.ValidArgsFunction == nil {
			cmd.ValidArgsFunction = NodeNameCompletion(f, maxArgs)
		}
		registerFlagCompletion(cmd, "pool", PoolNameCompletion(f))
		registerFlagCompletion(cmd, "role", RoleCompletion(f))
		// A command with a plain PrintFlags -o (no table of its own).
		registerFlagCompletion(cmd, "output", OutputCompletion(genericclioptions.NewPrintFlags("").AllowedFormats()...))
	}
}

// registerFlagCompletion registers fn for the flag when the command has it
// and nothing is registered for it yet.
func registerFlagCompletion(cmd *cobra.Command, flag string, fn cobra.CompletionFunc) {
	if cmd.Flags().Lookup(flag) == nil {
		return
	}
	if existing, ok := cmd.GetFlagCompletionFunc(flag); ok && existing != nil {
		return
	}
	_ = cmd.RegisterFlagCompletionFunc(flag, fn)
}

func poolNames(ctx context.Context, f genericclioptions.RESTClientGetter) ([]string, error) {
	items, err := listMetadata(ctx, f, poolsResource)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.Name)
	}
	return names, nil
}

// listMetadata lists a cluster-scoped resource's object metadata, sorted by
// name, within completionTimeout.
func listMetadata(ctx context.Context, f genericclioptions.RESTClientGetter, gvr schema.GroupVersionResource) ([]metav1.ObjectMeta, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = completionTimeout
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	list, err := client.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	items := make([]metav1.ObjectMeta, 0, len(list.Items))
	for _, it := range list.Items {
		items = append(items, it.ObjectMeta)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items, nil
}

// nodeRoles is the comma-separated list of node-role.kubernetes.io/ labels.
func nodeRoles(labels map[string]string) string {
	var roles []string
	for k := range labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

func filterPrefix(values []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, v := range values {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}
