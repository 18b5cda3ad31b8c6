package wrap

import (
	"errors"
	"fmt"
	"strings"
)

// UnitFile is what `systemctl cat` shows of a service: the files systemd
// loads it from and the settings of [Service] that wrapping needs.
type UnitFile struct {
	// Files are the paths systemctl printed, in its order: the unit file,
	// then the drop-ins in the order systemd applies them.
	Files []string
	// ExecStart holds the effective commands once every drop-in has been
	// applied: continuation lines joined, surrounding blanks stripped,
	// prefixes, quotes, $VARs and %-specifiers kept as written. Several
	// only for a Type=oneshot service.
	ExecStart []string
	// WrappedBy is the file that already makes the unit run in the
	// Kubernetes mount namespace: the wrapper drop-in (DropInName), or
	// else the file whose ExecStart goes through kubensenter, kubenswrapper
	// or nsenter into /run/kubens/mnt. Empty when the unit is not wrapped.
	WrappedBy string
	// User is the effective User= of [Service], empty when unset (root).
	User string
}

// RunsAsRoot says whether the service runs as root, as it must for
// kubensenter to enter another mount namespace.
func (u UnitFile) RunsAsRoot() bool {
	return u.User == "" || u.User == "root" || u.User == "0"
}

var (
	// ErrNotSystemctlCat marks text that does not start the way `systemctl
	// cat` output does, with a "# /path/of/the/unit" header.
	ErrNotSystemctlCat = errors.New(`not systemctl cat output: it does not start with a "# /path" file header`)
	// ErrNoExecStart marks a unit without an effective ExecStart: none
	// was ever set, or a drop-in reset it with an empty ExecStart= and set
	// no other.
	ErrNoExecStart = errors.New("the unit has no ExecStart command")
	// ErrBadUnitFile marks a unit file systemd refuses to load (an invalid
	// section header): what it would run cannot be told.
	ErrBadUnitFile = errors.New("systemd would refuse to load the unit")
)

// ParseSystemctlCat reads the output of `systemctl cat UNIT` by systemd's
// rules (systemd.syntax(7), systemd.service(5)) and returns the unit's
// effective ExecStart and User.
//
// systemctl prints each file after a "# /path" header, with an empty line
// between files; a header is therefore only recognised as the very first
// line or right after an empty line, so that a comment such as
// "# /usr/bin/foo" inside a file is taken for a comment in most cases.
// Within a file: lines starting with "#" or ";" (after blanks) are comments,
// even inside a continuation; a line ending in an unescaped backslash goes on
// on the next line, the backslash turned into a space; keys are
// case-sensitive and blanks around "=" and the value are dropped; only
// [Service] counts; an empty ExecStart= drops the commands set so far.
//
// On ErrNoExecStart the returned UnitFile still holds the files, the user
// and WrappedBy.
func ParseSystemctlCat(out string) (UnitFile, error) {
	lines := splitLines(out)
	if len(lines) == 0 || !isHeader(lines, 0) {
		return UnitFile{}, ErrNotSystemctlCat
	}
	var p catParser
	for i, l := range lines {
		if isHeader(lines, i) {
			if err := p.endFile(); err != nil {
				return UnitFile{}, err
			}
			p.file, p.section = l[2:], ""
			p.files = append(p.files, p.file)
			continue
		}
		if err := p.line(l); err != nil {
			return UnitFile{}, err
		}
	}
	if err := p.endFile(); err != nil {
		return UnitFile{}, err
	}
	return p.result()
}

// splitLines splits at every line end systemd's read_line knows: LF,
// CR LF, a lone CR and NUL. A final line end does not start a line.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\x00':
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				lines = append(lines, s[start:i])
				i++
				start = i + 1
				continue
			}
		default:
			continue
		}
		lines = append(lines, s[start:i])
		start = i + 1
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// isHeader says whether lines[i] is a file header of systemctl cat: "# "
// and an absolute path without blanks, first in the output or after an
// empty line.
func isHeader(lines []string, i int) bool {
	l := lines[i]
	return strings.HasPrefix(l, "# /") && !strings.ContainsAny(l[2:], blanks) &&
		(i == 0 || lines[i-1] == "")
}

// execLine is one ExecStart value and the file that set it.
type execLine struct {
	cmd, file string
}

// catParser follows one systemctl cat output file by file.
type catParser struct {
	files   []string
	file    string
	section string
	cont    string // the logical line so far, while inCont
	inCont  bool
	exec    []execLine
	user    string
}

// line takes one physical line of the current file.
func (p *catParser) line(l string) error {
	if t := strings.TrimLeft(l, blanks); t != "" && (t[0] == '#' || t[0] == ';') {
		return nil
	}
	if p.inCont {
		l = p.cont + l
	}
	if endsEscaped(l) {
		p.cont, p.inCont = l[:len(l)-1]+" ", true
		return nil
	}
	p.cont, p.inCont = "", false
	return p.logical(l)
}

// endFile finishes the current file: a continuation still open at its end
// is a line of its own, as systemd parses each file separately.
func (p *catParser) endFile() error {
	if !p.inCont {
		return nil
	}
	l := p.cont
	p.cont, p.inCont = "", false
	return p.logical(l)
}

// endsEscaped says whether l ends in a backslash that is not itself
// escaped, that is in an odd number of backslashes.
func endsEscaped(l string) bool {
	n := len(l) - len(strings.TrimRight(l, `\`))
	return n%2 == 1
}

// logical applies one logical line (continuations joined).
func (p *catParser) logical(l string) error {
	l = strings.Trim(l, blanks)
	if l == "" {
		return nil
	}
	if l[0] == '[' {
		if len(l) < 2 || l[len(l)-1] != ']' {
			return fmt.Errorf("%w: invalid section header %q in %s", ErrBadUnitFile, l, p.file)
		}
		p.section = l[1 : len(l)-1]
		return nil
	}
	key, value, ok := strings.Cut(l, "=")
	if !ok || p.section != "Service" {
		// systemd ignores a line without "=" with a warning.
		return nil
	}
	switch strings.Trim(key, blanks) {
	case "ExecStart":
		value = strings.Trim(value, blanks)
		if value == "" {
			p.exec = nil
		} else {
			p.exec = append(p.exec, execLine{cmd: value, file: p.file})
		}
	case "User":
		p.user = strings.Trim(value, blanks)
	}
	return nil
}

// result is the unit as parsed.
func (p *catParser) result() (UnitFile, error) {
	u := UnitFile{Files: p.files, User: p.user}
	for _, f := range p.files[1:] {
		if base(f) == DropInName {
			u.WrappedBy = f
			break
		}
	}
	for _, e := range p.exec {
		u.ExecStart = append(u.ExecStart, e.cmd)
		if u.WrappedBy == "" && isWrapped(e.cmd) {
			u.WrappedBy = e.file
		}
	}
	if len(u.ExecStart) == 0 {
		return u, ErrNoExecStart
	}
	return u, nil
}
