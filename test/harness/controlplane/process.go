package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// process is one daemon of the control plane, in its own process group,
// with its output in a log file of the run folder.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process is reaped
	waitErr error         // valid after done
}

// spawn starts bin and records it in state.
//
// Pdeathsig makes the kernel kill the daemon if the test binary dies (a
// panic, a go test timeout), so most crashes leave nothing to clean. It
// fires when the *thread* that forked the child exits, and Go may retire
// threads, so the fork and the wait happen on one goroutine locked to its
// thread for the child's whole life.
func spawn(state *testenv.State, name, bin string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	// The child is only reaped after it is recorded: until then its
	// /proc entry (a zombie at worst) is there to record.
	recorded := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			logf.Close()
			started <- err
			return
		}
		started <- nil
		<-recorded
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	err = state.AddProcess(name, cmd.Process.Pid, true)
	if err != nil {
		p.kill()
	}
	close(recorded)
	if err != nil {
		<-p.done
		return nil, err
	}
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process group, unless the process is already reaped
// (its PID, and so the group ID, may then belong to someone else).
func (p *process) kill() {
	if !p.exited() {
		syscall.Kill(-p.pid(), syscall.SIGKILL)
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// it and waits for the reap.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.kill()
	select {
	case <-p.done:
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.name, p.pid())
	}
}

// failure describes a process that exited while we waited for it, with the
// end of its log, which nearly always names the cause.
func (p *process) failure() error {
	return fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, p.waitErr, logTail(p.logPath, 25))
}

// portInUse reports whether the process died because a port was taken
// between picking it and binding it (another run picked it too).
func (p *process) portInUse() bool {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Contains(b, []byte("address already in use"))
}

// logTail returns the last n lines of a log file (reading at most 16 KiB).
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, picked at
// random below the kernel's ephemeral range: a port picked there could be
// taken by any outgoing connection (and this machine makes many) before our
// daemon binds it. Another cluster starting at the same moment may still
// pick the same port; callers retry on "address already in use".
func freePorts(n int) ([]int, error) {
	lo, hi := 10000, ephemeralPortStart()-1
	if hi-lo < 1000 {
		lo, hi = 1024, 65535
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free port on 127.0.0.1")
		}
		port := lo + rand.IntN(hi-lo+1)
		if slices.Contains(ports, port) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralPortStart is the low end of net.ipv4.ip_local_port_range.
func ephemeralPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

var errPortInUse = errors.New("port taken by someone else")
