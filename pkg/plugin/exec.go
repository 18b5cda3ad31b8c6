package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/remotecommand"
	watchtools "k8s.io/client-go/tools/watch"
	utilexec "k8s.io/client-go/util/exec"
	kexec "k8s.io/kubectl/pkg/cmd/exec"
	"k8s.io/kubectl/pkg/util/interrupt"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// ExecOptions holds the flags and state of `oc kubens exec`.
type ExecOptions struct {
	configFlags *genericclioptions.ConfigFlags

	Node            string
	Command         []string
	Image           string
	ImagePullPolicy string
	Timeout         time.Duration
	Stdin           bool
	TTY             bool
	Keep            bool

	interactive bool
	clients     *clusterClients

	genericiooptions.IOStreams
}

// NewCmdExec returns the exec command.
func NewCmdExec(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ExecOptions{configFlags: configFlags, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "exec NODE [-- COMMAND [ARG...]]",
		Short: "Run a command inside a node's Kubernetes mount namespace",
		Long: `Run COMMAND on NODE inside the mount namespace kubelet and the container
runtime use: the remote equivalent of "sudo kubensenter COMMAND" over SSH,
with no SSH. Once a node is encapsulated, host shells (oc debug with nsenter
-t 1, SSH) no longer see pod mounts; this does.

On a node that is not encapsulated the command runs in the host mount
namespace, and a note on stderr says so, as kubensenter does.

exec makes a temporary namespace with one privileged pod on the node, runs
COMMAND through it, streams its output, and deletes the namespace at the end,
also on Ctrl-C. The exit status is COMMAND's. With no COMMAND on a terminal
it opens an interactive shell.`,
		Example: `  # List the mounts kubelet sees (container mounts included)
  oc kubens exec node-a -- findmnt

  # An interactive shell in the Kubernetes mount namespace
  oc kubens exec node-a

  # Feed a script on stdin
  oc kubens exec node-a -i -- sh < check.sh`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return newUsageError(cmd, errors.New("name the node: exec NODE [-- COMMAND...]"))
			}
			if cmd.ArgsLenAtDash() > 1 || (cmd.ArgsLenAtDash() < 0 && len(args) > 1) {
				return newUsageError(cmd, errors.New("put the command after --, e.g. exec NODE -- findmnt"))
			}
			return nil
		},
		RunE: runCommand(o),
	}
	addDebugPodFlags(cmd, &o.Image, &o.ImagePullPolicy)
	cmd.Flags().DurationVar(&o.Timeout, "timeout", verify.DefaultTimeout, "How long to wait for the pod on the node to start, image pull included.")
	cmd.Flags().BoolVarP(&o.Stdin, "stdin", "i", false, "Pass stdin to the command.")
	cmd.Flags().BoolVarP(&o.TTY, "tty", "t", false, "Allocate a terminal for the command (needs a terminal on stdin).")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "Keep the temporary namespace and pod for debugging (the pod stops by itself after 4h).")
	return cmd
}

// Complete reads NODE and COMMAND; no command means an interactive shell.
func (o *ExecOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	if len(args) > 1 {
		o.Command = args[1:]
	}
	if len(o.Command) == 0 {
		o.interactive = true
		o.Stdin, o.TTY = true, true
		// bash where the node has it, like an SSH login; sh otherwise.
		o.Command = []string{"/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -i; fi; exec /bin/sh -i"}
	}
	if o.TTY {
		o.Stdin = true
	}
	var err error
	o.clients, err = debugClients(o.configFlags)
	return err
}

// Validate checks that a terminal is there when one is needed.
func (o *ExecOptions) Validate() error {
	if o.TTY && !printers.IsTerminal(o.In) {
		if o.interactive {
			return errors.New("no command given and stdin is not a terminal: give a command after --, e.g. exec " + o.Node + " -- findmnt")
		}
		return errors.New("-t needs a terminal on stdin; drop -t (use -i to pass stdin)")
	}
	if o.Timeout < time.Second {
		return fmt.Errorf("--timeout must be at least 1s, got %s", o.Timeout)
	}
	return checkPullPolicy(o.ImagePullPolicy)
}

// Run makes the pod, runs the command in it and cleans up. The command's
// non-zero exit status comes back as an *ExitError with that code; Ctrl-C,
// SIGTERM or SIGHUP before that as the context's error (exit 130).
func (o *ExecOptions) Run(ctx context.Context) error {
	err := o.run(ctx)
	var exitErr *ExitError
	if err != nil && ctx.Err() != nil && !errors.As(err, &exitErr) {
		return ctx.Err()
	}
	return err
}

func (o *ExecOptions) run(ctx context.Context) error {
	c := o.clients
	if _, err := c.kube.CoreV1().Nodes().Get(ctx, o.Node, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("node %q not found; list the nodes with: oc get nodes", o.Node)
		}
		return explainAPIError(err, "get node "+o.Node)
	}
	image, err := resolveImage(ctx, c, o.Image)
	if err != nil {
		return err
	}
	sweepStale(ctx, c, o.ErrOut)

	ns, err := c.kube.CoreV1().Namespaces().Create(ctx, verify.NamespaceFor(verify.NamespaceOptions{
		Prefix: "oc-kubens-exec-", Purpose: "exec",
		Expires: time.Now().Add(o.Timeout + verify.ExecDeadline + time.Minute),
	}), metav1.CreateOptions{})
	if err != nil {
		return explainAPIError(err, "create a temporary namespace")
	}
	defer func() {
		if o.Keep {
			fmt.Fprintf(o.ErrOut, "Keeping namespace %s (--keep)\n", ns.Name)
			return
		}
		if err := verify.DeleteNamespace(c.kube, ns.Name); err != nil {
			fmt.Fprintf(o.ErrOut, "warning: could not delete namespace %s: %v; delete it with: kubectl delete namespace %s\n", ns.Name, err, ns.Name)
		}
	}()

	pod := verify.PodFor(verify.PodName("exec-", o.Node), o.Node, verify.PodOptions{
		Image: image, PullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		Deadline: verify.ExecDeadline, Command: verify.ExecHolderCommand(verify.ExecDeadline),
	})
	pod, err = c.kube.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return explainAPIError(err, "create the exec pod")
	}
	if err := waitRunning(ctx, c, pod, o.Timeout); err != nil {
		return err
	}
	return o.stream(ctx, c, pod)
}

// waitRunning watches the pod until it runs, fails or the timeout passes.
func waitRunning(ctx context.Context, c *clusterClients, pod *corev1.Pod, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := watchtools.NewRetryWatcherWithContext(ctx, pod.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = "metadata.name=" + pod.Name
			return c.kube.CoreV1().Pods(pod.Namespace).Watch(ctx, opts)
		},
	})
	if err != nil {
		return err
	}
	defer w.Stop()
	last := pod
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the pod on node %s did not start within --timeout=%s: %s", pod.Spec.NodeName, timeout, verify.PendingDetail(last))
			}
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("lost the watch on pod %s/%s", pod.Namespace, pod.Name)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			last = p
			switch p.Status.Phase {
			case corev1.PodRunning:
				return nil
			case corev1.PodSucceeded, corev1.PodFailed:
				return fmt.Errorf("the pod on node %s ended before the command ran: %s %s", pod.Spec.NodeName, p.Status.Reason, p.Status.Message)
			}
			if res, done := verify.ClassifyPod(pod.Spec.NodeName, p); done {
				return fmt.Errorf("the pod on node %s cannot start: %s: %s", pod.Spec.NodeName, res.Reason, res.Message)
			}
		}
	}
}

// stream runs the command through pods/exec with kubectl's executor
// (WebSocket, falling back to SPDY) and terminal handling (raw mode that
// is restored also on a signal, resize events, Windows consoles), and maps
// its exit status.
func (o *ExecOptions) stream(ctx context.Context, c *clusterClients, pod *corev1.Pod) error {
	s := kexec.StreamOptions{
		Stdin: o.Stdin, TTY: o.TTY, IOStreams: o.IOStreams,
		// A signal only restores the terminal here: the root command's
		// context sees it too, and Run cleans up and exits 130.
		InterruptParent: interrupt.New(func(os.Signal) {}),
	}
	t := s.SetupTTY()
	var sizes remotecommand.TerminalSizeQueue
	if t.Raw {
		if q := t.MonitorSize(t.GetSize()); q != nil {
			sizes = sizeQueue{q}
		}
		s.ErrOut = nil // a terminal carries both streams
	}
	req := c.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: verify.ProbeContainer,
		Command:   verify.ExecCommand(o.Command),
		Stdin:     s.Stdin,
		Stdout:    true,
		Stderr:    s.ErrOut != nil,
		TTY:       t.Raw,
	}, scheme.ParameterCodec)
	err := t.Safe(func() error {
		return (&kexec.DefaultRemoteExecutor{}).ExecuteWithContext(ctx, req.URL(), c.config, s.In, s.Out, s.ErrOut, t.Raw, sizes)
	})
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return &ExitError{Code: exitErr.ExitStatus()}
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("running the command on node %s: %w (pods/exec needs the API server to reach the node's kubelet)", o.Node, err)
	}
	return nil
}

// sizeQueue hands kubectl's terminal sizes to remotecommand (the same
// struct, declared in both packages).
type sizeQueue struct{ term.TerminalSizeQueue }

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	size := q.TerminalSizeQueue.Next()
	if size == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: size.Width, Height: size.Height}
}
