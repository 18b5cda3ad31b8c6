// Command oc-kubens is the oc/kubectl plugin for OpenShift mount namespace
// encapsulation. Installed as oc-kubens it runs as `oc kubens`; krew installs
// it as kubectl-kubens, found by both `kubectl kubens` and `oc kubens`.
package main

import (
	"os"
	"runtime/debug"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
)

// softMemoryLimit is the heap size at which the garbage collector starts
// working harder. On a cluster of thousands of nodes verify and measure
// decode a watch event for every state change of every pod, and with GOGC
// alone the heap grows to twice the live data between collections: verify
// of 5000 nodes peaked at 310 MiB of RSS without this limit and 197 MiB with
// it, in the same wall time (docs/bench/verify.md). It is a soft limit: a
// heap that needs more gets it (the collector's CPU share is capped), and
// GOMEMLIMIT, when set, replaces it.
const softMemoryLimit = 100 << 20

func main() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(plugin.Execute(os.Args, streams))
}
