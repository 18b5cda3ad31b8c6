package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

const mcDiscoveryPath = "/apis/machineconfiguration.openshift.io/v1"

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	writeJSON(w, int(st.Code), &st)
}

// fakeAPIServer answers the requests verify makes up to creating its
// namespace, which it refuses, so the command ends there (exit 2). Every
// answer carries the same API warning, to show it reaches stderr once and
// kubectl-style. discovery answers the MachineConfig discovery request.
func fakeAPIServer(t *testing.T, discovery http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(mcDiscoveryPath, discovery)
	mux.HandleFunc("/api/v1/nodes/n1", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("Warning", `299 - "oc-kubens test warning"`)
		writeJSON(w, http.StatusOK, &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	})
	mux.HandleFunc("/api/v1/namespaces", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "oc-kubens test warning"`)
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, &corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"}})
			return
		}
		writeStatus(w, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "", fmt.Errorf("no")))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestAPIWarningsPrintedLikeKubectl: warnings from the API server are
// "Warning: ..." lines on the command's stderr, each once, never raw klog
// lines ("W1129 ... warnings.go:107] ...").
func TestAPIWarningsPrintedLikeKubectl(t *testing.T) {
	srv := fakeAPIServer(t, http.NotFound)
	var out, errOut bytes.Buffer
	code := Execute([]string{"oc-kubens", "verify", "n1", "--image", "x", "--server", srv.URL}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	stderr := errOut.String()
	t.Logf("exit %d\n%s", code, stderr)
	if n := strings.Count(stderr, "Warning: oc-kubens test warning\n"); n != 1 {
		t.Errorf("the API warning (sent 3 times) is on stderr %d times, want once as kubectl prints it:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "EXPECTED is unknown") {
		t.Errorf("a 404 from discovery means no MachineConfig API, not unknown:\n%s", stderr)
	}
}
