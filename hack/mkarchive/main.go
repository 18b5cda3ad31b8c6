// Command mkarchive writes a release archive (.tar.gz or .zip) whose bytes
// depend only on the input files: fixed modification time, owner root,
// entries in the order given, no host user or group names. `make dist` uses
// it so that two builds of the same commit give the same sha256 sums, which
// is what lets the krew manifest be checked against a rebuild.
//
// Usage:
//
//	mkarchive -o out.tar.gz -mtime 1700000000 path[=name-in-archive]...
//
// A file keeps the executable bit it has on disk (mode 0755 or 0644).
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type entry struct {
	src, name string
	mode      int64
	size      int64
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkarchive:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkarchive", flag.ContinueOnError)
	out := fs.String("o", "", "archive to write; the format follows the suffix: .tar.gz or .zip")
	mtime := fs.Int64("mtime", 0, "modification time of every entry, in seconds since the epoch (use the commit time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: mkarchive -o OUT.tar.gz|OUT.zip -mtime SECONDS FILE[=NAME] [FILE[=NAME]]")
	}
	var entries []entry
	for _, a := range fs.Args() {
		src, name, ok := strings.Cut(a, "=")
		if !ok {
			name = filepath.Base(src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", src)
		}
		mode := int64(0o644)
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		entries = append(entries, entry{src: src, name: name, mode: mode, size: st.Size()})
	}
	t := time.Unix(*mtime, 0).UTC()

	// Write next to the target and rename, so an interrupted run never
	// leaves a truncated archive that looks finished.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".mkarchive-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	switch {
	case strings.HasSuffix(*out, ".tar.gz"):
		err = writeTarGz(tmp, entries, t)
	case strings.HasSuffix(*out, ".zip"):
		err = writeZip(tmp, entries, t)
	default:
		err = fmt.Errorf("%s: unknown archive suffix (want .tar.gz or .zip)", *out)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), *out)
}

func writeTarGz(w io.Writer, entries []entry, t time.Time) error {
	// gzip.Writer leaves the header's name and time empty by default, so the
	// compressed stream is as reproducible as the tar inside it.
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     e.mode,
			Size:     e.size,
			ModTime:  t,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, e.src); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, entries []entry, t time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: t}
		hdr.SetMode(os.FileMode(e.mode))
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if err := copyFile(fw, e.src); err != nil {
			return err
		}
	}
	return zw.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
