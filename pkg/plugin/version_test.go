package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestVersion(t *testing.T) {
	out, errOut, code := run(t, "oc-kubens", "version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, field := range []string{"Version:", "Git commit:", "Build date:", "Go version:", "Platform:"} {
		if !strings.Contains(out, field) {
			t.Errorf("text output lacks %q:\n%s", field, out)
		}
	}

	for _, format := range []string{"json", "yaml"} {
		out, errOut, code := run(t, "oc-kubens", "version", "-o", format)
		if code != 0 || errOut != "" {
			t.Fatalf("-o %s: exit %d, stderr %q", format, code, errOut)
		}
		var got map[string]string
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &got)
		} else {
			err = yaml.Unmarshal([]byte(out), &got)
		}
		if err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		for _, k := range []string{"version", "commit", "date", "goVersion", "platform"} {
			if got[k] == "" {
				t.Errorf("-o %s: %q missing in %s", format, k, out)
			}
		}
	}

	out, errOut, code = run(t, "oc-kubens", "version", "-o", "xml")
	checkOneLineError(t, out, errOut, code, `unsupported output format "xml"`)
	out, errOut, code = run(t, "oc-kubens", "version", "extra")
	checkOneLineError(t, out, errOut, code, "takes no arguments")
}
