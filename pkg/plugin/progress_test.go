package plugin

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/internal/fakecluster"
	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// draws splits what the line wrote into its redraws (the texts after each
// clear-line).
func draws(out string) []string {
	parts := strings.Split(out, clearLine)
	return parts[1:]
}

func TestProgressRedrawsAtMostEveryInterval(t *testing.T) {
	clock := newFakeClock()
	var buf bytes.Buffer
	p := newProgressLine(&buf, true, "Verifying", 5, clock.now)

	p.tick() // the first draw is never held back
	for range 3 {
		p.nodeDone("Encapsulated")
	}
	clock.advance(100 * time.Millisecond)
	p.nodeDone("Encapsulated")
	if got := draws(buf.String()); len(got) != 1 || got[0] != "Verifying 0/5 nodes (0s)" {
		t.Fatalf("within %s of the first draw: draws %q, want only the first", progressInterval, got)
	}

	clock.advance(progressInterval - 100*time.Millisecond)
	p.tick()
	want := []string{"Verifying 0/5 nodes (0s)", "Verifying 4/5 nodes (0s): Encapsulated 4"}
	if got := draws(buf.String()); !slices.Equal(got, want) {
		t.Fatalf("after %s: draws %q, want %q", progressInterval, got, want)
	}

	// Nothing changed on screen (the elapsed time still reads 0s): no redraw.
	clock.advance(progressInterval)
	p.tick()
	if got := draws(buf.String()); len(got) != 2 {
		t.Fatalf("unchanged text redrawn: %q", got)
	}
	// The elapsed time moves on without any node finishing.
	clock.advance(progressInterval * 2)
	p.tick()
	want = append(want, "Verifying 4/5 nodes (1s): Encapsulated 4")
	if got := draws(buf.String()); !slices.Equal(got, want) {
		t.Fatalf("after 1s: draws %q, want %q", got, want)
	}
	if strings.Contains(buf.String(), "\n") {
		t.Errorf("a newline while running: the line must be redrawn in place: %q", buf.String())
	}

	// A burst of 1000 results over 2s redraws at most 2s/interval times.
	before := len(draws(buf.String()))
	for range 1000 {
		clock.advance(2 * time.Millisecond)
		p.nodeDone("NotEncapsulated")
	}
	if n, limit := len(draws(buf.String()))-before, int(2*time.Second/progressInterval); n > limit || n == 0 {
		t.Errorf("1000 results over 2s: %d redraws, want between 1 and %d", n, limit)
	}
}

func TestProgressFinishEndsTheLine(t *testing.T) {
	clock := newFakeClock()
	var buf bytes.Buffer
	p := newProgressLine(&buf, true, "Measuring", 2, clock.now)
	p.tick()
	p.nodeDone("Measured")
	clock.advance(1500 * time.Millisecond)
	p.nodeDone("Unknown")
	p.finish()
	out := buf.String()
	if !strings.HasSuffix(out, clearLine+"Measuring 2/2 nodes (1s): Measured 1, Unknown 1\n") {
		t.Fatalf("finish did not leave the final counts on a line of their own: %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want exactly one newline, at the end: %q", out)
	}
	// Later calls are no-ops, and so is a node reported after the end.
	p.finish()
	p.nodeDone("Measured")
	p.tick()
	if buf.String() != out {
		t.Errorf("wrote after finish: %q", strings.TrimPrefix(buf.String(), out))
	}
}

func TestProgressFinishWithoutResultsClears(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressLine(&buf, true, "Verifying", 3, newFakeClock().now)
	p.tick()
	p.finish()
	if got, want := buf.String(), clearLine+"Verifying 0/3 nodes (0s)"+clearLine; got != want {
		t.Errorf("a run that never got going: %q, want the line cleared (%q)", got, want)
	}
}

func TestProgressDisabledPrintsNothingExtra(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressLine(&buf, false, "Verifying", 2, newFakeClock().now)
	p.startTicker()
	p.tick()
	if _, err := p.Write([]byte("Probing 2 node(s)\n")); err != nil {
		t.Fatal(err)
	}
	p.nodeDone("Encapsulated")
	p.nodeDone("Encapsulated")
	p.finish()
	if got := buf.String(); got != "Probing 2 node(s)\n" {
		t.Errorf("disabled line wrote %q, want only the log line passed through", got)
	}
}

// A log line of the engine clears the progress line first, so that it
// starts at the left margin, and the line comes back below it.
func TestProgressLogLineClearsTheLine(t *testing.T) {
	clock := newFakeClock()
	var buf bytes.Buffer
	p := newProgressLine(&buf, true, "Verifying", 1, clock.now)
	p.tick()
	if _, err := p.Write([]byte("Probing 1 node(s), 1 at a time\n")); err != nil {
		t.Fatal(err)
	}
	clock.advance(progressInterval)
	p.tick()
	want := clearLine + "Verifying 0/1 nodes (0s)" + clearLine + "Probing 1 node(s), 1 at a time\n" + clearLine + "Verifying 0/1 nodes (0s)"
	if got := buf.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestProgressText(t *testing.T) {
	for _, tt := range []struct {
		name    string
		states  []string
		elapsed time.Duration
		want    string
	}{
		{"none yet", nil, 0, "Verifying 0/816 nodes (0s)"},
		{"states sorted, counted", append(append(repeat("NotEncapsulated", 3), repeat("Encapsulated", 812)...), "Unknown"),
			65*time.Second + 900*time.Millisecond, "Verifying 816/816 nodes (1m5s): Encapsulated 812, NotEncapsulated 3, Unknown 1"},
		{"no state is Unknown", []string{""}, 2 * time.Second, "Verifying 1/816 nodes (2s): Unknown 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			p := newProgressLine(&bytes.Buffer{}, true, "Verifying", 816, clock.now)
			for _, s := range tt.states {
				p.nodeDone(s)
			}
			clock.advance(tt.elapsed)
			if got := p.text(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A line wider than the terminal would wrap, and "\r" would then redraw
// only its last row: it is cut one column short of the width.
func TestProgressFitsTheTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressLine(&buf, true, "Verifying", 5000, newFakeClock().now)
	p.width = 40
	for range 4990 {
		p.nodeDone("Encapsulated")
	}
	p.nodeDone("Unknown")
	p.finish()
	if got, want := buf.String(), clearLine+"Verifying 1/5000 nodes (0s): Encapsulat"+clearLine+"Verifying 4991/5000 nodes (0s): Encapsu\n"; got != want {
		t.Errorf("got  %q\nwant %q (each draw 39 columns at most)", got, want)
	}
}

// The line is for a person at a terminal reading the table: not for a
// pipe or a file, nor with -o json, yaml or name.
func TestShowProgress(t *testing.T) {
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("a pseudo-terminal to play stderr: %v", err)
	}
	defer pty.Close()
	for _, tt := range []struct {
		name   string
		errOut any
		output string
		want   bool
	}{
		{"terminal, table", pty, "", true},
		{"terminal, wide", pty, "wide", true},
		{"terminal, json", pty, "json", false},
		{"terminal, yaml", pty, "yaml", false},
		{"terminal, name", pty, "name", false},
		{"buffer, table", &bytes.Buffer{}, "", false},
		{"pipe, table", pipeWriter(t), "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.errOut.(interface{ Write([]byte) (int, error) })
			if got := showProgress(w, withOutput(newPrintFlags(tableOutput, ""), tt.output)); got != tt.want {
				t.Errorf("showProgress = %v, want %v", got, tt.want)
			}
		})
	}
	if !showProgress(pty, nil) {
		t.Errorf("options built by hand (no PrintFlags) print the table: want the line on a terminal")
	}
}

func pipeWriter(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return w
}

// The engine reports each node once, as its result comes in, and the open
// nodes when it is interrupted: what the progress line counts.
func TestEngineReportsEachNodeDone(t *testing.T) {
	kube := fakecluster.New()
	nodes := []corev1.Node{nodeOn("a", "rendered-worker-1"), nodeOn("b", "rendered-worker-1"), nodeOn("c", "rendered-worker-1")}
	var mu sync.Mutex
	got := map[string]verify.NodeResult{}
	calls := 0
	e := &verify.Engine{Client: kube, Image: "img", Timeout: time.Minute, OnNodeDone: func(r any) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if nr, ok := r.(verify.NodeResult); ok {
			got[nr.Node] = nr
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, nodes)
		done <- err
	}()
	pods := fakecluster.WaitPods(t, kube, 3)
	for _, p := range pods {
		if p.Spec.NodeName == "c" {
			continue // c's probe never finishes: interrupted below
		}
		p = p.DeepCopy()
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: verify.ProbeContainer,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: sampleNodeReport("4026533000", "4026531841").Format()}}}}
		if _, err := kube.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnNodeDone reported %d node(s) of the 2 that finished", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end on cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("OnNodeDone called %d times, want once per node (3)", calls)
	}
	if got["a"].State != verify.Encapsulated || got["b"].State != verify.Encapsulated {
		t.Errorf("finished nodes reported as %s and %s, want Encapsulated", got["a"].State, got["b"].State)
	}
	if c := got["c"]; c.State != verify.StateUnknown || c.Reason != verify.ReasonInterrupted {
		t.Errorf("interrupted node reported as %s(%s), want Unknown(Interrupted)", c.State, c.Reason)
	}
}

func repeat(s string, n int) []string { return slices.Repeat([]string{s}, n) }
