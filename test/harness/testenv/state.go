package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// State records everything one harness run changed on the machine, so that
// whatever a crashed run left behind (processes, mounts, cgroups, /etc/hosts
// lines, sysctls, files) is undone by the next run, and so that a clean
// teardown can check it left nothing.
//
// Each run owns a folder under the state root holding state.json and
// owner.lock. The owner holds an flock on owner.lock for its whole life; the
// kernel drops it when the owner dies, however it dies. That, not the owner's
// PID (which can be reused), is how a stale run is told from a live one, so
// several runs (two test packages in parallel, a demo cluster next to a test)
// never touch each other's state.
type State struct {
	root      string
	dir       string
	hostsFile string
	lock      *os.File

	mu   sync.Mutex
	data stateData
}

type stateData struct {
	Owner     int       `json:"owner"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Processes []Process `json:"processes,omitempty"`
	// Mounts are unmounted (detached) in reverse order of registration.
	Mounts []string `json:"mounts,omitempty"`
	// Cgroups are folders removed bottom-up once the processes are gone.
	Cgroups []string `json:"cgroups,omitempty"`
	// HostsNames are names this run added to /etc/hosts (lines tagged with the run's marker).
	HostsNames []string `json:"hostsNames,omitempty"`
	// Paths are files or folders outside the run folder to remove.
	Paths []string `json:"paths,omitempty"`
}

// Process is one process a run started. Group means it leads its own process
// group and the whole group goes with it.
type Process struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Group bool   `json:"group"`
	// StartTicks is field 22 of /proc/PID/stat, so a reused PID is never killed.
	StartTicks uint64 `json:"startTicks"`
}

const (
	// DefaultStateRoot holds one folder per harness run.
	DefaultStateRoot = "/tmp/oc-kubens-harness"
	// EnvStateRoot overrides DefaultStateRoot.
	EnvStateRoot = "KUBENS_HARNESS_STATE_ROOT"

	stateFile    = "state.json"
	ownerLock    = "owner.lock"
	rootLock     = ".lock"
	sysctlsFile  = "sysctls.json"
	hostsMarker  = "# oc-kubens-harness "
	defaultHosts = "/etc/hosts"
)

// StateRoot is $KUBENS_HARNESS_STATE_ROOT or DefaultStateRoot.
func StateRoot() string {
	if r := os.Getenv(EnvStateRoot); r != "" {
		return r
	}
	return DefaultStateRoot
}

// NewState cleans up after dead runs (see CleanStale) and creates the state
// of a new run owned by this process. name is a short word for humans
// ("cluster", "cp"); the folder gets a unique suffix. Close it when done.
func NewState(name string) (*State, error) {
	root := StateRoot()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(root, rootLock))
	if err != nil {
		return nil, err
	}
	defer unlock()

	cleanErr := cleanStaleLocked(root, defaultHosts)

	dir, err := os.MkdirTemp(root, name+"-")
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ownerLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	s := &State{root: root, dir: dir, hostsFile: defaultHosts, lock: lock,
		data: stateData{Owner: os.Getpid(), Name: name, Created: time.Now().UTC()}}
	if err := s.saveLocked(); err != nil {
		s.lock.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	if cleanErr != nil {
		// Leftovers of a dead run that could not be removed should not stop
		// this run, but must not go unnoticed either.
		fmt.Fprintf(os.Stderr, "oc-kubens harness: cleaning stale runs: %v\n", cleanErr)
	}
	return s, nil
}

// Dir is the run's own folder (removed by Close).
func (s *State) Dir() string { return s.dir }

// ID is the run folder's base name, unique among live runs.
func (s *State) ID() string { return filepath.Base(s.dir) }

// AddProcess records a started process. group: pid leads its own process
// group (Setpgid) and the whole group is killed with it.
func (s *State) AddProcess(name string, pid int, group bool) error {
	start, err := processStartTicks(pid)
	if err != nil {
		return fmt.Errorf("recording %s (pid %d): %w", name, pid, err)
	}
	return s.update(func(d *stateData) {
		d.Processes = append(d.Processes, Process{Name: name, PID: pid, Group: group, StartTicks: start})
	})
}

// RemoveProcess forgets a process once it has been stopped and reaped.
func (s *State) RemoveProcess(pid int) error {
	return s.update(func(d *stateData) {
		d.Processes = slices.DeleteFunc(d.Processes, func(p Process) bool { return p.PID == pid })
	})
}

// AddMount records a mount point in the machine's mount namespace. Record it
// before mounting, so a crash between the two still gets it cleaned.
func (s *State) AddMount(path string) error {
	return s.update(func(d *stateData) { d.Mounts = append(d.Mounts, path) })
}

// RemoveMount forgets a mount point once it is unmounted.
func (s *State) RemoveMount(path string) error {
	return s.update(func(d *stateData) { d.Mounts = slices.DeleteFunc(d.Mounts, func(m string) bool { return m == path }) })
}

// AddCgroup records a cgroup folder (in every hierarchy it is given for) to
// remove bottom-up after the processes are gone.
func (s *State) AddCgroup(path string) error {
	return s.update(func(d *stateData) { d.Cgroups = append(d.Cgroups, path) })
}

// AddPath records a file or folder outside the run folder to remove.
func (s *State) AddPath(path string) error {
	return s.update(func(d *stateData) { d.Paths = append(d.Paths, path) })
}

// AddHost adds "ip name" to /etc/hosts, tagged with this run's marker, and
// records it. Several runs edit the file; a lock under the state root
// serialises them, and the file is rewritten in place because it is often a
// bind mount.
func (s *State) AddHost(name, ip string) error {
	if err := s.update(func(d *stateData) { d.HostsNames = append(d.HostsNames, name) }); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(s.root, rootLock+".hosts"))
	if err != nil {
		return err
	}
	defer unlock()
	f, err := os.OpenFile(s.hostsFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s %s %s%s\n", ip, name, hostsMarker, s.ID()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RemoveHost removes the /etc/hosts line this run added for name.
func (s *State) RemoveHost(name string) error {
	if err := removeHostsLines(s.root, s.hostsFile, s.ID(), []string{name}); err != nil {
		return err
	}
	return s.update(func(d *stateData) {
		d.HostsNames = slices.DeleteFunc(d.HostsNames, func(n string) bool { return n == name })
	})
}

// SaveSysctls remembers the machine's original value of each sysctl (dotted
// name, e.g. "vm.overcommit_memory") before something (the kubelet) changes
// it. The originals are kept once for all runs and restored when the last
// run goes away, so parallel runs cannot save each other's changed values.
func (s *State) SaveSysctls(names ...string) error {
	unlock, err := lockFile(filepath.Join(s.root, rootLock))
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(s.root, sysctlsFile)
	orig := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &orig); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, n := range names {
		if _, ok := orig[n]; ok {
			continue
		}
		v, err := os.ReadFile(sysctlPath(n))
		if err != nil {
			return err
		}
		orig[n] = strings.TrimSpace(string(v))
	}
	return writeJSON(path, orig)
}

// Close undoes everything still recorded (killing leftover processes), then
// removes the run folder and releases the run. Components should stop their
// processes gracefully and unregister them first; Close is the safety net.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := undo(s.root, s.hostsFile, s.ID(), s.data)
	unlock, lerr := lockFile(filepath.Join(s.root, rootLock))
	if lerr == nil {
		err = errors.Join(err, restoreSysctlsIfLast(s.root, s.dir))
		err = errors.Join(err, os.RemoveAll(s.dir))
		unlock()
	} else {
		err = errors.Join(err, lerr, os.RemoveAll(s.dir))
	}
	s.lock.Close()
	s.lock = nil
	return err
}

// CleanStale undoes and removes every run under the state root whose owner
// is dead. Live runs are left alone. NewState calls it.
func CleanStale() error {
	root := StateRoot()
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := lockFile(filepath.Join(root, rootLock))
	if err != nil {
		return err
	}
	defer unlock()
	return cleanStaleLocked(root, defaultHosts)
}

// LiveRuns lists the run folders whose owner is alive (this process's own included).
func LiveRuns() ([]string, error) {
	root := StateRoot()
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var live []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if alive, _ := ownerAlive(dir); alive {
			live = append(live, dir)
		}
	}
	return live, nil
}

func (s *State) update(f func(*stateData)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return errors.New("harness state already closed")
	}
	f(&s.data)
	return s.saveLocked()
}

func (s *State) saveLocked() error { return writeJSON(filepath.Join(s.dir, stateFile), s.data) }

// cleanStaleLocked runs with the root lock held.
func cleanStaleLocked(root, hostsFile string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		alive, lock := ownerAlive(dir)
		if alive {
			continue
		}
		var d stateData
		if b, err := os.ReadFile(filepath.Join(dir, stateFile)); err == nil {
			if err := json.Unmarshal(b, &d); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			}
		}
		if err := undo(root, hostsFile, e.Name(), d); err != nil {
			errs = append(errs, fmt.Errorf("stale run %s (owner pid %d): %w", dir, d.Owner, err))
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
		if lock != nil {
			lock.Close()
		}
	}
	errs = append(errs, restoreSysctlsIfLast(root, ""))
	return errors.Join(errs...)
}

// ownerAlive tries the run's owner lock. If it can be taken the owner is
// dead; the returned file then holds the lock until the caller closes it.
func ownerAlive(dir string) (bool, *os.File) {
	f, err := os.OpenFile(filepath.Join(dir, ownerLock), os.O_RDWR, 0)
	if err != nil {
		// No lock file: a run that died while being created. Runs are
		// created with the root lock held, as cleaning is, so this is never
		// a run that is still being set up.
		return false, nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return true, nil
	}
	return false, f
}

// undo reverses a run's recorded changes: processes, mounts, cgroups, hosts
// lines, extra paths. It keeps going on errors and returns them all.
func undo(root, hostsFile, id string, d stateData) error {
	var errs []error
	errs = append(errs, killProcesses(d.Processes))
	for i := len(d.Mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(d.Mounts[i], syscall.MNT_DETACH); err != nil &&
			!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", d.Mounts[i], err))
		}
	}
	for _, cg := range d.Cgroups {
		errs = append(errs, removeCgroup(cg))
	}
	if len(d.HostsNames) > 0 {
		errs = append(errs, removeHostsLines(root, hostsFile, id, nil))
	}
	for _, p := range d.Paths {
		errs = append(errs, os.RemoveAll(p))
	}
	return errors.Join(errs...)
}

// killProcesses SIGKILLs the recorded processes that are still the same
// processes (same start time) and waits until they are gone.
func killProcesses(procs []Process) error {
	var targets []int
	for _, p := range procs {
		if p.Group {
			targets = append(targets, groupMembers(p)...)
			if start, err := processStartTicks(p.PID); err == nil && start == p.StartTicks {
				syscall.Kill(-p.PID, syscall.SIGKILL)
			}
		}
		if start, err := processStartTicks(p.PID); err == nil && start == p.StartTicks {
			targets = append(targets, p.PID)
		}
	}
	for _, pid := range targets {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range targets {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d still alive 15s after SIGKILL", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// groupMembers lists the live processes in p's process group that started
// no earlier than p (so a reused group id of an unrelated older group is
// not touched), including when the leader itself is gone.
func groupMembers(p Process) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != p.PID || st.start < p.StartTicks || st.state == "Z" {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

type procStat struct {
	state string
	pgrp  int
	start uint64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	pgrp, _ := strconv.Atoi(f[2])
	start, err := strconv.ParseUint(f[19], 10, 64)
	return procStat{state: f[0], pgrp: pgrp, start: start}, err
}

func processStartTicks(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

// processAlive: a zombie counts as dead (its parent may never reap it once
// the owner died).
func processAlive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state != "Z" && st.state != "X"
}

// ProcessAlive reports whether pid is a running (non-zombie) process.
func ProcessAlive(pid int) bool { return processAlive(pid) }

// removeCgroup removes a cgroup folder and the folders below it, deepest
// first (cgroupfs folders go with rmdir; their files cannot be unlinked).
func removeCgroup(path string) error {
	var dirs []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		var err error
		// A cgroup whose last task just died can report EBUSY for a moment.
		for range 50 {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rmdir %s: %w", d, err)
		}
	}
	return nil
}

// removeHostsLines drops the lines tagged with run id (only those for names,
// when names is not empty) from the hosts file, rewriting it in place.
func removeHostsLines(root, hostsFile, id string, names []string) error {
	unlock, err := lockFile(filepath.Join(root, rootLock+".hosts"))
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(hostsFile)
	if err != nil {
		return err
	}
	var kept []string
	changed := false
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.HasSuffix(strings.TrimRight(line, "\n"), hostsMarker+id) {
			f := strings.Fields(line)
			if len(names) == 0 || (len(f) > 1 && slices.Contains(names, f[1])) {
				changed = true
				continue
			}
		}
		kept = append(kept, line)
	}
	if !changed {
		return nil
	}
	return os.WriteFile(hostsFile, []byte(strings.Join(kept, "")), 0o644)
}

// restoreSysctlsIfLast writes the saved original sysctls back when no run
// other than self is alive. Runs with the root lock held.
func restoreSysctlsIfLast(root, self string) error {
	path := filepath.Join(root, sysctlsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || dir == self {
			continue
		}
		alive, lock := ownerAlive(dir)
		if lock != nil {
			lock.Close()
		}
		if alive {
			return nil
		}
	}
	orig := map[string]string{}
	if err := json.Unmarshal(b, &orig); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	for n, v := range orig {
		if err := os.WriteFile(sysctlPath(n), []byte(v+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s=%s: %w", n, v, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, os.Remove(path))
	}
	return errors.Join(errs...)
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// lockFile takes an exclusive flock on path (created if needed), blocking.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// writeJSON replaces path atomically, so a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
