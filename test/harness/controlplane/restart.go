package controlplane

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Daemon names a control-plane process that fault tests can stop and start
// again on the same port, with the same data and flags.
type Daemon string

const (
	APIServer Daemon = "kube-apiserver"
	Etcd      Daemon = "etcd"
)

// StopDaemon stops one daemon: SIGTERM, then SIGKILL once grace has passed
// (grace 0: SIGKILL at once, as a crash or a power cut). Either way the
// daemon is down and reaped when it returns nil; being killed after the
// grace period is what the caller asked for, not an error. The process
// stays tracked, so StartDaemon can start it again with the same binary,
// flags and log, and Stop still accounts for it. Clients see connection
// refused until then.
func (cp *ControlPlane) StopDaemon(d Daemon, grace time.Duration) error {
	p, _ := cp.find(d)
	if p == nil {
		return fmt.Errorf("%s is not running in this control plane", d)
	}
	if p.exited() {
		return nil
	}
	if grace > 0 {
		syscall.Kill(-p.pid(), syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return nil
		case <-t.C:
		}
	}
	p.kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", d, p.pid())
	}
}

// StartDaemon starts a daemon stopped by StopDaemon again, on the same port
// with the same flags and data (etcd keeps its data folder), and waits until
// it is healthy (etcd /health, kube-apiserver /readyz).
func (cp *ControlPlane) StartDaemon(ctx context.Context, d Daemon) error {
	old, _ := cp.find(d)
	if old == nil {
		return fmt.Errorf("%s was never started in this control plane", d)
	}
	if !old.exited() {
		return fmt.Errorf("%s is still running (pid %d); stop it first", d, old.pid())
	}
	// The same binary and arguments: spawnEtcd's reset of the data folder
	// is not repeated, so etcd comes back with everything it held.
	p, err := spawn(cp.State, old.name, old.cmd.Path, old.cmd.Args[1:], old.logPath)
	if err != nil {
		return err
	}
	// Take the old one's place by identity, so Stop keeps its order; if
	// Stop ran meanwhile (or another StartDaemon won), the new process has
	// no place and must not outlive the call.
	cp.mu.Lock()
	replaced := false
	for i, q := range cp.procs {
		if q == old {
			cp.procs[i] = p
			replaced = true
			break
		}
	}
	cp.mu.Unlock()
	if !replaced {
		p.kill()
		<-p.done
		cp.State.RemoveProcess(p.pid())
		return fmt.Errorf("%s: the control plane was stopped, or the daemon restarted, while it started again", d)
	}
	cp.State.RemoveProcess(old.pid())
	cp.logf("%s started again (pid %d)", d, p.pid())
	switch d {
	case Etcd:
		return cp.waitEtcd(ctx, p)
	default:
		return cp.waitAPIServer(ctx, p)
	}
}

// RestartDaemon stops a daemon (SIGTERM, SIGKILL after 5s), keeps it down
// for down, and starts it again on the same port. It returns once the
// daemon is healthy again.
func (cp *ControlPlane) RestartDaemon(ctx context.Context, d Daemon, down time.Duration) error {
	if err := cp.StopDaemon(d, 5*time.Second); err != nil {
		return err
	}
	t := time.NewTimer(down)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return cp.StartDaemon(ctx, d)
}

// find returns the tracked process of a daemon and its index.
func (cp *ControlPlane) find(d Daemon) (*process, int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, p := range cp.procs {
		if p.name == string(d) {
			return p, i
		}
	}
	return nil, -1
}
