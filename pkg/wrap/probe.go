package wrap

import (
	_ "embed"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// ProbeScript is the fixed script every unit-reading pod runs, as
// `sh -c ProbeScript oc-kubens-wrap UNIT...`; the unit names travel as
// arguments and nothing is ever spliced into it.
//
//go:embed probe.sh
var ProbeScript string

// RunPurpose names the runs of ReadProbe (verify.RunOptions.Purpose): the
// namespaces are oc-kubens-wrap-xxxxx, the pods wrap-<node>.
const RunPurpose = "wrap"

// ReasonTruncated is the Reason of a node whose whole report was cut
// short (see ErrTruncated).
const ReasonTruncated = "ReportTruncated"

// probeName is $0 of the script: sh -c takes the first argument after the
// script as $0, so the units start at $1.
const probeName = "oc-kubens-wrap"

// ProbeCommand is the container command of a pod that reads units.
func ProbeCommand(units []string) []string {
	return append([]string{"/bin/sh", "-c", ProbeScript, probeName}, units...)
}

// NodeUnits is what one node said about the units asked.
type NodeUnits struct {
	Node string
	// Units has one entry per unit asked, when the node could be read.
	Units map[string]UnitRead
	// Reason and Message say why the node could not be read: a reason of
	// the engine (verify.ReasonTimeout, ...), verify.ReasonBadReport, or
	// ReasonTruncated. Both are empty when Units is set.
	Reason, Message string
	// Err is the report's parse error when the report was rejected, for
	// errors.Is (ErrTruncated); nil otherwise.
	Err error
}

// ReadProbe reads units on every node of a run (verify.RunProbe with
// RunPurpose): it runs `systemctl cat` for each of Units there and
// reports the lines that decide the unit's ExecStart and User.
type ReadProbe struct {
	Units []string
}

var _ verify.Probe[NodeUnits] = ReadProbe{}

// Validate checks the units before a run: at least one, each a valid
// service name, none twice, and few enough that the report has room for
// each unit's status even when no content fits.
func (p ReadProbe) Validate() error {
	if len(p.Units) == 0 {
		return errors.New("no unit to read")
	}
	seen := map[string]bool{}
	need := len(ReportHeader) + 1 + len("end\n")
	for _, u := range p.Units {
		if err := ValidateUnitName(u); err != nil {
			return err
		}
		if seen[u] {
			return fmt.Errorf("unit %s is given twice", u)
		}
		seen[u] = true
		need += stubSize(u)
	}
	if need > MaxReportSize {
		return fmt.Errorf("%d units are too many to read in one run: their names alone fill the %d bytes a node can report", len(p.Units), MaxReportSize)
	}
	return nil
}

// stubSize is the room the probe keeps for a unit whose lines do not fit:
// "unit NAME" and "status truncated", as in probe.sh.
func stubSize(unit string) int {
	return len("unit \n") + len(unit) + len("status "+StatusTruncated+"\n")
}

// Command is the pods' command: ProbeCommand(p.Units).
func (p ReadProbe) Command() []string { return ProbeCommand(p.Units) }

// Read turns a pod of the run into the node's NodeUnits once it is done.
func (p ReadProbe) Read(node string, pod *corev1.Pod) (NodeUnits, bool) {
	report, reason, message, done := verify.FinishedPod(pod)
	switch {
	case !done:
		return NodeUnits{}, false
	case reason != "":
		return p.Failed(node, reason, message), true
	}
	units, err := ParseReport(report, p.Units)
	if err != nil {
		res := p.Failed(node, verify.ReasonBadReport, "the probe's report was rejected: "+err.Error())
		if errors.Is(err, ErrTruncated) {
			res.Reason, res.Message = ReasonTruncated, err.Error()
		}
		res.Err = err
		return res, true
	}
	return NodeUnits{Node: node, Units: units}, true
}

// Failed is the result of a node the engine gave up on.
func (p ReadProbe) Failed(node, reason, message string) NodeUnits {
	return NodeUnits{Node: node, Reason: reason, Message: message}
}
