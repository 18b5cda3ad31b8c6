package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// ReportAPIVersion and ReportKind identify the -o json|yaml document. The
// schema is stable within this version: fields may be added, never renamed
// or removed.
const (
	ReportAPIVersion = "oc-kubens.io/v1alpha1"
	ReportKind       = "VerifyReport"
)

// Summary counts the nodes per state.
type Summary struct {
	Total           int `json:"total"`
	Encapsulated    int `json:"encapsulated"`
	NotEncapsulated int `json:"notEncapsulated"`
	Split           int `json:"split"`
	Unknown         int `json:"unknown"`
	// NotAsExpected counts nodes whose state is not Expect.
	NotAsExpected int `json:"notAsExpected"`
}

// VerifyReport is the document `verify -o json|yaml` prints.
type VerifyReport struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Expect is the state every node was checked against (--expect).
	Expect  State        `json:"expect"`
	Summary Summary      `json:"summary"`
	Nodes   []NodeResult `json:"nodes"`
}

// NewReport summarises results against the expected state.
func NewReport(expect State, results []NodeResult) *VerifyReport {
	r := &VerifyReport{APIVersion: ReportAPIVersion, Kind: ReportKind, Expect: expect, Nodes: results}
	if r.Nodes == nil {
		r.Nodes = []NodeResult{}
	}
	for _, n := range results {
		r.Summary.Total++
		switch n.State {
		case Encapsulated:
			r.Summary.Encapsulated++
		case NotEncapsulated:
			r.Summary.NotEncapsulated++
		case Split:
			r.Summary.Split++
		default:
			r.Summary.Unknown++
		}
		if n.State != expect {
			r.Summary.NotAsExpected++
		}
	}
	return r
}

// AllAsExpected says whether every node is in the expected state.
func (r *VerifyReport) AllAsExpected() bool { return r.Summary.NotAsExpected == 0 }

// PrintJSON writes the report as indented JSON.
func (r *VerifyReport) PrintJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// PrintYAML writes the report as YAML.
func (r *VerifyReport) PrintYAML(w io.Writer) error {
	b, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// StateString is the STATE column: Unknown carries its reason.
func (n *NodeResult) StateString() string {
	if n.State == StateUnknown {
		return fmt.Sprintf("Unknown(%s)", n.Reason)
	}
	return string(n.State)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func checksString(n *NodeResult) string {
	if failed := n.FailedChecks(); len(failed) > 0 {
		return "fail:" + strings.Join(failed, ",")
	}
	for _, c := range n.Checks {
		if c.Status == CheckPass {
			return "ok"
		}
	}
	return "-"
}

func count(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

// PrintTable writes the kubectl-style table and the summary line.
func (r *VerifyReport) PrintTable(w io.Writer, wide bool) error {
	tw := printers.GetNewTabWriter(w)
	if wide {
		fmt.Fprintln(tw, "NODE\tSTATE\tEXPECTED\tMECHANISM\tCHECKS\tRUNTIME\tHOST-NS\tKUBELET-NS\tRUNTIME-NS\tMOUNTS(PID1/KUBELET)\tHIDDEN\tMESSAGE")
	} else {
		fmt.Fprintln(tw, "NODE\tSTATE\tEXPECTED\tMECHANISM\tCHECKS")
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", n.Node, n.StateString(), dash(string(n.Expected)), dash(string(n.Mechanism)), checksString(n))
		if wide {
			ns := Namespaces{PID1: "-", Kubelet: "-", Runtime: "-"}
			if n.Namespaces != nil {
				ns = *n.Namespaces
			}
			mounts, hidden := "-", "-"
			if n.Mounts != nil {
				mounts = count(n.Mounts.PID1) + "/" + count(n.Mounts.Kubelet)
				if n.Mounts.Hidden >= 0 {
					hidden = fmt.Sprint(n.Mounts.Hidden)
				}
			}
			msg := n.Message
			if msg == "" {
				var details []string
				for _, c := range n.Checks {
					if c.Status == CheckFail {
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
	_, err := fmt.Fprintln(w, r.SummaryLine())
	return err
}

// SummaryLine is the one line under the table.
func (r *VerifyReport) SummaryLine() string {
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
