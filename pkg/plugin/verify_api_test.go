package plugin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/oc-kubens/oc-kubens/pkg/verify"
)

// TestMachineConfigAPIDiscovery: only a NotFound from discovery means the
// cluster has no MachineConfig API. Forbidden, a server error or a timeout
// leave it unknown, with the reason.
func TestMachineConfigAPIDiscovery(t *testing.T) {
	gr := schema.GroupResource{Group: "machineconfiguration.openshift.io"}
	resources := func(names ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			l := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "machineconfiguration.openshift.io/v1"}
			for _, n := range names {
				l.APIResources = append(l.APIResources, metav1.APIResource{Name: n, Kind: n, Verbs: []string{"get", "list"}})
			}
			writeJSON(w, http.StatusOK, &l)
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		have    bool
		wantErr string // "" when it is known
	}{
		{"served", resources("machineconfigs", "machineconfigpools"), true, ""},
		{"group without the resources", resources("controllerconfigs"), false, ""},
		{"not found (status)", func(w http.ResponseWriter, _ *http.Request) { writeStatus(w, apierrors.NewNotFound(gr, "")) }, false, ""},
		{"not found (plain 404)", http.NotFound, false, ""},
		{"forbidden", func(w http.ResponseWriter, _ *http.Request) {
			writeStatus(w, apierrors.NewForbidden(gr, "", fmt.Errorf(`User "dev" cannot get path "%s"`, mcDiscoveryPath)))
		}, false, "not allowed to discover the MachineConfig API"},
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			writeStatus(w, apierrors.NewInternalError(fmt.Errorf("etcd is sad")))
		}, false, "cannot discover the MachineConfig API"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, false, "cannot discover the MachineConfig API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc(mcDiscoveryPath, tt.handler)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			c, err := clientsForConfig(&rest.Config{Host: srv.URL, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			have, err := machineConfigAPI(c)
			if have != tt.have {
				t.Errorf("have %v, want %v (err %v)", have, tt.have, err)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err %v, want none: the answer is known", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err %v, want %q: it is unknown whether the API exists", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyWarnsWhenDiscoveryFails: a forbidden MachineConfig discovery is
// a warning line, not a silent "no MachineConfig API".
func TestVerifyWarnsWhenDiscoveryFails(t *testing.T) {
	srv := fakeAPIServer(t, func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, apierrors.NewForbidden(schema.GroupResource{Group: "machineconfiguration.openshift.io"}, "", fmt.Errorf("denied")))
	})
	var out, errOut bytes.Buffer
	code := Execute([]string{"oc-kubens", "verify", "n1", "--image", "x", "--server", srv.URL}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	stderr := errOut.String()
	t.Logf("exit %d\n%s", code, stderr)
	if code != verifyExitCannotRun {
		t.Errorf("exit %d, want %d (the namespace cannot be created)", code, verifyExitCannotRun)
	}
	if !strings.Contains(stderr, "warning: not allowed to discover the MachineConfig API") || !strings.Contains(stderr, "EXPECTED is unknown") {
		t.Errorf("no warning that the MachineConfig API could not be discovered:\n%s", stderr)
	}

	// --pool cannot work then, and says why.
	errOut.Reset()
	code = Execute([]string{"oc-kubens", "verify", "--pool", "worker", "--image", "x", "--server", srv.URL}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != verifyExitCannotRun || !strings.Contains(errOut.String(), "--pool needs the MachineConfig API: not allowed") {
		t.Errorf("--pool: exit %d\n%s", code, errOut.String())
	}
}

// TestFillExpected: EXPECTED is the rendered config's state with the
// MachineConfig API, "-" without it, and Unknown when discovery failed.
func TestFillExpected(t *testing.T) {
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}}
	res := func() []verify.NodeResult {
		return []verify.NodeResult{{Node: "n1", State: verify.Encapsulated, Mechanism: verify.MechanismKubens}}
	}
	o := &VerifyOptions{nodeObjs: nodes}
	none := res()
	o.fillExpected(context.Background(), none, false)
	unknown := res()
	o.fillExpected(context.Background(), unknown, true)
	if none[0].Expected != "" || unknown[0].Expected != verify.StateUnknown {
		t.Fatalf("expected %q and %q", none[0].Expected, unknown[0].Expected)
	}
	var buf bytes.Buffer
	if err := printVerifyTable(&buf, &buf, verify.NewReport(verify.Encapsulated, unknown), false, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if f := strings.Fields(lines[1]); len(f) < 3 || f[2] != "Unknown" {
		t.Errorf("EXPECTED column of %q: want Unknown", lines[1])
	}
}
