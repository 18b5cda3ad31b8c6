package plugin

// Printing. Every command's -o goes through cli-runtime's PrintFlags, as
// kubectl's do: json, yaml, kyaml, name, jsonpath, jsonpath-as-json,
// jsonpath-file, go-template, go-template-file (and the template and
// templatefile aliases), with --template, --allow-missing-template-keys and
// --show-managed-fields from cli-runtime. What a command prints with -o
// empty (and -o wide) is its own: a table (status, verify, measure) or text
// (version). Every table goes through printers.GetNewTabWriter.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// The kinds -o name prints.
var (
	nodeKind = schema.GroupVersionKind{Version: "v1", Kind: "Node"}
	poolKind = schema.GroupVersionKind{Group: "machineconfiguration.openshift.io", Version: "v1", Kind: "MachineConfigPool"}
)

// printFlags is a command's -o: cli-runtime's PrintFlags, plus the
// command's own output for -o empty (text) and -o wide (table).
type printFlags struct {
	*genericclioptions.PrintFlags
	// NoHeaders is --no-headers (commands with a table).
	NoHeaders bool

	// text: -o empty prints the command's own output; table: that output is
	// a table (--no-headers); wide: -o wide is that table with more columns.
	text, table, wide bool

	printer printers.ResourcePrinter
}

// outputKind says what a command prints besides the PrintFlags formats.
type outputKind int

const (
	objectsOnly outputKind = iota // no output of its own: -o has a default format (render)
	textOutput                    // -o empty prints text (version)
	tableOutput                   // -o empty prints a table, -o wide a wider one (status, verify, measure)
)

// newPrintFlags returns the -o flags of a command; defaultFormat is the
// default of -o ("" for text and tables).
func newPrintFlags(kind outputKind, defaultFormat string) *printFlags {
	return &printFlags{
		PrintFlags: genericclioptions.NewPrintFlags("").WithDefaultOutput(defaultFormat),
		text:       kind != objectsOnly,
		table:      kind == tableOutput,
		wide:       kind == tableOutput,
	}
}

// addFlags adds -o and the flags that go with it (PrintFlags.AddFlags:
// --template, --allow-missing-template-keys, --show-managed-fields; and
// --no-headers for a table), and completes -o with the formats. nameHelp
// says what -o name prints; empty is the command's own output.
func (f *printFlags) addFlags(cmd *cobra.Command, empty, nameHelp string) {
	f.PrintFlags.AddFlags(cmd)
	usage := fmt.Sprintf("Output format. One of: (%s).", strings.Join(f.allowedFormats(), ", "))
	if empty != "" {
		usage += " Empty: " + empty + "."
	}
	usage += " -o name prints " + nameHelp + "."
	cmd.Flags().Lookup("output").Usage = usage
	if f.table {
		cmd.Flags().BoolVar(&f.NoHeaders, "no-headers", false, "When printing a table (-o empty or wide), print the rows only: no column headers; notes and the summary line go to stderr.")
	}
	_ = cmd.RegisterFlagCompletionFunc("output", OutputCompletion(f.allowedFormats()...))
}

// allowedFormats are the -o values the command takes: PrintFlags' formats,
// and wide for a command with a wide table.
func (f *printFlags) allowedFormats() []string {
	formats := f.PrintFlags.AllowedFormats()
	if f.wide {
		formats = append(formats, "wide")
	}
	return formats
}

// format is the -o value as PrintFlags.ToPrinter reads it: --template
// without -o means go-template.
func (f *printFlags) format() string {
	tmpl := f.TemplatePrinterFlags.TemplateArgument
	specified := f.OutputFlagSpecified != nil && f.OutputFlagSpecified()
	if tmpl != nil && *tmpl != "" && !specified {
		return "go-template"
	}
	return strings.ToLower(*f.OutputFormat)
}

// human says whether the command prints its own output (text or table)
// rather than through a printer.
func (f *printFlags) human() bool {
	switch f.format() {
	case "":
		return f.text
	case "wide":
		return f.wide
	}
	return false
}

// isWide says whether -o wide asks for the wide table.
func (f *printFlags) isWide() bool { return f.wide && f.format() == "wide" }

// validate checks -o (and the template it may need) and builds the printer.
// An unknown format is an error that lists the allowed ones.
func (f *printFlags) validate() error {
	if f.human() {
		return nil
	}
	format := f.format()
	p, err := f.PrintFlags.ToPrinter()
	if format == "" || genericclioptions.IsNoCompatiblePrinterError(err) {
		return f.unsupported(*f.OutputFormat)
	}
	if err != nil {
		return fmt.Errorf("-o %s: %w", *f.OutputFormat, err)
	}
	f.printer = p
	return nil
}

func (f *printFlags) unsupported(format string) error {
	msg := fmt.Sprintf("unsupported output format %q: allowed formats are %s", format, strings.Join(f.allowedFormats(), ", "))
	if f.text {
		msg += ", or leave -o out"
	}
	return fmt.Errorf("%s", msg)
}

// printable is what a command prints through the printers.
type printable struct {
	// Object is what json, jsonpath and the templates print, and yaml and
	// kyaml unless Stream is set.
	Object runtime.Object
	// Items are what -o name prints, one line each.
	Items []runtime.Object
	// Stream: yaml and kyaml print Items as a --- separated stream.
	Stream bool
}

// print writes p in the format validate accepted.
func (f *printFlags) print(w io.Writer, p printable) error {
	if f.printer == nil {
		if err := f.validate(); err != nil {
			return err
		}
	}
	objs := []runtime.Object{p.Object}
	switch f.format() {
	case "name":
		objs = p.Items
	case "yaml", "kyaml":
		if p.Stream {
			objs = p.Items
		}
	}
	for _, obj := range objs {
		if err := f.printer.PrintObj(obj, w); err != nil {
			return err
		}
	}
	return nil
}

// notes is where a table's notes and summary line go: under the table, or
// with --no-headers to stderr, so that stdout holds only rows.
func (f *printFlags) notes(out, errOut io.Writer) io.Writer {
	if f.NoHeaders {
		return errOut
	}
	return out
}

// reportObject turns a report that carries its own apiVersion and kind
// fields (mcp.Report, verify.VerifyReport, ...) into a runtime.Object for
// the printers. It is the report's JSON as a runtime.Unknown, so -o json and
// yaml print exactly the report's encoding (field names and order), and
// jsonpath and the templates see the same document.
func reportObject(report any) (*runtime.Unknown, error) {
	raw, err := json.Marshal(report)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, fmt.Errorf("%T has no apiVersion or kind", report)
	}
	return &runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: tm.APIVersion, Kind: tm.Kind}, Raw: raw, ContentType: runtime.ContentTypeJSON}, nil
}

// named returns one object per name, of kind gvk, for -o name.
func named(gvk schema.GroupVersionKind, names ...string) []runtime.Object {
	out := make([]runtime.Object, 0, len(names))
	for _, n := range names {
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: n}}
		obj.SetGroupVersionKind(gvk)
		out = append(out, obj)
	}
	return out
}

// printReport prints a report with its own apiVersion and kind; -o name
// prints names.
func (f *printFlags) printReport(w io.Writer, report any, names []runtime.Object) error {
	obj, err := reportObject(report)
	if err != nil {
		return err
	}
	return f.print(w, printable{Object: obj, Items: names})
}

// The verify table.

// printVerifyTable writes verify's table and, to notes, its summary line.
func printVerifyTable(w, notes io.Writer, r *verify.VerifyReport, wide, noHeaders bool) error {
	tw := printers.GetNewTabWriter(w)
	if !noHeaders {
		if wide {
			fmt.Fprintln(tw, "NODE\tSTATE\tEXPECTED\tMECHANISM\tCHECKS\tRUNTIME\tHOST-NS\tKUBELET-NS\tRUNTIME-NS\tMOUNTS(PID1/KUBELET)\tHIDDEN\tMESSAGE")
		} else {
			fmt.Fprintln(tw, "NODE\tSTATE\tEXPECTED\tMECHANISM\tCHECKS")
		}
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", n.Node, verifyState(n), dash(string(n.Expected)), dash(string(n.Mechanism)), verifyChecks(n))
		if wide {
			ns := verify.Namespaces{PID1: "-", Kubelet: "-", Runtime: "-"}
			if n.Namespaces != nil {
				ns = *n.Namespaces
			}
			mounts, hidden := "-", "-"
			if n.Mounts != nil {
				mounts = mountCount(n.Mounts.PID1) + "/" + mountCount(n.Mounts.Kubelet)
				if n.Mounts.Hidden >= 0 {
					hidden = fmt.Sprint(n.Mounts.Hidden)
				}
			}
			msg := n.Message
			if msg == "" {
				var details []string
				for _, c := range n.Checks {
					if c.Status == verify.CheckFail {
						details = append(details, c.Detail)
					}
				}
				msg = strings.Join(details, "; ")
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s", dash(n.Runtime), ns.PID1, ns.Kubelet, ns.Runtime, mounts, hidden, dash(msg))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(notes, verifySummary(r))
	return err
}

// verifyState is the STATE column: Unknown carries its reason.
func verifyState(n *verify.NodeResult) string {
	if n.State == verify.StateUnknown {
		return fmt.Sprintf("Unknown(%s)", n.Reason)
	}
	return string(n.State)
}

// verifyChecks is the CHECKS column: the failed checks, ok when some passed
// and none failed, - when none ran.
func verifyChecks(n *verify.NodeResult) string {
	if failed := n.FailedChecks(); len(failed) > 0 {
		return "fail:" + strings.Join(failed, ",")
	}
	for _, c := range n.Checks {
		if c.Status == verify.CheckPass {
			return "ok"
		}
	}
	return "-"
}

// mountCount is a mount count of the verify probe: ? when unknown.
func mountCount(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

// verifySummary is the one line under verify's table.
func verifySummary(r *verify.VerifyReport) string {
	s := r.Summary
	counts := fmt.Sprintf("%d Encapsulated, %d NotEncapsulated, %d Split, %d Unknown", s.Encapsulated, s.NotEncapsulated, s.Split, s.Unknown)
	noun := "nodes"
	if s.Total == 1 {
		noun = "node"
	}
	if s.NotAsExpected == 0 {
		return fmt.Sprintf("%d %s: %s. All as expected (%s).", s.Total, noun, counts, r.Expect)
	}
	return fmt.Sprintf("%d %s: %s. %d not %s.", s.Total, noun, counts, s.NotAsExpected, r.Expect)
}
