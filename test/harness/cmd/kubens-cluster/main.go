// Command kubens-cluster runs the harness's local cluster for people: a real
// control plane and real nodes (see package harness), in the background.
//
//	kubens-cluster up       start it (daemonised), print `export KUBECONFIG=...`
//	kubens-cluster status   is it running, its nodes and pools
//	kubens-cluster down     stop it and remove everything it created
//
// `make cluster-up`, `make cluster-down` and `make demo` run it. It needs root.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/harness/node"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// DefaultDir holds the daemon's pidfile, log, kubeconfig and ready marker.
const DefaultDir = "/tmp/oc-kubens-cluster"

const (
	pidFile        = "pid"
	logFile        = "daemon.log"
	kubeconfigFile = "kubeconfig"
	readyFile      = "ready"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := newRootCmd(streams).Execute(); err != nil {
		fmt.Fprintln(streams.ErrOut, "error:", err)
		os.Exit(1)
	}
}

func newRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubens-cluster",
		Short:         "Run the oc-kubens local test cluster (real control plane, real nodes)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var dir string
	root.PersistentFlags().StringVar(&dir, "dir", DefaultDir, "folder for the daemon's pidfile, log and kubeconfig")
	root.AddCommand(newUpCmd(streams, &dir), newDownCmd(streams, &dir), newStatusCmd(streams, &dir))
	return root
}

// UpOptions start the cluster.
type UpOptions struct {
	Dir        string
	Masters    int
	Workers    int
	Mode       string
	NodeKind   string
	Foreground bool
	Timeout    time.Duration

	mode node.Mode
	genericiooptions.IOStreams
}

func newUpCmd(streams genericiooptions.IOStreams, dir *string) *cobra.Command {
	o := &UpOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the cluster in the background and print the KUBECONFIG to use",
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Dir = *dir
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&o.Masters, "masters", 1, "number of master nodes")
	cmd.Flags().IntVar(&o.Workers, "workers", 2, "number of worker nodes")
	cmd.Flags().StringVar(&o.NodeKind, "node-kind", string(harness.RHCOSNodes), "what the nodes are: rhcos (systemd, CRI-O and kubelet as units; the MachineConfig decides encapsulation) or containerd (the harness starts kubelet and containerd in --mode)")
	cmd.Flags().StringVar(&o.Mode, "mode", "", "starting mode of every containerd node: plain (default), encapsulated or split")
	cmd.Flags().BoolVar(&o.Foreground, "foreground", false, "run in the foreground until SIGINT/SIGTERM (the background daemon runs this)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 3*time.Minute, "how long to wait for the cluster to come up")
	return cmd
}

func (o *UpOptions) Complete() error {
	if o.Mode == "" {
		return nil
	}
	var err error
	o.mode, err = node.ParseMode(o.Mode)
	return err
}

func (o *UpOptions) Validate() error {
	if err := testenv.CheckRoot(); err != nil {
		return fmt.Errorf("%w: run it as root (sudo -E make cluster-up)", err)
	}
	switch harness.NodeKind(o.NodeKind) {
	case harness.RHCOSNodes:
		if o.Mode != "" {
			return errors.New("--mode is for containerd nodes: on rhcos nodes the MachineConfig decides (use --node-kind containerd)")
		}
	case harness.ContainerdNodes:
	default:
		return fmt.Errorf("unknown --node-kind %q: use rhcos or containerd", o.NodeKind)
	}
	if o.Masters < 0 || o.Workers < 0 || o.Masters+o.Workers == 0 {
		return errors.New("--masters and --workers must not be negative, and at least one node is needed")
	}
	if missing := testenv.MissingBinaries(); len(missing) > 0 {
		return fmt.Errorf("cluster binaries missing (%s): run `make cluster-bins crio-bins`", strings.Join(missing, ", "))
	}
	return nil
}

func (o *UpOptions) Run(ctx context.Context) error {
	if o.Foreground {
		return o.runDaemon(ctx)
	}
	if pid, alive := daemonPID(o.Dir); alive {
		if _, err := os.Stat(filepath.Join(o.Dir, readyFile)); err == nil {
			fmt.Fprintf(o.ErrOut, "cluster already running (pid %d)\n", pid)
			fmt.Fprintf(o.Out, "export KUBECONFIG=%s\n", filepath.Join(o.Dir, kubeconfigFile))
			return nil
		}
		return fmt.Errorf("a cluster daemon (pid %d) is starting or stuck: see %s, or run `make cluster-down`", pid, filepath.Join(o.Dir, logFile))
	}
	// A previous daemon that died leaves its folder: start clean (the
	// harness itself cleans what that daemon left on the machine).
	if err := os.RemoveAll(o.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "up", "--foreground", "--dir", o.Dir,
		"--masters", strconv.Itoa(o.Masters), "--workers", strconv.Itoa(o.Workers), "--mode", o.Mode, "--node-kind", o.NodeKind,
		"--timeout", o.Timeout.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the daemon outlives this command and make, and no
	// terminal signal reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(o.ErrOut, "starting the cluster (daemon pid %d, log %s)...\n", cmd.Process.Pid, logf.Name())
	deadline := time.After(o.Timeout + 30*time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(o.Dir, readyFile)); err == nil {
			fmt.Fprint(o.ErrOut, string(b))
			fmt.Fprintf(o.Out, "export KUBECONFIG=%s\n", filepath.Join(o.Dir, kubeconfigFile))
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the cluster daemon exited (%v); its log:\n%s", err, tail(logf.Name(), 30))
		case <-deadline:
			return fmt.Errorf("the cluster is not up after %s; see %s, and run `make cluster-down`", o.Timeout, logf.Name())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runDaemon brings the cluster up, reports ready, and holds it until
// SIGTERM/SIGINT, then takes it down and removes its folder.
func (o *UpOptions) runDaemon(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	logf := func(f string, a ...any) { fmt.Fprintf(o.ErrOut, time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
	upCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := harness.Up(upCtx, harness.Options{
		Name: "demo", NoNodePrefix: true, Masters: o.Masters, Workers: o.Workers, Kind: harness.NodeKind(o.NodeKind), Mode: o.mode, Logf: logf,
	})
	if err != nil {
		os.Remove(filepath.Join(o.Dir, pidFile))
		return err
	}
	defer func() {
		logf("stopping the cluster")
		if err := c.Down(context.Background()); err != nil {
			logf("down: %v", err)
		}
		for _, l := range c.Leftovers() {
			logf("left behind: %s", l)
		}
		// The log goes with the rest: a clean stop leaves nothing.
		os.RemoveAll(o.Dir)
	}()
	kc, err := os.ReadFile(c.KubeconfigPath())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, kubeconfigFile), kc, 0o600); err != nil {
		return err
	}
	addons, err := startAddons(ctx, c, logf)
	if err != nil {
		return err
	}
	defer addons()

	var b strings.Builder
	fmt.Fprintf(&b, "cluster up in %s: ", c.StartDuration.Round(time.Millisecond))
	for i, n := range c.Nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s, %s)", n.Name, n.Role, n.Mode())
	}
	b.WriteString("\nkubectl: " + harness.Kubectl() + "\n")
	logf("%s", b.String())
	if err := os.WriteFile(filepath.Join(o.Dir, readyFile), []byte(b.String()), 0o600); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func newDownCmd(streams genericiooptions.IOStreams, dir *string) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster and remove everything it created",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid, alive := daemonPID(*dir)
			if !alive {
				// Nothing runs; a daemon that crashed is cleaned up here too.
				if err := testenv.CleanStale(); err != nil {
					return err
				}
				if err := os.RemoveAll(*dir); err != nil {
					return err
				}
				fmt.Fprintln(streams.ErrOut, "no cluster running")
				return nil
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "stopping the cluster (daemon pid %d)...\n", pid)
			deadline := time.Now().Add(timeout)
			for testenv.ProcessAlive(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the daemon (pid %d) still runs after %s; see %s", pid, timeout, filepath.Join(*dir, logFile))
				}
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintln(streams.ErrOut, "cluster stopped")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the daemon to stop")
	return cmd
}

func newStatusCmd(streams genericiooptions.IOStreams, dir *string) *cobra.Command {
	var probe bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the cluster runs, and list its nodes",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid, alive := daemonPID(*dir)
			if !alive {
				fmt.Fprintln(streams.Out, "not running (start it with `make cluster-up`)")
				return nil
			}
			kcPath := filepath.Join(*dir, kubeconfigFile)
			if _, err := os.Stat(filepath.Join(*dir, readyFile)); err != nil {
				fmt.Fprintf(streams.Out, "starting (daemon pid %d, log %s)\n", pid, filepath.Join(*dir, logFile))
				return nil
			}
			fmt.Fprintf(streams.Out, "running (daemon pid %d)\nexport KUBECONFIG=%s\n", pid, kcPath)
			cfg, err := clientcmd.BuildConfigFromFlags("", kcPath)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("listing nodes: %w", err)
			}
			for _, n := range nodes.Items {
				ready := "Unknown"
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady {
						ready = string(c.Status)
					}
				}
				var roles []string
				for k := range n.Labels {
					if r, ok := strings.CutPrefix(k, node.RoleLabelPrefix); ok {
						roles = append(roles, r)
					}
				}
				mode := ""
				if probe {
					mode = " mode=" + probeMode(ctx, client, n.Name)
				}
				fmt.Fprintf(streams.Out, "node %s roles=%s ready=%s%s\n", n.Name, strings.Join(roles, ","), ready, mode)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&probe, "probe", false, "run a namespace probe pod on each node and show its mode (plain, encapsulated, split)")
	return cmd
}

// probeMode asks a debug pod on the node which mode it is in.
func probeMode(ctx context.Context, client kubernetes.Interface, nodeName string) string {
	r, err := harness.ProbeNamespaces(ctx, client, nodeName)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return string(r.Mode())
}

// daemonPID reads the pidfile and says whether that process still runs.
func daemonPID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, testenv.ProcessAlive(pid) && isKubensCluster(pid)
}

// isKubensCluster guards against a reused PID: the pidfile's process must
// be this program.
func isKubensCluster(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "kubens-cluster")
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
