//go:build unix

package plugin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// The child process of TestCtrlCDuringWait runs the command named by these
// variables against the test's API server and exits with its status.
const (
	signalHelperServer = "OC_KUBENS_TEST_SIGNAL_SERVER"
	signalHelperArgs   = "OC_KUBENS_TEST_SIGNAL_ARGS"
	// signalHelperStall makes the child hang in its last words after the
	// first Ctrl-C, like a command still busy cleaning up.
	signalHelperStall = "OC_KUBENS_TEST_SIGNAL_STALL"
)

// TestSignalHelperProcess is not a test: it is the child process of
// TestCtrlCDuringWait, and does nothing unless that test started it.
func TestSignalHelperProcess(t *testing.T) {
	server := os.Getenv(signalHelperServer)
	if server == "" {
		return
	}
	args := append([]string{"oc-kubens"}, strings.Fields(os.Getenv(signalHelperArgs))...)
	args = append(args, "--server", server)
	errOut := &stallingWriter{stall: os.Getenv(signalHelperStall) != ""}
	os.Exit(Execute(args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: os.Stdout, ErrOut: errOut}))
}

// stallingWriter passes writes on to stderr and, when stall is set, never
// returns from the one with the error line.
type stallingWriter struct{ stall bool }

func (w *stallingWriter) Write(p []byte) (int, error) {
	n, err := os.Stderr.Write(p)
	for w.stall && strings.Contains(string(p), "error: ") {
		time.Sleep(time.Hour)
	}
	return n, err
}

// TestCtrlCDuringWait runs wait and enable --wait in a process of their
// own, stuck in a request to an API server that never answers, and presses
// Ctrl-C: the first cancels the command (exit 130, "error: interrupted");
// once that has been taken, a second one kills the process at once even
// though the command is still busy, as README promises.
func TestCtrlCDuringWait(t *testing.T) {
	for _, tc := range []struct {
		args   string
		second bool
	}{
		{"wait --timeout 1m", false},
		{"wait --timeout 1m", true},
		{"enable --yes --wait --timeout 1m", false},
		{"enable --yes --wait --timeout 1m", true},
	} {
		name := tc.args
		if tc.second {
			name += ", second Ctrl-C"
		}
		t.Run(name, func(t *testing.T) {
			reached, stop := make(chan struct{}, 1), make(chan struct{})
			mux := http.NewServeMux()
			mux.HandleFunc(mcDiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
				l := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "machineconfiguration.openshift.io/v1"}
				for _, n := range []string{"machineconfigs", "machineconfigpools"} {
					l.APIResources = append(l.APIResources, metav1.APIResource{Name: n, Verbs: []string{"get", "list", "watch"}})
				}
				writeJSON(w, http.StatusOK, &l)
			})
			// Both commands list the pools first: that request hangs.
			mux.HandleFunc(mcDiscoveryPath+"/machineconfigpools", func(_ http.ResponseWriter, r *http.Request) {
				select {
				case reached <- struct{}{}:
				default:
				}
				select {
				case <-r.Context().Done():
				case <-stop:
				}
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			defer close(stop)

			child := exec.Command(os.Args[0], "-test.run=^TestSignalHelperProcess$", "-test.timeout=60s")
			child.Env = append(os.Environ(), signalHelperServer+"="+srv.URL, signalHelperArgs+"="+tc.args)
			if tc.second {
				child.Env = append(child.Env, signalHelperStall+"=1")
			}
			stderr := &lockedBuffer{}
			child.Stdout, child.Stderr = stderr, stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			exited, gone := make(chan error, 1), make(chan struct{})
			go func() {
				exited <- child.Wait()
				close(gone)
			}()
			defer func() {
				select {
				case <-gone:
				default:
					_ = child.Process.Kill()
					<-gone
				}
			}()

			select {
			case <-reached:
			case err := <-exited:
				t.Fatalf("the command ended (%v) before its request:\n%s", err, stderr)
			case <-time.After(20 * time.Second):
				t.Fatalf("no request within 20s:\n%s", stderr)
			}
			if err := child.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}

			if !tc.second {
				select {
				case err := <-exited:
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(stderr.String(), "error: interrupted\n") {
						t.Errorf("exit %v, want %d with \"error: interrupted\":\n%s", err, exitInterrupted, stderr)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("still running 10s after Ctrl-C:\n%s", stderr)
				}
				return
			}

			// The first Ctrl-C is taken: the command says so, and hangs on.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(stderr.String(), "error: interrupted\n") {
				select {
				case err := <-exited:
					t.Fatalf("the first Ctrl-C ended the process (%v); it should only cancel the command:\n%s", err, stderr)
				case <-time.After(10 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no \"error: interrupted\" 10s after the first Ctrl-C:\n%s", stderr)
				}
			}
			// The second Ctrl-C kills it. The handler lets go of SIGINT
			// just after cancelling, so press again until it does.
			var err error
			for deadline = time.Now().Add(10 * time.Second); ; {
				if err := child.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
				select {
				case err = <-exited:
				case <-time.After(100 * time.Millisecond):
					if time.Now().After(deadline) {
						t.Fatalf("still running 10s into pressing Ctrl-C again:\n%s", stderr)
					}
					continue
				}
				break
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit %v, want killed by SIGINT", err)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
				t.Errorf("exit %v, want killed by SIGINT:\n%s", err, stderr)
			}
		})
	}
}
