package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/oc-kubens/oc-kubens/test/harness/node"
)

// rssMiB sums the resident memory of every process in the node's PID
// namespace (as seen from the host).
func rssMiB(n *node.Node) int {
	pid := n.InitPID()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	var kb int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); l != ns {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					n, _ := strconv.Atoi(f[0])
					kb += n
				}
			}
		}
	}
	return kb / 1024
}
