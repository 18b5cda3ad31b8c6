package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

// RenderOptions holds the flags of `oc kubens render`.
type RenderOptions struct {
	Roles    []string
	Disabled bool
	// PrintFlags is -o: yaml by default.
	PrintFlags *printFlags
	// Wrap holds UNIT=CMD: render the wrap MachineConfigs for these units
	// instead of the kubens.service ones.
	Wrap []string

	genericiooptions.IOStreams
}

// NewCmdRender returns the render command. It works offline: the
// ConfigFlags are accepted for the uniform constructor shape and never read.
func NewCmdRender(_ *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RenderOptions{PrintFlags: newPrintFlags(objectsOnly, "yaml"), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "render [--role ROLE]... [--disabled] [-o FORMAT]",
		Short: "Print the MachineConfigs that switch encapsulation on (or off)",
		Long: `Print one MachineConfig per pool role that enables kubens.service, the same
objects the documented manual procedure creates (99-kubens-master and
99-kubens-worker), labelled as managed by oc-kubens. Use it to review the
change, to keep it in Git for a GitOps tool, or to apply it by hand.

Every config is checked with the Ignition v3.2 validator the Machine Config
Operator uses before it is printed. Needs no cluster and no kubeconfig; the
output is the same on every run.

Roles default to master and worker. Custom pools such as infra usually select
the worker role as well and take the worker MachineConfig; name a role with
--role only for pools that do not (an arbiter pool, a pool with its own role).
Applying the output reboots every node of each pool it reaches.

With --wrap UNIT=CMD it prints the 99-kubens-wrap-<role> MachineConfigs that
wrap creates instead: a 99-kubens-wrapper.conf drop-in per unit that runs CMD
through /usr/bin/kubensenter, so the service runs inside the Kubernetes mount
namespace. CMD is the unit's ExecStart as systemd reads it.`,
		Example: `  # The two MachineConfigs of the manual procedure
  oc kubens render

  # Review and apply them by hand (every node of both pools reboots)
  oc kubens render | oc apply -f -

  # Include the arbiter pool of a two-node cluster with arbiter
  oc kubens render --role master --role worker --role arbiter

  # The explicit turn-it-off variant (enabled: false) for the worker pool
  oc kubens render --disabled --role worker

  # A v1 List in JSON
  oc kubens render -o json

  # The names only
  oc kubens render -o name

  # The wrap MachineConfigs that run a host service inside the namespace
  oc kubens render --role worker --wrap 'node-agent.service=/usr/local/bin/node-agent --interval 10'`,
		Args: noArgs,
		RunE: runCommand(o),
	}
	cmd.Flags().StringArrayVar(&o.Roles, "role", nil, "Pool role to render a MachineConfig for; repeat for several. Default: master and worker.")
	cmd.Flags().BoolVar(&o.Disabled, "disabled", false, "Render kubens.service with enabled: false instead of true.")
	cmd.Flags().StringArrayVar(&o.Wrap, "wrap", nil, "UNIT=CMD: render the wrap MachineConfigs that run CMD, the unit's ExecStart, through kubensenter; repeat for several units.")
	o.PrintFlags.addFlags(cmd, "", "machineconfig.machineconfiguration.openshift.io/NAME per config; yaml and kyaml print a --- separated stream, json, jsonpath and the templates a v1 List")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"master", "worker", "arbiter", "infra"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete fills in defaults: no --role means master and worker.
func (o *RenderOptions) Complete(cmd *cobra.Command, _ []string) error {
	if !cmd.Flags().Changed("role") {
		o.Roles = []string{"master", "worker"}
	}
	return nil
}

// Validate checks the output format and every role before anything renders.
func (o *RenderOptions) Validate() error {
	if err := o.PrintFlags.validate(); err != nil {
		return err
	}
	if len(o.Wrap) > 0 && o.Disabled {
		return fmt.Errorf("--wrap and --disabled do not go together: --disabled is about kubens.service itself")
	}
	if _, err := parseWrapFlags(o.Wrap); err != nil {
		return err
	}
	for _, role := range o.Roles {
		if strings.Contains(role, ",") {
			return fmt.Errorf("--role %q: name one role per flag, e.g. --role master --role worker", role)
		}
		if err := manifests.ValidateRole(role); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
	}
	return nil
}

// Run renders, validates and prints the MachineConfigs.
func (o *RenderOptions) Run(_ context.Context) error {
	var mcs []*mcfgv1.MachineConfig
	var err error
	if len(o.Wrap) > 0 {
		mcs, err = renderWrap(o.Roles, o.Wrap)
	} else {
		mcs, err = manifests.Render(manifests.RenderOptions{Roles: o.Roles, Enabled: !o.Disabled})
	}
	if err != nil {
		return err
	}
	p, err := machineConfigList(mcs)
	if err != nil {
		return err
	}
	return o.PrintFlags.print(o.Out, p)
}

// machineConfigList is what render prints: the configs as a v1 List (json,
// jsonpath, templates), or one by one (yaml and kyaml streams, -o name).
// They are unstructured maps, so keys come out sorted and the bytes depend
// only on the input.
func machineConfigList(mcs []*mcfgv1.MachineConfig) (printable, error) {
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}}}
	items := make([]runtime.Object, 0, len(mcs))
	for _, mc := range mcs {
		doc, err := document(mc)
		if err != nil {
			return printable{}, err
		}
		u := unstructured.Unstructured{Object: doc}
		list.Items = append(list.Items, u)
		items = append(items, &u)
	}
	return printable{Object: list, Items: items, Stream: true}, nil
}

// document turns a MachineConfig into the map that is printed. The
// openshift/api spec fields have no omitempty, so a plain encoding would
// print osImageURL: "", fips: false, kernelArguments: null and so on. Those
// lines are noise in a review and, once applied, would make oc-kubens the
// owner of fields it has no opinion on; the empty ones are dropped, spec.config
// is kept exactly.
func document(mc *mcfgv1.MachineConfig) (map[string]any, error) {
	b, err := json.Marshal(mc)
	if err != nil {
		return nil, fmt.Errorf("encoding MachineConfig %q: %w", mc.Name, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("encoding MachineConfig %q: %w", mc.Name, err)
	}
	if spec, ok := doc["spec"].(map[string]any); ok {
		for k, v := range spec {
			if k != "config" && isEmptyValue(v) {
				delete(spec, k)
			}
		}
	}
	return doc, nil
}

func isEmptyValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// parseWrapFlags reads UNIT=CMD values (--wrap, --exec-start) into a map,
// checking each unit name and command.
func parseWrapFlags(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range values {
		unit, cmd, ok := strings.Cut(kv, "=")
		if !ok || unit == "" {
			return nil, fmt.Errorf("%q: want UNIT=CMD, e.g. 'node-agent.service=/usr/local/bin/node-agent --daemon'", kv)
		}
		if _, dup := out[unit]; dup {
			return nil, fmt.Errorf("%s is given twice", unit)
		}
		if err := wrap.ValidateUnitName(unit); err != nil {
			return nil, err
		}
		cmd = strings.TrimSpace(cmd)
		if err := wrap.ValidateCommand(cmd); err != nil {
			return nil, fmt.Errorf("%s: %w", unit, err)
		}
		out[unit] = cmd
	}
	return out, nil
}

// renderWrap renders one wrap MachineConfig per role with a drop-in per
// unit, sorted by role.
func renderWrap(roles, values []string) ([]*mcfgv1.MachineConfig, error) {
	cmds, err := parseWrapFlags(values)
	if err != nil {
		return nil, err
	}
	dropIns := map[string]string{}
	for unit, cmd := range cmds {
		if dropIns[unit], err = wrap.DropIn(unit, []string{cmd}); err != nil {
			return nil, fmt.Errorf("%s: %w", unit, err)
		}
	}
	roles = slices.Clone(roles)
	slices.Sort(roles)
	var out []*mcfgv1.MachineConfig
	for _, role := range slices.Compact(roles) {
		mc, err := manifests.RenderWrap(role, dropIns)
		if err != nil {
			return nil, err
		}
		out = append(out, mc)
	}
	return out, nil
}
