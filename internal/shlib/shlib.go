// Package shlib holds the shell functions several node probes share, so
// each is written once. A probe script names one with a line
// "# @include NAME ..." where the function belongs; Include puts the
// function's text there when the package builds the script. The result is
// still fixed text: nothing from the user or the cluster is spliced in.
package shlib

import (
	_ "embed"
	"fmt"
	"regexp"
)

//go:embed pidof_comm.sh
var pidofComm string

var functions = map[string]string{"pidof_comm": pidofComm}

var includeLine = regexp.MustCompile(`(?m)^# @include ([a-z_]+)\b.*\n`)

// Include replaces every include line of script with the function it
// names. An unknown name is a programming error: it panics, at package
// initialisation of the probe that has it.
func Include(script string) string {
	return includeLine.ReplaceAllStringFunc(script, func(line string) string {
		name := includeLine.FindStringSubmatch(line)[1]
		f, ok := functions[name]
		if !ok {
			panic(fmt.Sprintf("shlib: no shell function %q", name))
		}
		return f
	})
}
