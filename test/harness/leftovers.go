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
		if _, ok := c.sysctls[k]; ok {
			c.sysctls[k] = v
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
	var left []string
	c.pidsMu.Lock()
	pids := append([]procID(nil), c.pids...)
	c.pidsMu.Unlock()
	for _, p := range pids {
		if st, err := node.StartTime(p.pid); err == nil && st == p.start && testenv.ProcessAlive(p.pid) {
			left = append(left, fmt.Sprintf("process %d (%s) still runs", p.pid, comm(p.pid)))
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
		if bytes.Contains(cmdline, []byte(c.dir)) || bytes.Contains(cg, []byte(c.cgroup+"/")) {
			left = append(left, fmt.Sprintf("process %d (%s) of the cluster still runs", pid, comm(pid)))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, c.dir) || strings.Contains(l, c.cgroup) {
				left = append(left, "mount: "+l)
			}
		}
	}
	for _, cg := range node.CgroupsUnder(c.cgroup) {
		left = append(left, "cgroup "+cg)
	}
	if hosts, err := os.ReadFile("/etc/hosts"); err == nil {
		for _, l := range strings.Split(string(hosts), "\n") {
			f := strings.Fields(l)
			if strings.Contains(l, c.id) || (len(f) > 1 && contains(c.hostNames, f[1])) {
				left = append(left, "/etc/hosts line: "+l)
			}
		}
	}
	if _, err := os.Stat(c.dir); err == nil {
		left = append(left, "folder "+c.dir)
	}
	if live, err := testenv.LiveRuns(); err == nil && len(live) == 0 && c.sysctls != nil {
		now, err := readSysctls()
		if err != nil {
			left = append(left, err.Error())
		}
		for k, want := range c.sysctls {
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
