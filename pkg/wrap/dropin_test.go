package wrap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateUnitName(t *testing.T) {
	valid := []string{
		"chronyd.service", "getty@.service", "getty@tty1.service", "systemd-fsck@dev-sda1.service",
		"a.service", "-.service", "foo.bar.service", "user@1000.service", "x@a@b.service", "A_b:c-1.service",
		strings.Repeat("a", 247) + ".service",
	}
	for _, name := range valid {
		if err := ValidateUnitName(name); err != nil {
			t.Errorf("ValidateUnitName(%q) = %v, want nil", name, err)
		}
	}
	invalid := map[string]string{
		"":                                    "empty",
		"chronyd":                             "only a service",
		"chronyd.socket":                      "only a service",
		"chronyd.service.d":                   "only a service",
		".service":                            "is empty",
		"@.service":                           "is empty",
		"@foo.service":                        "is empty",
		".hidden.service":                     "starts with a dot",
		"a b.service":                         `' '`,
		"a/b.service":                         `'/'`,
		`dev-disk-by\x2dlabel.service`:        `'\\'`,
		"a;rm -rf /.service":                  `';'`,
		"$(x).service":                        `'$'`,
		"a\n.service":                         `'\n'`,
		"caf\xc3\xa9.service":                 "'é'",
		"bad\xff.service":                     "'\ufffd'",
		strings.Repeat("a", 248) + ".service": "256 characters",
	}
	for name, why := range invalid {
		err := ValidateUnitName(name)
		if !errors.Is(err, ErrInvalidUnitName) {
			t.Errorf("ValidateUnitName(%q) = %v, want ErrInvalidUnitName", name, err)
			continue
		}
		if !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "want NAME.service") {
			t.Errorf("ValidateUnitName(%q) = %q, want it to say %s and what a valid name looks like", name, err, why)
		}
	}
}

func TestValidateCommand(t *testing.T) {
	valid := []string{
		"/usr/sbin/chronyd $OPTIONS",
		"  /usr/bin/foo --a  ", // blanks around are systemd's to drop
		"-/usr/bin/foo", ":/usr/bin/foo $LITERAL", "+/usr/bin/foo", "!/usr/bin/foo", "!!/usr/bin/foo", "-+/usr/bin/foo", ":-!!/usr/bin/foo",
		"chronyd -d", // a plain name: systemd looks it up
		`"/opt/my tool/run" --name="%N" 'single quoted' a\;b "x;y" --end=\\`,
		`/bin/sh -c 'echo "$HOME"; exec /usr/bin/worker --id=%i ${ARGS}'`,
		"%h/bin/tool --flag",
		":/opt/$weird/bin/tool", // no variables expanded with ":"
		"/usr/bin/nsenter -t 1 -m -- /bin/foo",
		"/usr/bin/crio            $CRIO_CONFIG_OPTIONS            $CRIO_RUNTIME_OPTIONS",
	}
	for _, cmd := range valid {
		if err := ValidateCommand(cmd); err != nil {
			t.Errorf("ValidateCommand(%q) = %v, want nil", cmd, err)
		}
	}
	invalid := map[string]string{
		"":                              "empty",
		" \t ":                          "empty",
		"/bin/foo\n/bin/bar":            "one line",
		"/bin/foo\r":                    "one line",
		"/bin/foo\x00":                  "one line",
		"-":                             "no executable",
		"- /bin/foo":                    "against the executable",
		"@/usr/bin/foo foo-argv0 --x":   `"@" prefix`,
		"-@/usr/bin/foo argv0":          `"@" prefix`,
		"--/bin/foo":                    "each at most once",
		"+!/bin/foo":                    "each at most once",
		`"-/bin/foo"`:                   "each at most once",
		`\-/bin/foo`:                    "each at most once",
		`"" a`:                          "executable is empty",
		"|/bin/foo":                     `"|" prefix`,
		"bin/foo":                       "absolute path or a plain name",
		"./foo":                         "absolute path or a plain name",
		"..":                            "absolute path or a plain name",
		"%q/bin/foo":                    "absolute path or a plain name",
		"$BIN/foo":                      "absolute path or a plain name",
		"/opt/$V/foo":                   "holds a $",
		"/usr/bin/":                     "absolute path or a plain name",
		`/usr/bin/a\x27b`:               "systemd refuses",
		`"/usr/bin/it's"`:               "systemd refuses",
		`/usr/bin/tab\t`:                "systemd refuses",
		"/bin/foo 'open":                "quote is not closed",
		`/bin/foo "open\"`:              "quote is not closed",
		`/bin/foo \`:                    "backslash",
		`/bin/foo a\\\`:                 "backslash",
		"/bin/a ; /bin/b":               `lone ";"`,
		"/bin/a ;":                      `lone ";"`,
		"/usr/bin/kubensenter /bin/foo": "already",
	}
	for cmd, why := range invalid {
		err := ValidateCommand(cmd)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ValidateCommand(%q) = %v, want an error saying %s", cmd, err, why)
			continue
		}
		if already := strings.Contains(why, "already"); errors.Is(err, ErrAlreadyWrapped) != already || errors.Is(err, ErrInvalidCommand) == already {
			t.Errorf("ValidateCommand(%q) = %v: wrong sentinel", cmd, err)
		}
	}
	for _, cmd := range []string{"kubensenter /bin/foo", "-/usr/local/bin/kubensenter /bin/foo", "/usr/bin/nsenter --mount=/run/kubens/mnt /bin/foo"} {
		if err := ValidateCommand(cmd); !errors.Is(err, ErrAlreadyWrapped) {
			t.Errorf("ValidateCommand(%q) = %v, want ErrAlreadyWrapped", cmd, err)
		}
	}
}

func TestDropIn(t *testing.T) {
	got, err := DropIn("chronyd.service", []string{"-/usr/sbin/chronyd $OPTIONS"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Generated by oc-kubens wrap: runs chronyd.service inside the Kubernetes mount namespace.
[Unit]
After=kubens.service

[Service]
ExecStart=
ExecStart=-/usr/bin/kubensenter /usr/sbin/chronyd $OPTIONS
`
	if got != want {
		t.Errorf("DropIn:\n%s\nwant:\n%s", got, want)
	}

	got, err = DropIn("setup@.service", []string{
		"  /usr/bin/mkdir -p /run/setup/%i ",
		":-!!/usr/bin/setup --literal=$X",
		`+"/opt/my tool/run" 'a b' \;`,
		"mount-helper --all",
	})
	if err != nil {
		t.Fatal(err)
	}
	want = `# Generated by oc-kubens wrap: runs setup@.service inside the Kubernetes mount namespace.
[Unit]
After=kubens.service

[Service]
ExecStart=
ExecStart=/usr/bin/kubensenter /usr/bin/mkdir -p /run/setup/%i
ExecStart=:-!!/usr/bin/kubensenter /usr/bin/setup --literal=$X
ExecStart=+/usr/bin/kubensenter "/opt/my tool/run" 'a b' \;
ExecStart=/usr/bin/kubensenter mount-helper --all
`
	if got != want {
		t.Errorf("DropIn:\n%s\nwant:\n%s", got, want)
	}
}

func TestDropInRefuses(t *testing.T) {
	tests := []struct {
		unit     string
		commands []string
		err      error
	}{
		{"chronyd", []string{"/usr/sbin/chronyd"}, ErrInvalidUnitName},
		{"a;b.service", []string{"/usr/sbin/chronyd"}, ErrInvalidUnitName},
		{"chronyd.service", nil, ErrInvalidCommand},
		{"chronyd.service", []string{"/usr/sbin/chronyd", "@/usr/sbin/chronyd chronyd"}, ErrInvalidCommand},
		{"chronyd.service", []string{"/usr/bin/kubensenter /usr/sbin/chronyd"}, ErrAlreadyWrapped},
	}
	for _, tt := range tests {
		if text, err := DropIn(tt.unit, tt.commands); !errors.Is(err, tt.err) || text != "" {
			t.Errorf("DropIn(%q, %q) = %q, %v; want %v", tt.unit, tt.commands, text, err, tt.err)
		}
	}
}

func TestParseDropInRoundTrip(t *testing.T) {
	tests := []struct {
		unit     string
		commands []string
	}{
		{"chronyd.service", []string{"/usr/sbin/chronyd $OPTIONS"}},
		{"a.service", []string{"-/bin/a", ":/bin/b $X", "+/bin/c", "!/bin/d", "!!/bin/e", "-+/bin/f", "!-!/bin/g"}},
		{"getty@.service", []string{`-/sbin/agetty -o '-p -- \\u' --noclear %I $TERM`}},
		{"q.service", []string{`"/opt/my tool/run" "a;b" 'c d' e\;f`}},
		{"plain.service", []string{"true"}},
	}
	for _, tt := range tests {
		text, err := DropIn(tt.unit, tt.commands)
		if err != nil {
			t.Fatalf("DropIn(%q, %q): %v", tt.unit, tt.commands, err)
		}
		got, err := ParseDropIn(text)
		if err != nil || !reflect.DeepEqual(got, tt.commands) {
			t.Errorf("ParseDropIn(DropIn(%q, %q)) = %q, %v", tt.unit, tt.commands, got, err)
		}
		checkCat(t, tt.unit, text, tt.commands)
	}
}

// checkCat reads a drop-in the way it reaches systemd, after the unit's
// own file, through ParseSystemctlCat: the effective ExecStart must be the
// wrapped commands, and the unit wrapped by the drop-in.
func checkCat(t *testing.T, unit, text string, commands []string) {
	t.Helper()
	dir := "/etc/systemd/system/" + unit + ".d/"
	cat := "# /usr/lib/systemd/system/" + unit + "\n[Service]\nExecStart=/usr/bin/original --flag\nUser=root\n\n# " +
		dir + "10-env.conf\n[Service]\nEnvironment=A=1\n\n# " + dir + DropInName + "\n" + text
	got, err := ParseSystemctlCat(cat)
	if err != nil {
		t.Fatalf("ParseSystemctlCat of the drop-in: %v\n%s", err, cat)
	}
	var want []string
	for _, c := range commands {
		p, rest := splitPrefixes(strings.Trim(c, blanks))
		want = append(want, p+Kubensenter+" "+rest)
	}
	if !reflect.DeepEqual(got.ExecStart, want) {
		t.Errorf("effective ExecStart %q, want %q\n%s", got.ExecStart, want, cat)
	}
	if got.WrappedBy != dir+DropInName || got.User != "root" || len(got.Files) != 3 {
		t.Errorf("parsed %+v: want wrapped by %s, user root, 3 files", got, dir+DropInName)
	}
	for _, c := range got.ExecStart {
		if !isWrapped(c) {
			t.Errorf("%q is not seen as wrapped", c)
		}
	}
}

func TestParseDropInRefuses(t *testing.T) {
	good, err := DropIn("chronyd.service", []string{"/usr/sbin/chronyd"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"empty":                "",
		"no final newline":     strings.TrimSuffix(good, "\n"),
		"extra blank line":     good + "\n",
		"extra line":           good + "Restart=always\n",
		"other unit comment":   strings.Replace(good, "runs chronyd.service", "runs chronyd", 1),
		"bad unit in comment":  strings.Replace(good, "runs chronyd.service", "runs $(x).service", 1),
		"other comment":        strings.Replace(good, "# Generated by", "# Made by", 1),
		"no After":             strings.Replace(good, "After=kubens.service\n", "", 1),
		"no reset":             strings.Replace(good, "ExecStart=\n", "", 1),
		"not kubensenter":      strings.Replace(good, Kubensenter, "/usr/bin/env", 1),
		"kubensenter alone":    strings.Replace(good, " /usr/sbin/chronyd", "", 1),
		"no command":           strings.Replace(good, "ExecStart=/usr/bin/kubensenter /usr/sbin/chronyd\n", "", 1),
		"invalid command":      strings.Replace(good, "/usr/sbin/chronyd", "/usr/sbin/chronyd 'open", 1),
		"@ prefix":             strings.Replace(good, "ExecStart=/usr", "ExecStart=@/usr", 1),
		"double wrap":          strings.Replace(good, "/usr/sbin/chronyd", Kubensenter+" /usr/sbin/chronyd", 1),
		"prefix after wrapper": strings.Replace(good, "/usr/sbin/chronyd", "-/usr/sbin/chronyd", 1),
		"CRLF":                 strings.ReplaceAll(good, "\n", "\r\n"),
		"two spaces":           strings.Replace(good, Kubensenter+" ", Kubensenter+"  ", 1),
		"hand-made":            "[Unit]\nAfter=kubens.service\n[Service]\nExecStart=\nExecStart=/usr/bin/kubensenter /usr/sbin/chronyd\n",
	}
	for name, text := range tests {
		if got, err := ParseDropIn(text); !errors.Is(err, ErrNotDropIn) || got != nil {
			t.Errorf("%s: ParseDropIn = %q, %v; want ErrNotDropIn", name, got, err)
		}
	}
}

// FuzzDropInRoundTrip: for any unit and command, DropIn either refuses
// (exactly when a validator does) or writes a drop-in that ParseDropIn
// reads back to the command and that systemd's rules read as the wrapped
// command; nothing panics, whatever the text.
func FuzzDropInRoundTrip(f *testing.F) {
	for _, seed := range []struct{ unit, cmd string }{
		{"chronyd.service", "/usr/sbin/chronyd $OPTIONS"},
		{"a@.service", "-/bin/a --id=%i"},
		{"b.service", `:!!"/opt/my tool" 'x y' \; "a;b"`},
		{"c.service", "@/bin/c argv0"},
		{"d.service", "/bin/a ; /bin/b"},
		{"e.service", `/bin/e \`},
		{"f.service", `/bin/f "open`},
		{"g.service", "  plain-name  "},
		{"h.service", "/usr/bin/kubensenter /bin/h"},
		{"i.service", "--/bin/i"},
		{"j.service", "/bin/j\n/bin/k"},
		{"k service", "/bin/k"},
		{"l.service", "%h/bin/l \\\\"},
		{"m.service", "- /bin/m"},
		{"n.service", "/bin/$n"},
	} {
		f.Add(seed.unit, seed.cmd)
	}
	f.Fuzz(func(t *testing.T, unit, cmd string) {
		// Whatever the text, reading it must not panic.
		_, _ = ParseDropIn(cmd)
		_, _ = ParseSystemctlCat(cmd)
		text, err := DropIn(unit, []string{cmd})
		unitErr, cmdErr := ValidateUnitName(unit), ValidateCommand(cmd)
		if unitErr != nil || cmdErr != nil {
			if err == nil {
				t.Fatalf("DropIn(%q, %q) accepted what the validators refuse (%v, %v)", unit, cmd, unitErr, cmdErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("DropIn(%q, %q): %v", unit, cmd, err)
		}
		got, err := ParseDropIn(text)
		if want := []string{strings.Trim(cmd, blanks)}; err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseDropIn(DropIn(%q, %q)) = %q, %v; want %q", unit, cmd, got, err, want)
		}
		checkCat(t, unit, text, []string{cmd})
	})
}
