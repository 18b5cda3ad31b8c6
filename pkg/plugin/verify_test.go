package plugin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	imagev1 "github.com/openshift/api/image/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// Flag mistakes in verify exit 2 ("could not run") with a message that says
// what to do, before any cluster access.
func TestVerifyFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"verify"}, "say which nodes to verify"},
		{[]string{"verify", "n1", "--all-nodes"}, "exactly one of"},
		{[]string{"verify", "--all-nodes", "-l", "a=b"}, "exactly one of"},
		{[]string{"verify", "--all-nodes", "--expect", "maybe"}, "--expect must be"},
		{[]string{"verify", "--all-nodes", "-o", "xml"}, `unsupported output format "xml": allowed formats are json, yaml, kyaml, name, go-template`},
		{[]string{"verify", "--all-nodes", "-o", "go-template"}, "template format specified but no template given"},
		{[]string{"verify", "--all-nodes", "--parallelism", "0"}, "--parallelism must be at least 1"},
		{[]string{"verify", "--all-nodes", "--timeout", "10ms"}, "--timeout must be at least 1s"},
		{[]string{"verify", "--all-nodes", "--image-pull-policy", "Sometimes"}, "--image-pull-policy must be"},
		{[]string{"verify", "-l", "a in (", "--image", "x"}, "--selector"},
		{[]string{"verify", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			// An unreachable server: validation must fail before any request.
			code := Execute(append([]string{"oc-kubens"}, append(tt.args, "--server", "https://127.0.0.1:1")...), streams)
			if code != verifyExitCannotRun || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}
}

// TestExecArgs: exec (and wrap) refuse bad arguments with exit 1.
func TestExecArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"exec"}, "name the node"},
		{[]string{"exec", "n1", "ls"}, "put the command after --"},
		{[]string{"exec", "n1"}, "stdin is not a terminal"},
		{[]string{"exec", "n1", "-t", "--", "ls"}, "-t needs a terminal"},
		{[]string{"exec", "n1", "--timeout", "0s", "--", "ls"}, "--timeout must be at least 1s"},
		// README: errors exit 1 unless a command documents other codes;
		// exec's own codes are the remote command's.
		{[]string{"exec", "n1", "--image-pull-policy", "Sometimes", "--", "ls"}, "--image-pull-policy must be"},
		{[]string{"wrap", "a.service", "--image-pull-policy", "Sometimes"}, "--image-pull-policy must be"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			code := Execute(append([]string{"oc-kubens"}, append(tt.args, "--server", "https://127.0.0.1:1")...), streams)
			if code != 1 || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}

	// Complete builds the clients (nothing is sent): any server will do.
	flags := genericclioptions.NewConfigFlags(false)
	flags.APIServer = ptr.To("https://127.0.0.1:1")
	o := &ExecOptions{configFlags: flags}
	cmd := NewCmdExec(flags, genericiooptions.IOStreams{})
	if err := o.Complete(cmd, []string{"n1", "cat", "/x"}); err != nil || o.Node != "n1" || len(o.Command) != 2 || o.TTY || o.clients == nil {
		t.Fatalf("complete: %v %+v", err, o)
	}
}

func TestPickImage(t *testing.T) {
	openshift := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	openshift.Resources = []*metav1.APIResourceList{{GroupVersion: "image.openshift.io/v1"}}
	plain := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	stream := func(ref string) func(context.Context) (*imagev1.ImageStream, error) {
		return func(context.Context) (*imagev1.ImageStream, error) {
			if ref == "" {
				return nil, errors.New("imagestreams.image.openshift.io \"tools\" is forbidden")
			}
			return &imagev1.ImageStream{Status: imagev1.ImageStreamStatus{Tags: []imagev1.NamedTagEventList{
				{Tag: "other", Items: []imagev1.TagEvent{{DockerImageReference: "wrong"}}},
				{Tag: "latest", Items: []imagev1.TagEvent{{DockerImageReference: ref}}},
			}}}, nil
		}
	}
	tests := []struct {
		name, flag, want, wantErr string
		disc                      *fakediscovery.FakeDiscovery
		stream                    func(context.Context) (*imagev1.ImageStream, error)
	}{
		{name: "flag wins", flag: "busybox:1.36", disc: plain, want: "busybox:1.36"},
		{name: "openshift tools stream", disc: openshift, stream: stream("quay.io/openshift/tools@sha256:abc"), want: "quay.io/openshift/tools@sha256:abc"},
		{name: "openshift fallback", disc: openshift, stream: stream(""), want: "registry.redhat.io/rhel9/support-tools"},
		{name: "plain kubernetes needs --image", disc: plain, wantErr: "--image is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickImage(context.Background(), tt.disc, tt.stream, tt.flag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
