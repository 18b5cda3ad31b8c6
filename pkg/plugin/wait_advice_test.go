package plugin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// The wait engine states the facts; the advice names the command as the
// user runs it, so a kubectl user is not told to run `oc kubens`.
func TestAdviseWait(t *testing.T) {
	timeout := &mcp.TimeoutError{After: time.Minute, Pending: []mcp.PoolProgress{{Pool: "worker", Phase: mcp.PhaseRollout}}}
	for _, tt := range []struct {
		err  error
		want []string
	}{
		{timeout, []string{"timed out after 1m0s", "the rollout goes on in the cluster: run `kubectl kubens wait` again to keep waiting"}},
		{&mcp.PoolError{Pool: "worker", Kind: mcp.KindPaused}, []string{"pool worker is paused, so its nodes will not be updated. Unpause it with `oc patch mcp worker", "run `kubectl kubens wait` again"}},
		{&mcp.PoolError{Pool: "infra", Kind: mcp.KindRenderDegraded, Message: "bad"}, []string{"(RenderDegraded): bad. Fix the cause (`oc describe mcp infra`, `kubectl kubens status -o wide`), then run `kubectl kubens wait` again"}},
		{&mcp.PoolError{Pool: "gone", Kind: mcp.KindMissing}, []string{"pool gone no longer exists"}},
	} {
		got := adviseWait(tt.err, kubectlDisplayName)
		if !errors.Is(got, tt.err) {
			t.Errorf("%v: the engine's error is not wrapped", got)
		}
		for _, w := range tt.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%q lacks %q", got.Error(), w)
			}
		}
		if strings.Contains(got.Error(), "oc kubens") {
			t.Errorf("%q names oc kubens", got.Error())
		}
	}
}

// Complete reads the display name off the root command.
func TestCompleteReadsDisplayName(t *testing.T) {
	root := NewCmdKubens(genericiooptions.NewTestIOStreamsDiscard(), kubectlDisplayName)
	cmd, _, err := root.Find([]string{"wait"})
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.APIServer = ptr.To("https://127.0.0.1:1")
	o := clusterOptions{configFlags: flags, IOStreams: genericiooptions.NewTestIOStreamsDiscard()}
	if err := o.completeClients(cmd); err != nil {
		t.Fatal(err)
	}
	if o.displayName != kubectlDisplayName {
		t.Errorf("display name %q, want %q", o.displayName, kubectlDisplayName)
	}
}
