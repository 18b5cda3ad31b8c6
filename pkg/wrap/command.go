package wrap

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// blanks are what systemd strips around values and splits command lines
// on (its WHITESPACE less the line breaks, which never reach a value).
const blanks = " \t"

// splitPrefixes cuts the leading ExecStart prefixes off cmd the way
// systemd's own loop does: "-", "@" and ":" at most once each, plus one of
// "+", "!" or "!!", in any order. The first character that does not fit
// ends the prefixes, so "--/bin/x" has the prefix "-" and the rest
// "-/bin/x".
func splitPrefixes(cmd string) (prefixes, rest string) {
	var ignore, argv0, noEnv bool
	priv := 0 // 1 after "+", 2 after "!", 3 after "!!"
	i := 0
loop:
	for ; i < len(cmd); i++ {
		switch c := cmd[i]; {
		case c == '-' && !ignore:
			ignore = true
		case c == '@' && !argv0:
			argv0 = true
		case c == ':' && !noEnv:
			noEnv = true
		case c == '+' && priv == 0:
			priv = 1
		case c == '!' && priv == 0:
			priv = 2
		case c == '!' && priv == 2:
			priv = 3
		default:
			break loop
		}
	}
	return cmd[:i], cmd[i:]
}

// word is one word of a command line: raw as written, text once its
// quotes and escapes are resolved.
type word struct {
	raw, text string
}

var (
	errOpenQuote      = errors.New("a quote is not closed")
	errTrailingEscape = errors.New("it ends in a backslash that escapes nothing (in a unit file that would join the next line)")
)

// splitWords splits a command line into words by systemd's quoting
// (systemd.syntax(7)): blanks separate words; single or double quotes,
// anywhere in a word, group blanks into it; a backslash, inside quotes or
// not, escapes the next character (C escapes such as \n or \x41 are
// decoded). Escapes systemd would reject are kept as the escaped character:
// the words are only used to find the executable and the nsenter options,
// never to rebuild the line.
func splitWords(s string) ([]word, error) {
	var words []word
	i := 0
	for {
		for i < len(s) && strings.IndexByte(blanks, s[i]) >= 0 {
			i++
		}
		if i == len(s) {
			return words, nil
		}
		start := i
		var b strings.Builder
		var quote byte
		for i < len(s) {
			c := s[i]
			if c == '\\' {
				if i+1 == len(s) {
					return nil, errTrailingEscape
				}
				n, text := unescape(s[i+1:])
				b.WriteString(text)
				i += 1 + n
				continue
			}
			if quote != 0 {
				if c == quote {
					quote = 0
				} else {
					b.WriteByte(c)
				}
				i++
				continue
			}
			if strings.IndexByte(blanks, c) >= 0 {
				break
			}
			if c == '\'' || c == '"' {
				quote = c
			} else {
				b.WriteByte(c)
			}
			i++
		}
		if quote != 0 {
			return nil, errOpenQuote
		}
		words = append(words, word{raw: s[start:i], text: b.String()})
	}
}

// unescape decodes the escape at the start of s (what follows a
// backslash) and says how many bytes it took.
func unescape(s string) (int, string) {
	switch s[0] {
	case 'a':
		return 1, "\a"
	case 'b':
		return 1, "\b"
	case 'f':
		return 1, "\f"
	case 'n':
		return 1, "\n"
	case 'r':
		return 1, "\r"
	case 't':
		return 1, "\t"
	case 'v':
		return 1, "\v"
	case 's':
		return 1, " "
	case 'x':
		if v, ok := number(s[1:], 2, 16); ok {
			return 3, string([]byte{byte(v)})
		}
	case 'u':
		if v, ok := number(s[1:], 4, 16); ok && utf8.ValidRune(rune(v)) {
			return 5, string(rune(v))
		}
	case 'U':
		if v, ok := number(s[1:], 8, 16); ok && utf8.ValidRune(rune(v)) {
			return 9, string(rune(v))
		}
	case '0', '1', '2', '3':
		// Octal takes exactly three digits, at most \377.
		if v, ok := number(s, 3, 8); ok {
			return 3, string([]byte{byte(v)})
		}
	}
	_, size := utf8.DecodeRuneInString(s)
	return size, s[:size]
}

// number parses the first n characters of s as digits in base (with an
// explicit base, ParseUint takes neither signs, prefixes nor underscores).
func number(s string, n, base int) (uint64, bool) {
	if len(s) < n {
		return 0, false
	}
	v, err := strconv.ParseUint(s[:n], base, 32)
	return v, err == nil
}

// isWrapped says whether a command (prefixes included) already runs in
// the Kubernetes mount namespace: its executable is kubensenter, or
// OpenShift's kubenswrapper (kubelet's), or nsenter told to enter
// /run/kubens/mnt. A command that does not split is not wrapped.
func isWrapped(cmd string) bool {
	_, rest := splitPrefixes(cmd)
	words, err := splitWords(rest)
	if err != nil || len(words) == 0 {
		return false
	}
	exe := words[0].text
	switch base(exe) {
	case "kubensenter", "kubenswrapper":
		return true
	case "nsenter":
		for _, w := range words[1:] {
			switch w.text {
			case "--mount=" + kubensPin, "-m" + kubensPin,
				"--mount=$KUBENSMNT", "--mount=${KUBENSMNT}", "-m$KUBENSMNT", "-m${KUBENSMNT}":
				return true
			}
		}
	}
	return false
}

// kubensPin is where kubens.service pins the Kubernetes mount namespace.
const kubensPin = "/run/kubens/mnt"

// base is the last element of a slash-separated path.
func base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}
