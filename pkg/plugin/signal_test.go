//go:build unix

package plugin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestSignalsCancelCommands: SIGINT, SIGTERM and SIGHUP (the terminal went
// away) cancel the command's context, so verify and exec clean up, and the
// exit status is 130, also before the probes or the command run. The command is stuck in a request that never answers
// (getting the node) when the signal comes.
func TestSignalsCancelCommands(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		args []string
	}{
		{syscall.SIGINT, []string{"verify", "n1", "--image", "x"}},
		{syscall.SIGTERM, []string{"verify", "n1", "--image", "x"}},
		{syscall.SIGHUP, []string{"verify", "n1", "--image", "x"}},
		{syscall.SIGINT, []string{"exec", "n1", "--image", "x", "--", "true"}},
		{syscall.SIGHUP, []string{"exec", "n1", "--image", "x", "--", "true"}},
	} {
		sig := tc.sig
		t.Run(tc.args[0]+" "+sig.String(), func(t *testing.T) {
			reached := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == mcDiscoveryPath {
					// Discovery takes no context: it must answer.
					http.NotFound(w, r)
					return
				}
				select {
				case reached <- struct{}{}:
				default:
				}
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
			}))
			defer srv.Close()
			var out, errOut bytes.Buffer
			code := make(chan int, 1)
			go func() {
				code <- Execute(append([]string{"oc-kubens", tc.args[0], "--server", srv.URL}, tc.args[1:]...), genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			}()
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatal("no request made")
			}
			if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case c := <-code:
				if c != exitInterrupted || !strings.Contains(errOut.String(), "interrupted") {
					t.Errorf("exit %d, stderr %q; want 130 and interrupted", c, errOut.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("did not stop within 10s of %s", sig)
			}
		})
	}
}
