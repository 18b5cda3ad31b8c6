package verify

import (
	_ "embed"
	"strings"

	"github.com/oc-kubens/oc-kubens/internal/shlib"
)

//go:embed probe.sh
var probeSource string

// ProbeScript is the fixed script every verify pod runs. It is passed as the
// argument of `sh -c`; nothing is ever spliced into it.
// It is probe.sh with the shell functions the probes share
// (internal/shlib) in place.
var ProbeScript = shlib.Include(probeSource)

// ReportHeader is the first line of a version 1 probe report.
const ReportHeader = "kubens-probe v1"

// probeName is $0 of the probe script: sh -c takes the first argument after
// the script as $0, so the units start at $1.
const probeName = "oc-kubens-verify"

// maxUnitName is systemd's bound on a unit name (UNIT_NAME_MAX less the NUL).
const maxUnitName = 255

// ProbeCommand is the container command of a verify pod that also reports on
// the wrapped units: `sh -c ProbeScript oc-kubens-verify UNIT...`. The names
// travel as arguments, never in the script text; the script checks them
// again (ValidUnitName) and reports wrap.<i>.* for the i-th. Callers pass
// only valid names, at most MaxWrappedUnits of them (RunWithUnits checks).
func ProbeCommand(units ...string) []string {
	return append([]string{"/bin/sh", "-c", ProbeScript, probeName}, units...)
}

// ValidUnitName says whether name is a unit the probe will look up: a
// service (ends in .service, with something before it) of at most 255
// characters from [A-Za-z0-9:_.@-]. It mirrors the probe's own check, so a
// name the client sends is never one the probe refuses.
func ValidUnitName(name string) bool {
	if len(name) > maxUnitName || !strings.HasSuffix(name, ".service") || name == ".service" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}
