package node

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CgroupMounts lists the mount points of every cgroup hierarchy on the host
// (v1 controllers, named hierarchies and, in hybrid mode, the unified one).
func CgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") && len(fields) > 4 {
				out = append(out, fields[4])
				break
			}
		}
	}
	sort.Strings(out)
	return out, sc.Err()
}

// CreateCgroup creates the cgroup path (e.g. "/oc-kubens/c1/worker-0") in every
// hierarchy, because the kubelet refuses a cgroupRoot that is missing in any
// of them. In the cpuset hierarchy each new level gets its parent's cpus and
// mems, since an empty cpuset cannot hold a process.
func CreateCgroup(path string) error {
	mounts, err := CgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := m
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("creating cgroup %s: %w", dir, err)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					continue // not the cpuset hierarchy
				}
				cur, _ := os.ReadFile(filepath.Join(dir, f))
				if strings.TrimSpace(string(cur)) == "" {
					if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
						return fmt.Errorf("setting %s/%s: %w", dir, f, err)
					}
				}
			}
		}
	}
	return nil
}

// RemoveCgroup removes the cgroup path and everything below it in every
// hierarchy, deepest first. With kill, processes still in those cgroups are
// SIGKILLed first (stale-state cleanup); without it, it retries until timeout
// while the processes of a node just stopped finish exiting.
func RemoveCgroup(path string, kill bool, timeout time.Duration) error {
	mounts, err := CgroupMounts()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, m := range mounts {
			root := filepath.Join(m, path)
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			// Deepest first: a cgroup with children cannot be removed.
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			for _, d := range dirs {
				if kill {
					killCgroupProcs(d)
				}
				if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					left = append(left, fmt.Sprintf("%s: %v", d, err))
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups left: %s", strings.Join(left, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func killCgroupProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// CgroupsUnder lists the cgroup folders named path that exist in any
// hierarchy (empty when nothing is left).
func CgroupsUnder(path string) []string {
	mounts, _ := CgroupMounts()
	var out []string
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, path)); err == nil {
			out = append(out, filepath.Join(m, path))
		}
	}
	return out
}
