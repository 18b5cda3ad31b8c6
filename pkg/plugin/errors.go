package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// ExitError makes a command exit with a specific code. Commands return it when
// the exit code itself carries meaning (verify: 1 = some node is not
// encapsulated, 2 = could not run at all). Err, if set, is printed as the
// one-line "error: ..." message; a nil Err exits quietly, for commands that
// already printed their report.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exitInterrupted is the shell convention for "stopped by SIGINT" (128+2).
const exitInterrupted = 130

// usageError is a mistake in how the command was called (unknown flag,
// stray argument). It gets a pointer to the command's help; runtime errors
// do not, because the help would bury the message.
type usageError struct {
	cmdPath string
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// newUsageError wraps err as a usage error of cmd.
func newUsageError(cmd *cobra.Command, err error) error {
	return &usageError{cmdPath: cmd.CommandPath(), err: err}
}

// noArgs is cobra.NoArgs with a message that says what to do.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return newUsageError(cmd, fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " ")))
	}
	return nil
}

// reportError prints err as one "error: ..." line on w and returns the exit
// code for it. interrupted tells whether the user pressed Ctrl-C.
func reportError(w io.Writer, err error, interrupted bool) int {
	if err == nil {
		return 0
	}
	code := 1
	var exitErr *ExitError
	switch {
	case errors.As(err, &exitErr):
		if exitErr.Code > 0 {
			code = exitErr.Code
		}
		if exitErr.Err == nil {
			return code
		}
	case interrupted && errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "error: interrupted")
		return exitInterrupted
	}
	msg := singleLine(err.Error())
	var uerr *usageError
	if errors.As(err, &uerr) {
		msg = fmt.Sprintf("%s (see '%s --help')", msg, uerr.cmdPath)
	}
	fmt.Fprintf(w, "error: %s\n", msg)
	return code
}

// kubectl's jsonpath printer follows its error with a multi-line dump of
// the whole object; the first sentence says what is wrong.
const jsonpathDebugDump = "Printing more information for debugging the template:"

// singleLine makes an error message one printable line: the lines of a
// multi-line error (errors.Join, kubectl's printers) joined with "; ", and
// control characters (a newline or a terminal escape sequence in a flag
// value, a node name or a termination message) shown escaped, never sent
// raw to the terminal.
func singleLine(msg string) string {
	if i := strings.Index(msg, jsonpathDebugDump); i >= 0 {
		msg = msg[:i]
	}
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	msg = strings.Join(parts, "; ")
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
