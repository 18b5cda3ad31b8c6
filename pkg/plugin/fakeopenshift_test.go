package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgfake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	operatorfake "github.com/openshift/client-go/operator/clientset/versioned/fake"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
)

// fakeOpenShift is an OpenShift cluster on fake clientsets for the control
// commands, driven through their Options' Validate and Run as cobra would
// after Complete: the MachineConfig API (server-side apply included, which
// needs NewClientset), its discovery, a metadata client that reads the
// same MachineConfigs, and an access review that allows what denied does
// not name.
type fakeOpenShift struct {
	kube *kubefake.Clientset
	mcfg *mcfgfake.Clientset
	meta *metafake.FakeMetadataClient
	disc *fakediscovery.FakeDiscovery
	op   *operatorfake.Clientset
	out  *lockedBuffer

	mu     sync.Mutex
	denied map[string]bool // verbs the SelfSubjectAccessReview denies
	// watching hears once per MachineConfigPool watch started, after
	// the watch is in place.
	watching chan struct{}
}

var (
	mcGVR   = mcfgv1.GroupVersion.WithResource("machineconfigs")
	poolGVR = mcfgv1.GroupVersion.WithResource("machineconfigpools")
)

func newFakeOpenShift(t testing.TB, objs ...runtime.Object) *fakeOpenShift {
	t.Helper()
	f := &fakeOpenShift{
		kube:     kubefake.NewClientset(),
		mcfg:     mcfgfake.NewClientset(objs...),
		op:       operatorfake.NewSimpleClientset(),
		out:      &lockedBuffer{},
		denied:   map[string]bool{},
		watching: make(chan struct{}, 16),
	}
	f.disc = f.kube.Discovery().(*fakediscovery.FakeDiscovery)
	f.setMachineConfigResources("machineconfigs", "machineconfigpools")
	f.kube.PrependReactor("create", "selfsubjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		r := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		f.mu.Lock()
		defer f.mu.Unlock()
		r.Status.Allowed = !f.denied[r.Spec.ResourceAttributes.Verb]
		return true, r, nil
	})
	// The fake persists dry runs; an API server does not.
	f.mcfg.PrependReactor("*", "machineconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		switch a := a.(type) {
		case clienttesting.PatchActionImpl:
			if len(a.PatchOptions.DryRun) == 0 {
				return false, nil, nil
			}
			var sent mcfgv1.MachineConfig
			if err := json.Unmarshal(a.Patch, &sent); err != nil {
				return true, nil, err
			}
			if have, err := f.mcfg.Tracker().Get(mcGVR, "", a.Name); err == nil {
				mc := have.(*mcfgv1.MachineConfig).DeepCopy()
				mc.Labels, mc.Spec.Config = sent.Labels, sent.Spec.Config
				return true, mc, nil
			}
			return true, &sent, nil
		case clienttesting.DeleteActionImpl:
			if len(a.DeleteOptions.DryRun) == 0 {
				return false, nil, nil
			}
			_, err := f.mcfg.Tracker().Get(mcGVR, "", a.Name)
			return true, nil, err
		}
		return false, nil, nil
	})
	f.mcfg.PrependWatchReactor("machineconfigpools", func(clienttesting.Action) (bool, watch.Interface, error) {
		// The fake holds its lock until the next reactor has registered
		// the watch: whoever hears this and then writes is seen by it.
		select {
		case f.watching <- struct{}{}:
		default:
		}
		return false, nil, nil
	})
	scheme := metafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f.meta = metafake.NewSimpleMetadataClient(scheme)
	f.meta.PrependReactor("list", "machineconfigs", func(clienttesting.Action) (bool, runtime.Object, error) {
		list := &metav1.List{}
		for _, mc := range f.machineConfigs(t) {
			list.Items = append(list.Items, runtime.RawExtension{Object: &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
				ObjectMeta: mc.ObjectMeta,
			}})
		}
		return true, list, nil
	})
	return f
}

// setMachineConfigResources is what discovery says machineconfiguration.openshift.io/v1 serves.
func (f *fakeOpenShift) setMachineConfigResources(names ...string) {
	l := &metav1.APIResourceList{GroupVersion: mcfgv1.GroupVersion.String()}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}})
	}
	f.disc.Resources = []*metav1.APIResourceList{l}
}

func (f *fakeOpenShift) deny(verbs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range verbs {
		f.denied[v] = true
	}
}

func (f *fakeOpenShift) options() clusterOptions {
	return clusterOptions{
		clients:   &clusterClients{kube: f.kube, mcfg: f.mcfg, disc: f.disc, meta: f.meta, op: f.op},
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: f.out, ErrOut: f.out},
	}
}

// machineConfigs is the cluster's MachineConfigs, read without a request.
func (f *fakeOpenShift) machineConfigs(t testing.TB) []mcfgv1.MachineConfig {
	t.Helper()
	obj, err := f.mcfg.Tracker().List(mcGVR, mcfgv1.GroupVersion.WithKind("MachineConfig"), "")
	if err != nil {
		t.Fatal(err)
	}
	items := obj.(*mcfgv1.MachineConfigList).Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items
}

// state is every MachineConfig and pool, one line each (name,
// resourceVersion, labels and config; the pool's spec and status
// configuration): what "nothing was changed" compares.
func (f *fakeOpenShift) state(t testing.TB) string {
	t.Helper()
	var lines []string
	for _, mc := range f.machineConfigs(t) {
		lines = append(lines, mcLine(&mc))
	}
	obj, err := f.mcfg.Tracker().List(poolGVR, mcfgv1.GroupVersion.WithKind("MachineConfigPool"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range obj.(*mcfgv1.MachineConfigPoolList).Items {
		lines = append(lines, fmt.Sprintf("pool %s@%s %s/%v %s", p.Name, p.ResourceVersion,
			p.Spec.Configuration.Name, p.Spec.Configuration.Source, p.Status.Configuration.Name))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func mcLine(mc *mcfgv1.MachineConfig) string {
	return fmt.Sprintf("mc %s@%s %v %s", mc.Name, mc.ResourceVersion, mc.Labels, mc.Spec.Config.Raw)
}

// writes lists the write requests sent for MachineConfigs and pools, as
// "verb name" (with "(dry run)" when marked so), and every create sent
// through the kube client but access reviews.
func (f *fakeOpenShift) writes() []string {
	var out []string
	for _, a := range f.mcfg.Actions() {
		var name string
		var dry []string
		switch a := a.(type) {
		case clienttesting.PatchActionImpl:
			name, dry = a.GetName(), a.PatchOptions.DryRun
		case clienttesting.DeleteActionImpl:
			name, dry = a.GetName(), a.DeleteOptions.DryRun
		case clienttesting.CreateActionImpl:
			name, dry = objName(a.GetObject()), a.CreateOptions.DryRun
		case clienttesting.UpdateActionImpl:
			name, dry = objName(a.GetObject()), a.UpdateOptions.DryRun
		default:
			continue
		}
		w := a.GetVerb() + " " + name
		if len(dry) > 0 {
			w += " (dry run)"
		}
		out = append(out, w)
	}
	for _, a := range f.kube.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource != "selfsubjectaccessreviews" {
			out = append(out, "kube create "+a.GetResource().Resource)
		}
	}
	return out
}

func objName(o runtime.Object) string {
	if m, ok := o.(metav1.Object); ok {
		return m.GetName()
	}
	return "?"
}

// accessReviews lists the verbs asked about, in order.
func (f *fakeOpenShift) accessReviews() []string {
	var verbs []string
	for _, a := range f.kube.Actions() {
		if c, ok := a.(clienttesting.CreateAction); ok && a.GetResource().Resource == "selfsubjectaccessreviews" {
			verbs = append(verbs, c.GetObject().(*authorizationv1.SelfSubjectAccessReview).Spec.ResourceAttributes.Verb)
		}
	}
	return verbs
}

// awaitWatch waits until a command watches the pools.
func (f *fakeOpenShift) awaitWatch(t testing.TB) {
	t.Helper()
	select {
	case <-f.watching:
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing watched the pools within 10s; output:\n%s", f.out)
	}
}

// rollOut plays the Machine Config Operator for one pool: it renders
// sources into rendered (kubens.service on or off) and updates every node.
func (f *fakeOpenShift) rollOut(t testing.TB, pool, rendered string, kubens bool, sources ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, fcRendered(rendered, pool, kubens), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := f.mcfg.MachineconfigurationV1().MachineConfigPools().Get(ctx, pool, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fcAtRest(p, rendered, sources...)
	if _, err := f.mcfg.MachineconfigurationV1().MachineConfigPools().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runCommand builds and runs one control command with --yes, as cobra
// would after Complete.
type controlCmd struct {
	name    string // enable, disable or wait
	roles   []string
	pools   []string // wait --pool
	dryRun  cmdutil.DryRunStrategy
	wait    bool
	timeout time.Duration // 30s when 0
}

func (f *fakeOpenShift) run(ctx context.Context, c controlCmd) error {
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	switch c.name {
	case "enable":
		o := &EnableOptions{clusterOptions: f.options()}
		o.Roles, o.Yes, o.DryRun, o.Wait, o.Timeout = c.roles, true, c.dryRun, c.wait, timeout
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(ctx)
	case "disable":
		o := &DisableOptions{clusterOptions: f.options()}
		o.Roles, o.Yes, o.DryRun, o.Wait, o.Timeout = c.roles, true, c.dryRun, c.wait, timeout
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(ctx)
	case "wait":
		o := &WaitOptions{clusterOptions: f.options(), Pools: c.pools, Timeout: timeout}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(ctx)
	}
	panic("no command " + c.name)
}

// start runs c in the background.
func (f *fakeOpenShift) start(ctx context.Context, c controlCmd) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.run(ctx, c) }()
	return done
}

func awaitErr(t testing.TB, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("the command did not end within %s", within)
		return nil
	}
}

// The objects of a two-pool cluster (master, worker; two nodes each), at
// rest on rendered-<pool>-1, kubens.service off.

func fcCluster(extra ...runtime.Object) []runtime.Object {
	objs := []runtime.Object{
		fcPool("master", "rendered-master-1", "00-master"),
		fcPool("worker", "rendered-worker-1", "00-worker"),
		fcInput("00-master", "master", `{"name":"chronyd.service","enabled":true}`),
		fcInput("00-worker", "worker", `{"name":"chronyd.service","enabled":true}`),
		fcRendered("rendered-master-1", "master", false),
		fcRendered("rendered-worker-1", "worker", false),
	}
	return append(objs, extra...)
}

// fcPool is a pool selecting its role's MachineConfigs, at rest on rendered.
func fcPool(name, rendered string, sources ...string) *mcfgv1.MachineConfigPool {
	p := &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{manifests.RoleLabel: name}},
			NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}},
		},
	}
	fcAtRest(p, rendered, sources...)
	return p
}

// fcAtRest puts p on rendered, made from sources, with every node updated.
func fcAtRest(p *mcfgv1.MachineConfigPool, rendered string, sources ...string) {
	p.Spec.Configuration.Name = rendered
	p.Spec.Configuration.Source = nil
	for _, s := range sources {
		p.Spec.Configuration.Source = append(p.Spec.Configuration.Source, corev1.ObjectReference{Kind: "MachineConfig", Name: s})
	}
	p.Status.Configuration = p.Spec.Configuration
	p.Status.MachineCount, p.Status.ReadyMachineCount, p.Status.UpdatedMachineCount = 2, 2, 2
	p.Status.ObservedGeneration = p.Generation
	p.Status.Conditions = []mcfgv1.MachineConfigPoolCondition{
		{Type: mcfgv1.MachineConfigPoolUpdated, Status: corev1.ConditionTrue},
		{Type: mcfgv1.MachineConfigPoolUpdating, Status: corev1.ConditionFalse},
	}
}

// fcInput is somebody's Ignition 3.2 MachineConfig for role with these units.
func fcInput(name, role string, units ...string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{manifests.RoleLabel: role}},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(
			`{"ignition":{"version":"3.2.0"},"systemd":{"units":[` + strings.Join(units, ",") + `]}}`)}},
	}
}

// fcSeed is 99-kubens-<role> as the OpenShift documentation has it applied
// by hand: no oc-kubens label.
func fcSeed(role string) *mcfgv1.MachineConfig {
	return fcInput("99-kubens-"+role, role, `{"enabled":true,"name":"kubens.service"}`)
}

// fcOurs is the MachineConfig enable creates for role.
func fcOurs(t testing.TB, role string) *mcfgv1.MachineConfig {
	t.Helper()
	mcs, err := manifests.Render(manifests.RenderOptions{Roles: []string{role}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	mc := mcs[0]
	mc.UID = types.UID("uid-" + mc.Name)
	return mc
}

// fcRendered is a rendered config owned by pool.
func fcRendered(name, pool string, kubens bool) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool", Name: pool}}},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(fmt.Sprintf(
			`{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"chronyd.service","enabled":true},{"name":"kubens.service","enabled":%v}]}}`, kubens))}},
	}
}

// lockedBuffer is an output stream the command writes from several
// goroutines (progress, warnings) while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
