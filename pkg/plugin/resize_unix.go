//go:build !windows

package plugin

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyResize sends on ch whenever the terminal is resized (SIGWINCH).
func notifyResize(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGWINCH) }
