package verify

// ReportAPIVersion and ReportKind identify the document verify -o prints
// (pkg/plugin formats it, as a table or through cli-runtime's printers). The
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

// VerifyReport is the document `verify -o json|yaml` prints. The plugin
// prints it through cli-runtime's printers as its JSON encoding, so the
// field names below are the schema users script against.
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
