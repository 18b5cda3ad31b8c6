package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process the node started, known by its host PID. The daemons
// run as children of an nsenter that lives in the host's PID namespace
// (nsenter must fork to enter a PID namespace), so cmd is the nsenter and pid
// the daemon itself, found as nsenter's child.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int           // host PID of the daemon (or of cmd when it has no child)
	done chan struct{} // closed when cmd exited
	err  error         // cmd's exit error, valid after done
}

func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n==== %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C to the test or the CLI must not reach the
	// daemons before the harness stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// findDescendant waits until the process tree under p holds a process whose
// comm is want, and records its PID.
func (p *proc) findDescendant(ctx context.Context, want string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pid := descendantByComm(p.cmd.Process.Pid, want, 4); pid > 0 {
			p.pid = pid
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before %s appeared: %v", p.name, want, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s process under PID %d after 10s", p.name, want, p.cmd.Process.Pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func descendantByComm(pid int, want string, depth int) int {
	if comm(pid) == want {
		return pid
	}
	if depth == 0 {
		return 0
	}
	for _, c := range children(pid) {
		if d := descendantByComm(c, want, depth-1); d > 0 {
			return d
		}
	}
	return 0
}

func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// StartTime is a process's start time in clock ticks since boot (field 22 of
// /proc/PID/stat); with the PID it identifies a process across PID reuse.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// stop sends SIGTERM to the daemon and waits up to grace for the whole
// command to end, then SIGKILLs it.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// NamespaceRSSMiB sums the resident memory (VmRSS) of every process in the
// PID namespace of pid, as seen from the host: a node's whole footprint.
func NamespaceRSSMiB(pid int) int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	kb := 0
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); l != ns {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					n, _ := strconv.Atoi(f[0])
					kb += n
				}
			}
		}
	}
	return kb / 1024
}
