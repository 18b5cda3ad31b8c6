package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// sysctlsFile is where testenv.State.SaveSysctls keeps the machine's
// original values for all runs (testenv's unexported sysctlsFile).
const sysctlsFile = "sysctls.json"

// savedSysctls replaces the values read at Up by the originals testenv saved
// before any run changed them (another cluster may be running already).
func (c *Cluster) savedSysctls() error {
	b, err := os.ReadFile(filepath.Join(testenv.StateRoot(), sysctlsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	orig := map[string]string{}
	if err := json.Unmarshal(b, &orig); err != nil {
		return err
	}
	for k, v := range orig {
		if _, ok := c.fp.Sysctls[k]; ok {
			c.fp.Sysctls[k] = v
		}
	}
	return nil
}

// Leftovers lists what of this cluster is still on the machine: processes
// (recorded ones, any with the run folder on its command line or in the
// cluster's cgroups), mounts, cgroups, /etc/hosts lines, the run folder, and
// (when no other cluster runs) sysctls that differ from the originals. After
// a clean Down it is empty; tests assert that.
func (c *Cluster) Leftovers() []string {
	c.pidsMu.Lock()
	fp := c.fp
	fp.PIDs = append([]procID(nil), c.fp.PIDs...)
	c.pidsMu.Unlock()
	return fp.leftovers()
}

func (fp footprint) leftovers() []string {
	var left []string
	for _, p := range fp.PIDs {
		if st, err := node.StartTime(p.PID); err == nil && st == p.Start && testenv.ProcessAlive(p.PID) {
			left = append(left, fmt.Sprintf("process %d (%s) still runs", p.PID, comm(p.PID)))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !testenv.ProcessAlive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if bytes.Contains(cmdline, []byte(fp.Dir)) || bytes.Contains(cg, []byte(fp.Cgroup+"/")) {
			left = append(left, fmt.Sprintf("process %d (%s) of the cluster still runs", pid, comm(pid)))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, fp.Dir) || strings.Contains(l, fp.Cgroup) {
				left = append(left, "mount: "+l)
			}
		}
	}
	for _, cg := range node.CgroupsUnder(fp.Cgroup) {
		left = append(left, "cgroup "+cg)
	}
	if hosts, err := os.ReadFile("/etc/hosts"); err == nil {
		for _, l := range strings.Split(string(hosts), "\n") {
			f := strings.Fields(l)
			if strings.Contains(l, fp.ID) || (len(f) > 1 && contains(fp.HostNames, f[1])) {
				left = append(left, "/etc/hosts line: "+l)
			}
		}
	}
	if fp.HostCgroups != nil {
		// A systemd node must leave the host's cgroup tmpfs, its
		// hierarchies and their top-level groups exactly as they were.
		now, err := node.HostCgroupSnapshot()
		if err != nil {
			left = append(left, err.Error())
		}
		for _, d := range node.DiffSnapshots(fp.HostCgroups, now) {
			left = append(left, "host cgroup tree changed: "+d)
		}
	}
	if _, err := os.Stat(fp.Dir); err == nil {
		left = append(left, "folder "+fp.Dir)
	}
	if live, err := testenv.LiveRuns(); err == nil && len(live) == 0 && fp.Sysctls != nil {
		now, err := readSysctls()
		if err != nil {
			left = append(left, err.Error())
		}
		for k, want := range fp.Sysctls {
			if now[k] != want {
				left = append(left, fmt.Sprintf("sysctl %s=%s, was %s", k, now[k], want))
			}
		}
	}
	return left
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
