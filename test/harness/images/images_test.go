package images

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/oc-kubens/oc-kubens/internal/ci"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

func TestBuild(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s missing in CI: make node-deps installs busybox-static", DefaultBusybox)
		}
		ci.SkipOrFail(t, "%s missing: run `make node-deps` (installs busybox-static)", DefaultBusybox)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(context.Background(), t.TempDir(), root, "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		tar, ref   string
		wantFiles  []string
		entrypoint string
	}{
		{set.ToolsTar, ToolsImage, []string{"bin/busybox", "bin/sh", "bin/nsenter", "bin/readlink", "bin/pidof", "bin/awk", "bin/grep", "bin/wc", "bin/cat", "tmp/"}, ""},
		{set.PauseTar, PauseImage, []string{"pause"}, "/pause"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.tar), func(t *testing.T) {
			tag, err := name.NewTag(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(tt.tar, &tag)
			if err != nil {
				t.Fatalf("the archive has no image tagged %s: %v", tt.ref, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s, want linux/%s (ctr imports only the local platform)", cf.OS, cf.Architecture, runtime.GOARCH)
			}
			if tt.entrypoint != "" && (len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != tt.entrypoint) {
				t.Errorf("entrypoint %v, want [%s]", cf.Config.Entrypoint, tt.entrypoint)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("layers %d, err %v; want one", len(layers), err)
			}
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			seen := map[string]bool{}
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				seen[h.Name] = true
			}
			for _, f := range tt.wantFiles {
				if !seen[f] {
					t.Errorf("layer lacks %s", f)
				}
			}
		})
	}
}
