package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/oc-kubens/oc-kubens/internal/ci"
)

// clearLine is what the progress line redraws with: carriage return, then
// ANSI "erase the whole line".
const clearLine = "\r\x1b[2K"

// onTerminal runs the built binary on a pseudo-terminal (util-linux
// script), stdout and stderr both on it unless shellSuffix redirects one
// (e.g. "2>FILE"). It returns what the terminal showed and the exit code.
func onTerminal(t *testing.T, kubeconfig, shellSuffix string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		ci.SkipOrFail(t, "needs script(1) from util-linux for a pseudo-terminal")
	}
	line := fmt.Sprintf("%s %s --kubeconfig %s %s", pluginBinary(t), strings.Join(args, " "), kubeconfig, shellSuffix)
	cmd := exec.Command("script", "-q", "-e", "-c", line, "/dev/null")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("on a terminal: oc-kubens %s %s -> exit %d\n%q", strings.Join(args, " "), shellSuffix, code, out)
	return string(out), code
}

// checkProgress checks the terminal shows verb's live line for n nodes,
// redrawn in place (no newline until the end), and last the final counts
// (want, e.g. "Encapsulated 3") on a line of their own.
func checkProgress(t *testing.T, screen, verb string, n int, want string) {
	t.Helper()
	var lines []string
	for _, seg := range strings.Split(screen, clearLine)[1:] {
		if strings.HasPrefix(seg, verb+" ") {
			lines = append(lines, seg)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("no live %q line redrawn in place (%d draws):\n%q", verb, len(lines), screen)
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.Contains(l, "\n") {
			t.Errorf("draw %q ends its line: the progress must be redrawn in place", l)
		}
	}
	last := lines[len(lines)-1]
	final, _, ended := strings.Cut(last, "\n")
	if !ended {
		t.Errorf("the last draw %q is not ended by a newline before the output", last)
	}
	if !strings.HasPrefix(final, fmt.Sprintf("%s %d/%d nodes (", verb, n, n)) || !strings.HasSuffix(strings.TrimSuffix(final, "\r"), "): "+want) {
		t.Errorf("final line %q, want %s %d/%d nodes (...): %s", final, verb, n, n, want)
	}
}

// noProgress checks nothing of the live line reached out.
func noProgress(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, "\x1b[2K") || strings.Contains(out, " nodes (") {
		t.Errorf("%s: progress output where none belongs:\n%q", what, out)
	}
}

// On a terminal, verify and measure show a live progress line on stderr;
// with stderr not a terminal, or -o json, nothing extra. Object-only nodes
// and the agent (each pod takes 1s, so the line is redrawn while they run)
// keep this cheap.
func TestProgressOnTerminal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the agent's watch ends before the control plane stops (a cleanup)
	f := startFleet(ctx, t)
	const nodes = 3
	f.grow(ctx, t, nodes)
	f.delayNS.Store(int64(time.Second))
	kc := f.cp.KubeconfigPath
	verifyArgs := []string{"verify", "--all-nodes", "--image", "registry.example.com/tools:latest"}

	t.Run("verify on a terminal", func(t *testing.T) {
		screen, code := onTerminal(t, kc, "", verifyArgs...)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		checkProgress(t, screen, "Verifying", nodes, fmt.Sprintf("Encapsulated %d", nodes))
		// The table comes after the finished line, at the left margin.
		if i, j := strings.LastIndex(screen, clearLine), strings.Index(screen, "NODE "); j < i {
			t.Errorf("the table starts before the progress line ended")
		}
	})

	t.Run("verify with stderr not a terminal", func(t *testing.T) {
		errFile := filepath.Join(t.TempDir(), "stderr")
		screen, code := onTerminal(t, kc, "2>"+errFile, verifyArgs...)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		stderr, err := os.ReadFile(errFile)
		if err != nil {
			t.Fatal(err)
		}
		noProgress(t, "stdout on a terminal", screen)
		noProgress(t, "stderr in a file", string(stderr))
		if !strings.Contains(string(stderr), fmt.Sprintf("Probing %d node(s)", nodes)) {
			t.Errorf("the engine's log line is gone from stderr:\n%s", stderr)
		}
	})

	t.Run("verify -o json on a terminal", func(t *testing.T) {
		screen, code := onTerminal(t, kc, "", append(verifyArgs, "-o", "json")...)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		noProgress(t, "-o json", screen)
	})

	t.Run("measure on a terminal", func(t *testing.T) {
		f.setReport(measureReport(1))
		t.Cleanup(func() { f.setReport(benchReport()) })
		screen, code := onTerminal(t, kc, "", "measure", "--all-nodes", "--duration", "1s", "--image", "registry.example.com/tools:latest")
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		checkProgress(t, screen, "Measuring", nodes, fmt.Sprintf("Measured %d", nodes))
	})
}

// terminal is a pseudo-terminal to give a child as its stderr, and what the
// child wrote on it: for a test that runs the binary itself (to signal it)
// and wants its progress line.
type terminal struct {
	// Slave is the child's end (cmd.Stderr).
	Slave *os.File

	mu   sync.Mutex
	seen bytes.Buffer
}

// openTerminal opens a pseudo-terminal (posix_openpt, unlockpt, ptsname by
// hand: no pty package needed) and keeps reading its master until the
// test ends, so the child never blocks on a full terminal.
func openTerminal(t *testing.T) *terminal {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("a pseudo-terminal: %v", err)
	}
	var n uint32
	var unlock int32
	for _, op := range []struct {
		req uintptr
		arg unsafe.Pointer
	}{{syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)}, {syscall.TIOCGPTN, unsafe.Pointer(&n)}} {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), op.req, uintptr(op.arg)); e != 0 {
			master.Close()
			t.Fatalf("a pseudo-terminal: ioctl %#x: %v", op.req, e)
		}
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("a pseudo-terminal: %v", err)
	}
	term := &terminal{Slave: slave}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			k, err := master.Read(buf)
			term.mu.Lock()
			term.seen.Write(buf[:k])
			term.mu.Unlock()
			if err != nil {
				return // EIO once the slave is closed everywhere
			}
		}
	}()
	t.Cleanup(func() {
		slave.Close()
		master.Close()
		<-copied
	})
	return term
}

// String is everything written on the terminal so far.
func (term *terminal) String() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.seen.String()
}

// waitFor waits until the terminal shows text.
func (term *terminal) waitFor(t *testing.T, text string, bound time.Duration) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !strings.Contains(term.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within %s:\n%q", text, bound, term.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// termText is what term showed, for a failure message; "" without one.
func termText(term *terminal) string {
	if term == nil {
		return ""
	}
	return fmt.Sprintf("\nterminal (stderr):\n%q", term.String())
}
