// Package images writes the two container images the test nodes need, as
// docker-archive tarballs, and imports them into a node's containerd:
//
//   - ToolsImage: Debian's static busybox with an applet symlink for every
//     command it provides (sh, readlink, cat, nsenter, pidof, awk, ...), for
//     debug and probe pods;
//   - PauseImage: the harness's pause program (package ./pause), used as the
//     CRI sandbox image.
//
// There is no registry on the test machines: pods use these images with
// imagePullPolicy Never.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	// ToolsImage is the busybox tools image: run it with imagePullPolicy Never.
	ToolsImage = "localhost/oc-kubens/tools:test"
	// PauseImage is the sandbox (pause) image every node's containerd uses.
	PauseImage = "localhost/oc-kubens/pause:test"

	// DefaultBusybox is where Debian's busybox-static puts its binary.
	DefaultBusybox = "/bin/busybox"

	// PausePackage is the import path of the pause program built by BuildPause.
	PausePackage = "github.com/oc-kubens/oc-kubens/test/harness/images/pause"
)

// Set names the files Build wrote.
type Set struct {
	ToolsTar string // docker-archive of ToolsImage
	PauseTar string // docker-archive of PauseImage
	PauseBin string // the static pause binary (also the nodes' init)
}

// Tarballs lists the image archives to import into a node.
func (s *Set) Tarballs() []string { return []string{s.ToolsTar, s.PauseTar} }

// Build compiles the pause program and writes both image archives into dir.
// repoRoot is the module root (the pause program is built from it); busybox
// is the static busybox binary (DefaultBusybox when empty).
func Build(ctx context.Context, dir, repoRoot, busybox string) (*Set, error) {
	if busybox == "" {
		busybox = DefaultBusybox
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Set{
		ToolsTar: filepath.Join(dir, "tools.tar"),
		PauseTar: filepath.Join(dir, "pause.tar"),
		PauseBin: filepath.Join(dir, "kubens-pause"),
	}
	if err := BuildPause(ctx, repoRoot, s.PauseBin); err != nil {
		return nil, err
	}
	if err := WriteTools(s.ToolsTar, busybox); err != nil {
		return nil, err
	}
	if err := WritePause(s.PauseTar, s.PauseBin); err != nil {
		return nil, err
	}
	return s, nil
}

// BuildPause builds the pause program as a static binary at out.
func BuildPause(ctx context.Context, repoRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, PausePackage)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the pause program (%s) in %s: %v\n%s", PausePackage, repoRoot, err, b)
	}
	return nil
}

// WriteTools writes ToolsImage: busybox at /bin/busybox plus one symlink per
// applet in /bin, so `sh`, `nsenter`, `pidof` ... resolve through PATH.
func WriteTools(path, busybox string) error {
	applets, err := listApplets(busybox)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("reading busybox (install Debian's busybox-static: make node-deps): %w", err)
	}
	files := []file{{name: "bin/busybox", mode: 0o755, data: bin}}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		files = append(files, file{name: "bin/" + a, link: "busybox"})
	}
	cfg := v1.Config{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"},
	}
	return writeImage(path, ToolsImage, cfg, files)
}

// WritePause writes PauseImage with the pause binary as /pause.
func WritePause(path, pauseBin string) error {
	bin, err := os.ReadFile(pauseBin)
	if err != nil {
		return err
	}
	cfg := v1.Config{Entrypoint: []string{"/pause"}}
	return writeImage(path, PauseImage, cfg, []file{{name: "pause", mode: 0o755, data: bin}})
}

// listApplets asks busybox which commands it provides.
func listApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w (install Debian's busybox-static: make node-deps)", busybox, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return applets, nil
}

type file struct {
	name string
	mode int64
	data []byte
	link string // symlink target when set
}

// writeImage builds a one-layer linux image for this machine's architecture
// and writes it as a docker archive tagged ref, the format `ctr images
// import` reads.
func writeImage(path, ref string, cfg v1.Config, files []file) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	layerTar, err := tarFiles(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return err
	}
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return fmt.Errorf("writing %s: %w", ref, err)
	}
	return os.Rename(tmp, path)
}

// tarFiles makes the layer: the parent folders, then the files, with a fixed
// timestamp so the same inputs give the same digest.
func tarFiles(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, d := range []string{"bin/", "dev/", "etc/", "proc/", "sys/", "tmp/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, ModTime: mtime}
		if f.link != "" {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.link, 0o777
		} else {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, f.mode, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if f.link == "" {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Import loads image archives into the containerd listening at address, in
// the CRI's "k8s.io" namespace, so the kubelet finds them without a pull.
func Import(ctx context.Context, address string, tarballs ...string) error {
	for _, t := range tarballs {
		cmd := exec.CommandContext(ctx, "ctr", "--address", address, "-n", "k8s.io", "images", "import", t)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ctr images import %s into %s: %v\n%s", t, address, err, b)
		}
	}
	return nil
}
