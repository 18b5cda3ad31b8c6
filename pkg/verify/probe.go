package verify

import (
	_ "embed"
)

// ProbeScript is the fixed script every verify pod runs. It is passed as the
// argument of `sh -c`; nothing is ever spliced into it.
//
//go:embed probe.sh
var ProbeScript string

// ReportHeader is the first line of a version 1 probe report.
const ReportHeader = "kubens-probe v1"
