package plugin

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/term"
)

// progressInterval bounds how often the progress line is redrawn: often
// enough to look alive, rarely enough that a 5000-node run over a slow ssh
// link does not spend its bandwidth on redraws.
const progressInterval = 250 * time.Millisecond

// clearLine is a carriage return and ANSI "erase the whole line": the cursor
// goes back to the start of the progress line and the old text is gone.
const clearLine = "\r\x1b[2K"

// progressLine is the one live line verify and measure keep on stderr while
// their pods run ("Verifying 245/5000 nodes (12s): Encapsulated 240,
// Unknown 5"), redrawn in place. It is only drawn on a terminal and with the
// human output: everywhere else (a pipe, a file, -o json) it only passes
// the engine's log lines through, so scripts see exactly what they saw before.
//
// It is safe for concurrent use: the engine reports nodes from its own
// goroutine, the ticker redraws the elapsed time from another.
type progressLine struct {
	out     io.Writer
	enabled bool
	verb    string
	total   int
	now     func() time.Time
	// width is the terminal's; a longer line is cut to fit, since a line
	// that wraps cannot be redrawn in place. 0: unknown, not cut.
	width int

	mu       sync.Mutex
	start    time.Time
	lastDraw time.Time
	done     int
	states   map[string]int
	shown    string // the text on the screen; "" when the line is clear
	finished bool
	stopTick chan struct{}
}

// newProgressLine returns the line for a run of total nodes, drawn on out
// when enabled; verb starts the line ("Verifying"). now is the clock
// (time.Now when nil). The elapsed time counts from this call.
func newProgressLine(out io.Writer, enabled bool, verb string, total int, now func() time.Time) *progressLine {
	if now == nil {
		now = time.Now
	}
	return &progressLine{out: out, enabled: enabled, verb: verb, total: total, now: now, start: now(), states: map[string]int{}}
}

// newProgress is the progress line of a verify or measure run on total
// nodes: drawn on errOut when showProgress says so, cut to its width.
func newProgress(errOut io.Writer, p *printFlags, verb string, total int) *progressLine {
	on := showProgress(errOut, p)
	l := newProgressLine(errOut, on, verb, total, nil)
	if on {
		if size := (term.TTY{Out: errOut}).GetSize(); size != nil {
			l.width = int(size.Width)
		}
	}
	return l
}

// showProgress says whether the live line belongs on errOut: a person is
// watching a terminal there, and the output is the human table (-o json,
// yaml, name and the templates are for programs, which get nothing extra).
func showProgress(errOut io.Writer, p *printFlags) bool {
	return printers.IsTerminal(errOut) && (p == nil || p.human())
}

// nodeDone counts one node's result in state and redraws if the last redraw
// is old enough; otherwise the next tick shows it.
func (p *progressLine) nodeDone(state string) {
	if state == "" {
		state = "Unknown"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.states[state]++
	p.drawIfDue()
}

// tick redraws if the last redraw is old enough and the text changed (the
// elapsed time moves on even when no node finishes, e.g. during image pulls).
func (p *progressLine) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawIfDue()
}

// Write passes a log line through (it is the engine's Log): the progress
// line is cleared first so the log line does not land after it, and is
// redrawn by the next tick below the log line.
func (p *progressLine) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown != "" {
		if _, err := io.WriteString(p.out, clearLine); err != nil {
			return 0, err
		}
		p.shown = ""
	}
	return p.out.Write(b)
}

// startTicker draws the line every progressInterval until finish; a no-op
// when the line is not shown. The first draw waits for the first tick: the
// engine's "Probing N node(s)" line comes right after the start, and would
// only make a line drawn at once flicker.
func (p *progressLine) startTicker() {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	p.stopTick = make(chan struct{})
	stop := p.stopTick
	p.mu.Unlock()
	go func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.tick()
			}
		}
	}()
}

// finish stops the ticker and leaves the final counts on their own line, so
// that what follows (the table, "Deleted namespace") starts on a fresh one;
// when no node finished it clears the line instead. Later calls do nothing.
func (p *progressLine) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.stopTick != nil {
		close(p.stopTick)
	}
	switch {
	case !p.enabled:
	case p.done == 0:
		// Nothing ran (the run could not start): the error that follows
		// says why, and a line of zeros would only be noise.
		if p.shown != "" {
			io.WriteString(p.out, clearLine)
		}
	default:
		if p.fit(p.text()) != p.shown {
			p.draw()
		}
		fmt.Fprint(p.out, "\n")
	}
	p.shown = ""
}

// drawIfDue redraws when progressInterval has passed since the last redraw
// and the text changed. Called with mu held.
func (p *progressLine) drawIfDue() {
	if !p.enabled || p.finished || p.now().Sub(p.lastDraw) < progressInterval {
		return
	}
	if p.fit(p.text()) == p.shown {
		return
	}
	p.draw()
}

// draw replaces the line with the current text. Called with mu held.
func (p *progressLine) draw() {
	t := p.fit(p.text())
	fmt.Fprint(p.out, clearLine+t)
	p.shown = t
	p.lastDraw = p.now()
}

// fit cuts t to the terminal's width, leaving the last column free so the
// cursor never wraps. The text is ASCII: bytes are columns.
func (p *progressLine) fit(t string) string {
	if p.width > 0 && len(t) >= p.width {
		return t[:p.width-1]
	}
	return t
}

// text is the line: "Verifying 245/5000 nodes (12s): Encapsulated 240,
// NotEncapsulated 3, Unknown 2". States in name order, so each keeps its
// place from one redraw to the next.
func (p *progressLine) text() string {
	elapsed := p.now().Sub(p.start).Truncate(time.Second)
	s := fmt.Sprintf("%s %d/%d nodes (%s)", p.verb, p.done, p.total, elapsed)
	if len(p.states) == 0 {
		return s
	}
	names := make([]string, 0, len(p.states))
	for name := range p.states {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, p.states[name])
	}
	return s + ": " + strings.Join(parts, ", ")
}
