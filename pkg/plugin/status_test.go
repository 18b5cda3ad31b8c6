package plugin

import (
	"bytes"
	"strings"
	"testing"

	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

func TestPrintStatus(t *testing.T) {
	rep := mcp.Report{Pools: []mcp.PoolStatus{{Name: "worker", Kubens: mcp.UnitDisabled, DesiredKubens: mcp.UnitEnabled, PendingChange: true,
		Updating: true, MachineCount: 3, ReadyMachineCount: 2, UpdatedMachineCount: 1, EnabledBy: []string{"99-kubens-worker"},
		Wrapped: []string{"agent.service", "other.service"}}, {Name: "master", Kubens: mcp.UnitEnabled, Wrapped: []string{}, Paused: true, PendingChange: true, ZTP: true}},
		Nodes: []mcp.NodeStatus{{Name: "w1", Pool: "worker", Kubens: mcp.UnitDisabled, State: "Working", CurrentConfig: "r1", DesiredConfig: "r2"}}}
	var b bytes.Buffer
	if err := printStatus(&b, &b, rep, true, false); err != nil {
		t.Fatal(err)
	}
	// kubectl's tab writer: three spaces between columns.
	for _, want := range []string{"worker   disabled   -> enabled", "99-kubens-worker   agent.service,other.service\n", "w1     worker   disabled   Working   r1        r2",
		"Note: pool master encapsulates through the ZTP container-mount-namespace.service.\n",
		"Pool master is paused with a pending change: nothing rolls out until it is unpaused.\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	// WRAPPED is the last column, "-" for a pool that wraps nothing.
	lines := strings.Split(b.String(), "\n")
	if h := strings.Fields(lines[0]); h[len(h)-1] != "WRAPPED" || h[len(h)-3] != "ENABLED" {
		t.Errorf("header %q", lines[0])
	}
	if f := strings.Fields(lines[2]); f[0] != "master" || f[len(f)-1] != "-" || f[len(f)-2] != "-" {
		t.Errorf("master row %q", lines[2])
	}
	// Without wide, no node table.
	b.Reset()
	if err := printStatus(&b, &b, rep, false, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "NODE") || strings.Contains(b.String(), "w1") {
		t.Errorf("node table without wide:\n%s", b.String())
	}
}

// Flag mistakes in status exit 1, before any request.
func TestStatusOutputErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "xml"}, `unsupported output format "xml": allowed formats are json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, wide, or leave -o out`},
		{[]string{"-o", "jsonpath"}, "-o jsonpath: template format specified but no template given"},
	} {
		out, errOut, code := run(t, "oc-kubens", append([]string{"status", "--server", "https://127.0.0.1:1"}, tt.args...)...)
		checkOneLineError(t, out, errOut, code, tt.want)
	}
}
