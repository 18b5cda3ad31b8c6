package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReproducible writes each format twice from the same files, with the
// files' own times changed in between: the archives must be byte-identical,
// carry the given mtime and keep the executable bit.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubectl-kubens")
	lic := filepath.Join(dir, "LICENSE")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho hi\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lic, []byte("Apache License\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const epoch = 1700000000
	for _, ext := range []string{".tar.gz", ".zip"} {
		t.Run(ext, func(t *testing.T) {
			a, b := filepath.Join(dir, "a"+ext), filepath.Join(dir, "b"+ext)
			if err := run([]string{"-o", a, "-mtime", "1700000000", bin, lic + "=LICENSE"}); err != nil {
				t.Fatal(err)
			}
			now := time.Now().Add(time.Hour)
			os.Chtimes(bin, now, now)
			os.Chtimes(lic, now, now)
			if err := run([]string{"-o", b, "-mtime", "1700000000", bin, lic + "=LICENSE"}); err != nil {
				t.Fatal(err)
			}
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			if !bytes.Equal(ab, bb) {
				t.Fatal("two runs over the same files gave different archives")
			}
			got := entries(t, a)
			want := map[string]os.FileMode{"kubectl-kubens": 0o755, "LICENSE": 0o644}
			if len(got) != len(want) {
				t.Fatalf("entries %v, want %v", got, want)
			}
			for name, e := range got {
				if want[name] != e.mode {
					t.Errorf("%s: mode %v, want %v", name, e.mode, want[name])
				}
				if e.mtime.Unix() != epoch {
					t.Errorf("%s: mtime %v, want %d", name, e.mtime, epoch)
				}
			}
		})
	}
}

func TestRejectsUnknownSuffix(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x")
	os.WriteFile(f, []byte("x"), 0o644)
	if err := run([]string{"-o", f + ".rar", f}); err == nil {
		t.Error("want an error for .rar")
	}
}

type entry2 struct {
	mode  os.FileMode
	mtime time.Time
}

func entries(t *testing.T, path string) map[string]entry2 {
	t.Helper()
	out := map[string]entry2{}
	if filepath.Ext(path) == ".zip" {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			out[f.Name] = entry2{f.Mode().Perm(), f.Modified}
		}
		return out
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = entry2{os.FileMode(h.Mode).Perm(), h.ModTime}
	}
	return out
}
