// Package krew tests the release as krew users get it: the .krew.yaml template
// rendered the way krew-release-bot renders it, validated and installed by
// krew's own tools (sigs.k8s.io/krew v0.4.4) from `make dist`'s archives, and
// the installed plugin run through a real kubectl. `make krew-test` runs it.
package krew

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"
)

// ReleaseURLPrefix is where .krew.yaml says the archives are published; the
// test swaps it for a loopback server.
const ReleaseURLPrefix = "https://github.com/oc-kubens/oc-kubens/releases/download/"

// Manifest is the part of krew's Plugin object these tests read.
type Manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version   string     `json:"version"`
		Homepage  string     `json:"homepage"`
		Caveats   string     `json:"caveats"`
		Platforms []Platform `json:"platforms"`
	} `json:"spec"`
}

// Platform is one spec.platforms[] entry.
type Platform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bin    string `json:"bin"`
	Files  []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files"`
}

// OSArch is "os/arch" from the selector.
func (p Platform) OSArch() string {
	return p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
}

// Render renders a krew-release-bot template the way the bot does: the data
// has TagName (and Version, the tag without its leading v); addURIAndSha
// renders its URL argument as a template of its own, downloads it, and writes
// "uri: URL" plus "sha256: SUM" on the next line indented by four spaces
// (the bot's fixed indentation, which is why the template puts the call at
// the platform's indentation). urlPrefix replaces ReleaseURLPrefix when not
// empty, so the archives can come from a local server.
func Render(tmpl []byte, tag, urlPrefix string, client *http.Client) ([]byte, error) {
	data := struct{ TagName, Version string }{TagName: tag, Version: strings.TrimPrefix(tag, "v")}
	funcs := template.FuncMap{
		"addURIAndSha": func(rawURL, tag string) (string, error) {
			var u bytes.Buffer
			t, err := template.New("url").Parse(rawURL)
			if err != nil {
				return "", err
			}
			if err := t.Execute(&u, struct{ TagName, Version string }{tag, strings.TrimPrefix(tag, "v")}); err != nil {
				return "", err
			}
			uri := u.String()
			if urlPrefix != "" {
				if !strings.HasPrefix(uri, ReleaseURLPrefix) {
					return "", fmt.Errorf("archive URL %q does not start with %q", uri, ReleaseURLPrefix)
				}
				uri = urlPrefix + strings.TrimPrefix(uri, ReleaseURLPrefix)
			}
			sum, err := download(client, uri)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum), nil
		},
	}
	t, err := template.New(".krew.yaml").Funcs(funcs).Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ArchiveNames lists the archive file names a template points at for tag,
// in platform order, without downloading anything.
func ArchiveNames(tmpl []byte, tag string) (map[string]string, error) {
	var names = map[string]string{}
	re := regexp.MustCompile(`addURIAndSha\s+"([^"]+)"`)
	for _, m := range re.FindAllSubmatch(tmpl, -1) {
		u := strings.ReplaceAll(string(m[1]), "{{ .TagName }}", tag)
		if strings.Contains(u, "{{") {
			return nil, fmt.Errorf("unexpected template action left in %q", u)
		}
		name := u[strings.LastIndex(u, "/")+1:]
		names[name] = u
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no addURIAndSha calls found")
	}
	return names, nil
}

// Parse reads a rendered manifest.
func Parse(rendered []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.Unmarshal(rendered, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func download(client *http.Client, uri string) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Get(uri)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", uri, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
