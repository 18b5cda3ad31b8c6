// Package version reports what build of oc-kubens is running.
//
// The release build (make build) stamps version, commit and date through
// -ldflags -X; a plain `go build` or `go install` leaves them empty and Get
// falls back to what the Go toolchain recorded in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); never assigned at run time. These are the only
// package-level variables in the module, because -X can only set strings in
// package scope.
var (
	version string
	commit  string
	date    string
)

// Info is the build description printed by `oc kubens version`.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped build information, falling back to the module
// version and VCS data that `go install module@version` embeds.
func Get() Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}
