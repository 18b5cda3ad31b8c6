//go:build windows

package plugin

import "os"

// notifyResize does nothing on Windows, which has no SIGWINCH: the remote
// terminal keeps the size it had when exec started. Kept apart so the
// windows/amd64 release archive builds (make dist).
func notifyResize(chan<- os.Signal) {}
