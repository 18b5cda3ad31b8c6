// Command oc-kubens is the oc/kubectl plugin for OpenShift mount namespace
// encapsulation. Installed as oc-kubens it runs as `oc kubens`; krew installs
// it as kubectl-kubens, found by both `kubectl kubens` and `oc kubens`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/oc-kubens/oc-kubens/pkg/plugin"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(plugin.Execute(os.Args, streams))
}
