package controlplane

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// A port taken between picking and binding (another cluster starting at the
// same moment) is reported as errPortInUse, which Start retries, and the
// attempt leaves no daemon behind.
func TestPortClashIsRetryable(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ports []int
	}{
		{"apiserver port taken", []int{free[0], free[1], taken.Addr().(*net.TCPAddr).Port}},
		{"etcd port taken", []int{taken.Addr().(*net.TCPAddr).Port, free[0], free[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, err := testenv.NewState("portclash")
			if err != nil {
				t.Fatal(err)
			}
			defer state.Close()
			cp := &ControlPlane{State: state, Dir: state.Dir(), logf: t.Logf}
			if err := cp.writePKI(); err != nil {
				t.Fatal(err)
			}
			_, err = cp.startStoreAndAPIServer(context.Background(), testenv.EtcdBin(),
				filepath.Join(testenv.K8sBinDir(), "kube-apiserver"), nil, tt.ports)
			if !errors.Is(err, errPortInUse) {
				t.Fatalf("err = %v, want errPortInUse", err)
			}
			if len(cp.PIDs()) != 0 {
				t.Errorf("daemons left after the clash: %v", cp.PIDs())
			}
		})
	}
}
