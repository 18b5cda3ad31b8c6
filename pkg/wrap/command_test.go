package wrap

import (
	"reflect"
	"testing"
)

func TestSplitPrefixes(t *testing.T) {
	tests := []struct{ in, prefixes, rest string }{
		{"/bin/foo", "", "/bin/foo"},
		{"-/bin/foo", "-", "/bin/foo"},
		{"@/bin/foo a", "@", "/bin/foo a"},
		{":/bin/foo", ":", "/bin/foo"},
		{"+/bin/foo", "+", "/bin/foo"},
		{"!/bin/foo", "!", "/bin/foo"},
		{"!!/bin/foo", "!!", "/bin/foo"},
		{"-+/bin/foo", "-+", "/bin/foo"},
		{"+-/bin/foo", "+-", "/bin/foo"},
		{"!-!/bin/foo", "!-!", "/bin/foo"}, // systemd's loop takes the second ! later too
		{"-@:!!/bin/foo", "-@:!!", "/bin/foo"},
		{"--/bin/foo", "-", "-/bin/foo"},   // each at most once
		{"+!/bin/foo", "+", "!/bin/foo"},   // + and ! exclude each other
		{"!!!/bin/foo", "!!", "!/bin/foo"}, // !! is the most
		{"!+/bin/foo", "!", "+/bin/foo"},
		{"- /bin/foo", "-", " /bin/foo"},
		{`"-/bin/foo"`, "", `"-/bin/foo"`},
		{"", "", ""},
	}
	for _, tt := range tests {
		p, r := splitPrefixes(tt.in)
		if p != tt.prefixes || r != tt.rest {
			t.Errorf("splitPrefixes(%q) = %q, %q; want %q, %q", tt.in, p, r, tt.prefixes, tt.rest)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in    string
		words []word
		err   error
	}{
		{"", nil, nil},
		{"  \t ", nil, nil},
		{"/bin/foo a  b\tc", []word{{"/bin/foo", "/bin/foo"}, {"a", "a"}, {"b", "b"}, {"c", "c"}}, nil},
		{`"/opt/my tool" 'a b' x"y z"w`, []word{{`"/opt/my tool"`, "/opt/my tool"}, {`'a b'`, "a b"}, {`x"y z"w`, "xy zw"}}, nil},
		{`"it's" 'say "hi"'`, []word{{`"it's"`, "it's"}, {`'say "hi"'`, `say "hi"`}}, nil},
		{`a\ b c\\d "q\"uote" \x41\101\u00e9\n\s\;`, []word{
			{`a\ b`, "a b"}, {`c\\d`, `c\d`}, {`"q\"uote"`, `q"uote`}, {`\x41\101\u00e9\n\s\;`, "AAé\n ;"},
		}, nil},
		{`\xZZ \0 \q`, []word{{`\xZZ`, "xZZ"}, {`\0`, "0"}, {`\q`, "q"}}, nil},
		{`"" ''`, []word{{`""`, ""}, {`''`, ""}}, nil},
		{`"open`, nil, errOpenQuote},
		{`a 'b`, nil, errOpenQuote},
		{`a "b\"`, nil, errOpenQuote},
		{`a\`, nil, errTrailingEscape},
		{`a \\\`, nil, errTrailingEscape},
		{`a \\`, []word{{"a", "a"}, {`\\`, `\`}}, nil},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != tt.err || !reflect.DeepEqual(got, tt.words) {
			t.Errorf("splitWords(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.words, tt.err)
		}
	}
}

func TestIsWrapped(t *testing.T) {
	for cmd, want := range map[string]bool{
		"/usr/bin/kubensenter /bin/foo":                     true,
		"kubensenter /bin/foo":                              true,
		"-/usr/local/bin/kubensenter /bin/foo":              true,
		`"/usr/bin/kubensenter" /bin/foo`:                   true,
		"/usr/local/bin/kubenswrapper /usr/bin/kubelet":     true,
		"/usr/bin/nsenter --mount=/run/kubens/mnt /bin/foo": true,
		"nsenter -m/run/kubens/mnt -- /bin/foo":             true,
		"nsenter --mount=${KUBENSMNT} /bin/foo":             true,
		"nsenter -t 1 -m -- /bin/foo":                       false,
		"nsenter --mount /run/kubens/mnt /bin/foo":          false, // the argument is optional: must be attached
		"/usr/bin/nsenter --mount=/proc/1/ns/mnt /bin/foo":  false,
		"/bin/foo /usr/bin/kubensenter":                     false,
		"/usr/bin/kubensenter-old /bin/foo":                 false,
		"/usr/bin/mykubensenter /bin/foo":                   false,
		`"/usr/bin/kubensenter /bin/foo`:                    false, // does not split
		"":                                                  false,
	} {
		if got := isWrapped(cmd); got != want {
			t.Errorf("isWrapped(%q) = %v, want %v", cmd, got, want)
		}
	}
}
