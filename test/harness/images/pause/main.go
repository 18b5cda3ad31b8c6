// Command pause is the harness's tiny init: the pause image's entrypoint and
// PID 1 of every test node's PID namespace. It sleeps, reaps the orphans that
// get re-parented to it (containerd shims, exited pod processes), and exits
// on SIGTERM or SIGINT. Built with CGO_ENABLED=0 so it runs in an empty image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	// A PID 1 only receives signals it handles, so handling TERM and INT is
	// what makes it stoppable from outside its namespace (besides SIGKILL).
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking, so no zombie piles up
// under a long-lived node.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
