// Package controlplane runs a real Kubernetes control plane on loopback for
// the integration tests and the demo: etcd, kube-apiserver and
// kube-controller-manager, as built by `make cluster-bins`, with the
// OpenShift MachineConfig and MachineConfigPool CRDs, the Machine Config
// Operator's admission policy for custom pools, and the pools a fresh
// OpenShift cluster has.
//
// Everything a run creates lives in one folder and every process it starts
// is recorded in the run's testenv.State, so Stop (or, after a crash, the
// next run) removes all of it.
package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/oc-kubens/oc-kubens/test/harness/pki"
	"github.com/oc-kubens/oc-kubens/test/harness/testenv"
)

// Controllers are the kube-controller-manager controllers the tests need:
// default ServiceAccounts and their tokens, namespace deletion (without it
// a deleted namespace stays Terminating forever), garbage collection, and
// the kube-root-ca.crt ConfigMap pods mount.
const Controllers = "serviceaccount,serviceaccount-token,namespace,garbagecollector,root-ca-cert-publisher"

// ServiceAccountIssuer is the issuer of the cluster's service-account tokens.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Options configure Start. The zero value starts an OpenShift-like control
// plane with the master and worker pools.
type Options struct {
	// Dir holds certificates, etcd data, logs and kubeconfigs. Empty means
	// the run's state folder, removed by Stop. A Dir given here is kept.
	Dir string
	// State records the started processes so a crashed run is cleaned by the
	// next one. Nil: Start creates its own and Stop closes it. The cluster
	// harness passes its own, shared with the nodes.
	State *testenv.State
	// NoMachineConfigCRDs starts plain Kubernetes: no MachineConfig /
	// MachineConfigPool CRDs, no custom-pool admission policy and no pools
	// (the "beyond OpenShift" tests).
	NoMachineConfigCRDs bool
	// ExtraPools are created beside master and worker.
	ExtraPools []Pool
	// K8sBinDir and EtcdBin default to testenv.K8sBinDir() and testenv.EtcdBin().
	K8sBinDir string
	EtcdBin   string
	// OpenShiftAPIDir is the github.com/openshift/api module folder holding
	// the CRD manifests. Default: `go list -m` in the repository root, so the
	// CRDs are always those of the version the plugin is built against.
	OpenShiftAPIDir string
	// Logf, if set, receives one line per start-up step with its duration.
	Logf func(format string, args ...any)
	// WatchCache runs kube-apiserver with its watch cache, as every real
	// cluster does: lists, label-selected ones included, are then served
	// from memory instead of etcd. Off by default: tests hold few objects,
	// and the cache's warm-up costs about a second per resource on first
	// read. Benchmarks of thousands of objects turn it on.
	WatchCache bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Dir holds the certificates, data, logs (*.log) and kubeconfigs.
	Dir string
	// KubeconfigPath is an admin kubeconfig (O=system:masters).
	KubeconfigPath string
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string
	// EtcdURL is etcd's client URL (plain HTTP on loopback).
	EtcdURL string
	// State is the run state the processes are recorded in.
	State *testenv.State
	// StartDuration is how long Start took, from the first process to the
	// last pool.
	StartDuration time.Duration

	ca        *pki.CA
	adminCert []byte
	adminKey  []byte
	ownState  bool
	logf      func(format string, args ...any)
	// watchCache: Options.WatchCache.
	watchCache bool

	mu    sync.Mutex
	procs []*process // in start order; stopped in reverse
}

// Start starts etcd, kube-apiserver and kube-controller-manager, waits for
// /readyz, writes the admin kubeconfig, and (unless NoMachineConfigCRDs)
// installs the MachineConfig CRDs and the custom-pool admission policy and
// creates the pools. On error nothing it started is left running, and the
// error carries the end of the failing daemon's log.
func Start(ctx context.Context, o Options) (_ *ControlPlane, err error) {
	begin := time.Now()
	if o.K8sBinDir == "" {
		o.K8sBinDir = testenv.K8sBinDir()
	}
	if o.EtcdBin == "" {
		o.EtcdBin = testenv.EtcdBin()
	}
	if missing := testenv.MissingBinaries(); len(missing) > 0 && o.K8sBinDir == testenv.K8sBinDir() && o.EtcdBin == testenv.EtcdBin() {
		return nil, fmt.Errorf("cluster binaries missing (%s): run `make cluster-bins`", strings.Join(missing, ", "))
	}
	var crds [][]byte
	if !o.NoMachineConfigCRDs {
		if crds, err = readCRDs(ctx, o.OpenShiftAPIDir); err != nil {
			return nil, err
		}
	}

	cp := &ControlPlane{State: o.State, logf: o.Logf, watchCache: o.WatchCache}
	if cp.logf == nil {
		cp.logf = func(string, ...any) {}
	}
	if cp.State == nil {
		if cp.State, err = testenv.NewState("controlplane"); err != nil {
			return nil, err
		}
		cp.ownState = true
	}
	defer func() {
		if err != nil {
			cp.Stop(context.Background())
		}
	}()
	cp.Dir = o.Dir
	if cp.Dir == "" {
		cp.Dir = cp.State.Dir()
	}
	if err := os.MkdirAll(cp.Dir, 0o700); err != nil {
		return nil, err
	}

	step := time.Now()
	if err := cp.writePKI(); err != nil {
		return nil, err
	}
	cp.logf("pki: %s", time.Since(step).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the CRD creation if Start fails
	var crdsCreated <-chan crdResult
	if err := retryOnPortClash(func() (err error) {
		ports, err := freePorts(3)
		if err != nil {
			return err
		}
		crdsCreated, err = cp.startStoreAndAPIServer(ctx, o.EtcdBin, filepath.Join(o.K8sBinDir, "kube-apiserver"), crds, ports)
		return err
	}); err != nil {
		return nil, err
	}

	if err := cp.writeKubeconfig(cp.KubeconfigPath, cp.adminCert, cp.adminKey); err != nil {
		return nil, err
	}
	if err := cp.startControllerManager(filepath.Join(o.K8sBinDir, "kube-controller-manager")); err != nil {
		return nil, err
	}

	// The CRDs and pools do not need the controller manager; wait for both
	// at once.
	step = time.Now()
	kcmReady := make(chan error, 1)
	go func() {
		err := cp.waitControllerManager(ctx)
		cp.logf("kube-controller-manager serving (default ServiceAccount exists): %s", time.Since(step).Round(time.Millisecond))
		kcmReady <- err
	}()
	if !o.NoMachineConfigCRDs {
		res := <-crdsCreated
		if res.err != nil {
			return nil, res.err
		}
		// The MCO's admission policy for custom pools, before the pools.
		if err := createAdmissionPolicies(ctx, cp.RESTConfig()); err != nil {
			return nil, err
		}
		cp.logf("admission policies created: %s", time.Since(step).Round(time.Millisecond))
		established, err := cp.waitCRDsEstablished(ctx, res.names)
		if err != nil {
			return nil, err
		}
		cp.logf("CRDs established: %s", time.Since(step).Round(time.Millisecond))
		select {
		case <-time.After(time.Until(established.Add(crdCreateHold))):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := cp.createPools(ctx, o.ExtraPools); err != nil {
			return nil, err
		}
		cp.logf("pools created: %s", time.Since(step).Round(time.Millisecond))
	}
	if err := <-kcmReady; err != nil {
		return nil, err
	}
	cp.StartDuration = time.Since(begin)
	return cp, nil
}

// Stop stops the daemons (SIGTERM, then SIGKILL after a grace period) in
// reverse start order and, when Start created the state, removes the run
// folder. It is safe to call more than once.
func (cp *ControlPlane) Stop(ctx context.Context) error {
	cp.mu.Lock()
	procs := cp.procs
	cp.procs = nil
	cp.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if err := p.stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
		if err := cp.State.RemoveProcess(p.pid()); err != nil {
			errs = append(errs, err)
		}
	}
	if cp.ownState {
		errs = append(errs, cp.State.Close())
		cp.ownState = false
	}
	return errors.Join(errs...)
}

// RESTConfig returns a new admin client configuration (system:masters), with
// client rate limits raised for tests.
func (cp *ControlPlane) RESTConfig() *rest.Config {
	return &rest.Config{
		Host: cp.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cp.ca.CertPEM,
			CertData: cp.adminCert,
			KeyData:  cp.adminKey,
		},
		QPS:   100,
		Burst: 200,
	}
}

// CAPEM is the cluster CA: it signs every certificate and the clients trust it.
func (cp *ControlPlane) CAPEM() []byte { return cp.ca.CertPEM }

// IssueClientCert issues a client certificate for user cn in groups orgs
// (nodes: "system:node:<name>", ["system:nodes"]).
func (cp *ControlPlane) IssueClientCert(cn string, orgs []string) (certPEM, keyPEM []byte, err error) {
	return cp.ca.IssueClient(cn, orgs)
}

// IssueExpiredClientCert issues a client certificate like IssueClientCert
// that expired an hour ago, for the tests of an expired login.
func (cp *ControlPlane) IssueExpiredClientCert(cn string, orgs []string) (certPEM, keyPEM []byte, err error) {
	return cp.ca.IssueClientUntil(cn, orgs, time.Now().Add(-time.Hour))
}

// IssueServingCert issues a serving certificate for hosts (IPs or DNS
// names). The apiserver verifies kubelets against the CA and reaches them by
// node name, so a kubelet's certificate must list its node name.
func (cp *ControlPlane) IssueServingCert(cn string, hosts []string) (certPEM, keyPEM []byte, err error) {
	return cp.ca.IssueServing(cn, hosts)
}

// UserKubeconfig writes a kubeconfig for a user that is not an admin, with
// a client certificate for user in groups, for RBAC tests. The apiserver
// adds system:authenticated; RBAC grants nothing else until the test does.
func (cp *ControlPlane) UserKubeconfig(user string, groups []string) (string, error) {
	cert, key, err := cp.ca.IssueClient(user, groups)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cp.Dir, "users")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(user)+".kubeconfig")
	return path, cp.writeKubeconfig(path, cert, key)
}

// LogPath is the log file of a daemon: "etcd", "kube-apiserver" or
// "kube-controller-manager".
func (cp *ControlPlane) LogPath(daemon string) string {
	return filepath.Join(cp.Dir, daemon+".log")
}

// PIDs returns the daemons' process IDs by name.
func (cp *ControlPlane) PIDs() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	m := map[string]int{}
	for _, p := range cp.procs {
		m[p.name] = p.pid()
	}
	return m
}

func (cp *ControlPlane) path(name string) string { return filepath.Join(cp.Dir, name) }

// writePKI creates the CA and every certificate the daemons use, as
// <name>.crt / <name>.key in the run folder.
func (cp *ControlPlane) writePKI() error {
	ca, err := pki.NewCA("oc-kubens-test-ca")
	if err != nil {
		return err
	}
	cp.ca = ca
	files := map[string][]byte{"ca.crt": ca.CertPEM}
	pairs := []struct {
		name  string
		issue func() ([]byte, []byte, error)
	}{
		// The service IP and in-cluster names too, so pods can verify the
		// apiserver by its usual names.
		{"kube-apiserver", func() ([]byte, []byte, error) {
			return ca.IssueServing("kube-apiserver", []string{
				"127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default",
				"kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
			})
		}},
		{"admin", func() ([]byte, []byte, error) { return ca.IssueClient("kubens-admin", []string{"system:masters"}) }},
		{"kube-apiserver-kubelet-client", func() ([]byte, []byte, error) {
			return ca.IssueClient("kube-apiserver-kubelet-client", []string{"system:masters"})
		}},
		// The RBAC bootstrap policy binds this user name to the controller
		// manager's role.
		{"kube-controller-manager", func() ([]byte, []byte, error) { return ca.IssueClient("system:kube-controller-manager", nil) }},
	}
	for _, p := range pairs {
		cert, key, err := p.issue()
		if err != nil {
			return fmt.Errorf("certificate %s: %w", p.name, err)
		}
		files[p.name+".crt"], files[p.name+".key"] = cert, key
	}
	cp.adminCert, cp.adminKey = files["admin.crt"], files["admin.key"]
	pub, priv, err := pki.NewServiceAccountKey()
	if err != nil {
		return err
	}
	files["sa.pub"], files["sa.key"] = pub, priv
	for name, b := range files {
		if err := os.WriteFile(cp.path(name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (cp *ControlPlane) track(p *process) {
	cp.mu.Lock()
	cp.procs = append(cp.procs, p)
	cp.mu.Unlock()
}

// untrack forgets a process that died during start (before a retry).
func (cp *ControlPlane) untrack(p *process) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, q := range cp.procs {
		if q == p {
			cp.procs = append(cp.procs[:i], cp.procs[i+1:]...)
			break
		}
	}
	cp.State.RemoveProcess(p.pid())
}

// startStoreAndAPIServer starts etcd and kube-apiserver together (the
// apiserver initialises for seconds before it needs etcd, and keeps retrying
// until etcd answers), waits for both, and meanwhile creates the CRDs (if
// any) as soon as the apiserver takes them: the rest of the apiserver's
// start-up then overlaps their establishment. The result of that comes on
// the returned channel. On a port clash both are stopped, to be started
// again on new ports.
// ports are etcd's client and peer ports and the apiserver's.
func (cp *ControlPlane) startStoreAndAPIServer(ctx context.Context, etcdBin, apiBin string, crds [][]byte, ports []int) (<-chan crdResult, error) {
	begin := time.Now()
	etcd, err := cp.spawnEtcd(etcdBin, ports[0], ports[1])
	if err != nil {
		return nil, err
	}
	api, err := cp.spawnAPIServer(apiBin, ports[2])
	if err != nil {
		return nil, err
	}
	// Cancelled if this attempt fails, so an attempt on a clashing port
	// does not go on creating CRDs on whatever now listens there.
	crdCtx, cancel := context.WithCancel(ctx)
	created := make(chan crdResult, 1)
	cfg := cp.RESTConfig()
	go func() {
		defer cancel()
		if len(crds) == 0 {
			return
		}
		names, err := createCRDs(crdCtx, cfg, crds)
		cp.logf("CRDs created: %s", time.Since(begin).Round(time.Millisecond))
		created <- crdResult{names, err}
	}()

	err = cp.waitEtcd(ctx, etcd)
	if err == nil {
		cp.logf("etcd healthy: %s", time.Since(begin).Round(time.Millisecond))
		err = cp.waitAPIServer(ctx, api)
	}
	if err != nil {
		cancel()
		if errors.Is(err, errPortInUse) {
			// Nothing to keep from this attempt: no grace period.
			for _, p := range []*process{api, etcd} {
				p.kill()
				<-p.done
				cp.untrack(p)
			}
		}
		return nil, err
	}
	cp.logf("kube-apiserver ready: %s", time.Since(begin).Round(time.Millisecond))
	return created, nil
}

// spawnEtcd starts etcd without waiting for it.
func (cp *ControlPlane) spawnEtcd(bin string, clientPort, peerPort int) (*process, error) {
	client := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	dataDir := cp.path("etcd")
	os.RemoveAll(dataDir) // a retry starts from scratch
	args := []string{
		"--name=default",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		// A throw-away store: durability buys nothing, fsync costs seconds.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	p, err := spawn(cp.State, "etcd", bin, args, cp.LogPath("etcd"))
	if err != nil {
		return nil, err
	}
	cp.track(p)
	cp.EtcdURL = client
	return p, nil
}

// waitEtcd waits for etcd's /health.
func (cp *ControlPlane) waitEtcd(ctx context.Context, p *process) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	err := waitFor(ctx, 30*time.Second, p, func() (bool, error) {
		resp, err := hc.Get(cp.EtcdURL + "/health")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`), nil
	})
	if err != nil {
		return cp.startFailed(p, err)
	}
	return nil
}

// spawnAPIServer starts kube-apiserver without waiting for it.
func (cp *ControlPlane) spawnAPIServer(bin string, port int) (*process, error) {
	cp.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(port)
	cp.KubeconfigPath = cp.path("admin.kubeconfig")
	args := []string{
		"--etcd-servers=" + cp.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + cp.path("apiserver-certs"),
		"--tls-cert-file=" + cp.path("kube-apiserver.crt"),
		"--tls-private-key-file=" + cp.path("kube-apiserver.key"),
		"--client-ca-file=" + cp.path("ca.crt"),
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + cp.path("sa.pub"),
		"--service-account-signing-key-file=" + cp.path("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// The advertise address is loopback, which the endpoint reconciler
		// refuses to publish (the apiserver exits); nothing here needs the
		// kubernetes Service endpoints.
		"--endpoint-reconciler-type=none",
		// logs/exec/attach: reach each kubelet by its node name (an
		// /etc/hosts entry) with a client certificate, and check the
		// kubelet's serving certificate against the cluster CA.
		"--kubelet-client-certificate=" + cp.path("kube-apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + cp.path("kube-apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + cp.path("ca.crt"),
		"--kubelet-preferred-address-types=Hostname",
		// Anonymous requests stay enabled, as on OpenShift: /healthz,
		// /readyz and /version answer them, RBAC refuses the rest.
		"--anonymous-auth=true",
		"--profiling=false",
	}
	if !cp.watchCache {
		// Straight to etcd: the first read of each resource skips the cache
		// warm-up (about 1s per CRD), and a test cluster has few objects.
		args = append(args, "--watch-cache=false")
	}
	p, err := spawn(cp.State, "kube-apiserver", bin, args, cp.LogPath("kube-apiserver"))
	if err != nil {
		return nil, err
	}
	cp.track(p)
	return p, nil
}

type crdResult struct {
	names []string
	err   error
}

// waitAPIServer waits for /readyz.
func (cp *ControlPlane) waitAPIServer(ctx context.Context, p *process) error {
	tlsConfig, err := cp.adminTLS()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer hc.CloseIdleConnections()
	err = waitFor(ctx, 60*time.Second, p, func() (bool, error) {
		resp, err := hc.Get(cp.APIServerURL + "/readyz")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return cp.startFailed(p, err)
	}
	return nil
}

func (cp *ControlPlane) startControllerManager(bin string) error {
	kubeconfig := cp.path("kube-controller-manager.kubeconfig")
	cert, err := os.ReadFile(cp.path("kube-controller-manager.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(cp.path("kube-controller-manager.key"))
	if err != nil {
		return err
	}
	if err := cp.writeKubeconfig(kubeconfig, cert, key); err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + Controllers,
		"--service-account-private-key-file=" + cp.path("sa.key"),
		"--root-ca-file=" + cp.path("ca.crt"),
		// Each controller acts as its own kube-system ServiceAccount, bound
		// by the bootstrap RBAC policy to just what it needs, as on a real
		// cluster; the controller manager's own user may do almost nothing.
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		// No HTTPS endpoint: nothing scrapes it, and a fixed default port
		// would clash between clusters running side by side.
		"--secure-port=0",
		"--profiling=false",
	}
	p, err := spawn(cp.State, "kube-controller-manager", bin, args, cp.LogPath("kube-controller-manager"))
	if err != nil {
		return err
	}
	cp.track(p)
	return nil
}

// startFailed turns a wait error into one carrying the daemon's log tail.
func (cp *ControlPlane) startFailed(p *process, err error) error {
	if p.exited() {
		if p.portInUse() {
			cp.untrack(p)
			return errPortInUse
		}
		return p.failure()
	}
	return fmt.Errorf("%s: %w; its log ends:\n%s", p.name, err, logTail(p.logPath, 25))
}

// retryOnPortClash retries a daemon start whose port was taken in the
// window between picking it and binding it (by another cluster starting at
// the same moment).
func retryOnPortClash(start func() error) error {
	var err error
	for range 3 {
		if err = start(); !errors.Is(err, errPortInUse) {
			return err
		}
	}
	return fmt.Errorf("three attempts hit ports already in use: %w", err)
}

// waitFor polls cond every 50ms until it holds, the process exits, timeout
// passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, p *process, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not ready after %s", timeout)
		case <-p.done:
			return fmt.Errorf("exited: %v", p.waitErr)
		case <-tick.C:
		}
	}
}

func (cp *ControlPlane) adminTLS() (*tls.Config, error) {
	pair, err := tls.X509KeyPair(cp.adminCert, cp.adminKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.ca.CertPEM)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}, nil
}

// writeKubeconfig writes a kubeconfig with everything embedded, so it can
// be copied elsewhere.
func (cp *ControlPlane) writeKubeconfig(path string, cert, key []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubens-test"] = &clientcmdapi.Cluster{Server: cp.APIServerURL, CertificateAuthorityData: cp.ca.CertPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["kubens-test"] = &clientcmdapi.Context{Cluster: "kubens-test", AuthInfo: "user"}
	cfg.CurrentContext = "kubens-test"
	return clientcmd.WriteToFile(*cfg, path)
}
