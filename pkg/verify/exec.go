package verify

import (
	_ "embed"
	"time"
)

// ExecScript enters the node's Kubernetes mount namespace (kubelet's when it
// differs from PID 1's, else the host's, saying so on stderr) and execs its
// positional parameters there.
//
//go:embed exec.sh
var ExecScript string

// ExecDeadline bounds how long an exec pod may live, so a crashed client
// leaves nothing behind for long. Interactive sessions end with it.
const ExecDeadline = 4 * time.Hour

// ExecHolderCommand keeps the exec pod alive until the client has run its
// command through pods/exec, or the deadline passes.
func ExecHolderCommand(d time.Duration) []string {
	return []string{"/bin/sh", "-c", "exec sleep " + deadlineSeconds(d)[:len(deadlineSeconds(d))-1]}
}

// ExecCommand is the pods/exec command that runs cmd in the node's
// Kubernetes mount namespace.
func ExecCommand(cmd []string) []string {
	return append([]string{"/bin/sh", "-c", ExecScript, "oc-kubens-exec"}, cmd...)
}
