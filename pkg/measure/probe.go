package measure

import (
	_ "embed"
	"strconv"
	"time"

	"github.com/oc-kubens/oc-kubens/internal/shlib"
)

//go:embed probe.sh
var probeSource string

// ProbeScript is the fixed script every measure pod runs, as
// `sh -c ProbeScript NAME SECONDS`; nothing is ever spliced into it.
// It is probe.sh with the shell functions the probes share
// (internal/shlib) in place.
var ProbeScript = shlib.Include(probeSource)

// ReportHeader is the first line of a version 1 measure report.
const ReportHeader = "kubens-measure v1"

// MinWindow and MaxWindow bound the measuring window; the script refuses
// anything outside them.
const (
	MinWindow = time.Second
	MaxWindow = time.Hour
)

// ProbeCommand is the container command of a measure pod that measures for
// window, rounded up to whole seconds and clamped to [MinWindow, MaxWindow]
// (callers validate user input against those first; clamping only keeps the
// script from refusing to run). The pod's deadline must leave room for the
// window plus image pull and start.
func ProbeCommand(window time.Duration) []string {
	window = min(max(window, MinWindow), MaxWindow)
	secs := int64((window + time.Second - 1) / time.Second)
	return []string{"/bin/sh", "-c", ProbeScript, "oc-kubens-measure", strconv.FormatInt(secs, 10)}
}
