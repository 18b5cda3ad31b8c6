package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgfake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
)

// Issue 9 item 12: status read every rendered config of the cluster (one
// full list); it must read only the input configs and the rendered configs
// that pools and nodes name.
func TestSnapshotReadsOnlyReferencedRenderedConfigs(t *testing.T) {
	const role = "machineconfiguration.openshift.io/role"
	poolObj := func(name, current string) *mcfgv1.MachineConfigPool {
		p := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{role: name}}
		p.Spec.Configuration.Name, p.Status.Configuration.Name = current, current
		return p
	}
	input := func(name, r string, extra map[string]string) *mcfgv1.MachineConfig {
		l := map[string]string{role: r}
		for k, v := range extra {
			l[k] = v
		}
		return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.4.0"}}`)}}}
	}
	renderedObj := func(name, pool string) *mcfgv1.MachineConfig {
		return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "MachineConfigPool", Name: pool}}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.4.0"}}`)}}}
	}
	objs := []runtime.Object{
		poolObj("master", "rendered-master-cur"), poolObj("worker", "rendered-worker-cur"),
		input("00-master", "master", nil), input("00-worker", "worker", nil),
		input("99-kubens-worker", "worker", map[string]string{manifests.ManagedByLabel: manifests.ManagedByValue}),
		// ours, for a pool that is gone: disable must still see it
		input("99-kubens-infra", "infra", map[string]string{manifests.ManagedByLabel: manifests.ManagedByValue}),
		renderedObj("rendered-master-cur", "master"), renderedObj("rendered-worker-cur", "worker"), renderedObj("rendered-worker-node", "worker"),
	}
	for i := 0; i < 50; i++ {
		objs = append(objs, renderedObj(fmt.Sprintf("rendered-worker-old%02d", i), "worker"))
	}
	// Somebody else's config no pool selects (role label taken off):
	// status and wait need not read it, enable must see it.
	unselected := input("99-kubens-master", "master", nil)
	delete(unselected.Labels, role)
	objs = append(objs, unselected)
	mcfg := mcfgfake.NewSimpleClientset(objs...)
	scheme := metafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(scheme)
	var metaObjs []runtime.Object
	for _, o := range objs {
		if mc, ok := o.(*mcfgv1.MachineConfig); ok {
			metaObjs = append(metaObjs, &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "MachineConfig"},
				ObjectMeta: mc.ObjectMeta})
		}
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Annotations: map[string]string{
		mcp.CurrentConfigAnnotation: "rendered-worker-node", mcp.DesiredConfigAnnotation: "rendered-worker-cur"}}}
	c := &clusterClients{mcfg: mcfg, kube: kubefake.NewSimpleClientset(n), meta: metafake.NewSimpleMetadataClient(scheme, metaObjs...)}

	full, err := c.snapshot(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mcNames(full.MachineConfigs), "00-master,00-worker,99-kubens-infra,99-kubens-master,99-kubens-worker"; got != want {
		t.Errorf("snapshot MachineConfigs = %s, want %s", got, want)
	}
	s, err := c.inputSnapshot(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mcNames(s.MachineConfigs), "00-master,00-worker,99-kubens-infra,99-kubens-worker"; got != want {
		t.Errorf("inputSnapshot MachineConfigs = %s, want %s", got, want)
	}
	for _, a := range mcfg.Actions() {
		if g, ok := a.(clienttesting.GetAction); ok && g.GetName() != "99-kubens-master" {
			t.Errorf("unexpected request %v", a)
		}
	}
	mcfg.ClearActions()
	if err := c.addRenderedConfigs(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if got, want := mcNames(s.MachineConfigs), "00-master,00-worker,99-kubens-infra,99-kubens-worker,rendered-master-cur,rendered-worker-cur,rendered-worker-node"; got != want {
		t.Errorf("with rendered configs = %s, want %s", got, want)
	}
	for _, a := range mcfg.Actions() {
		if g, ok := a.(clienttesting.GetAction); !ok || strings.Contains(g.GetName(), "old") {
			t.Errorf("unexpected request %v", a)
		}
	}
	rep := mcp.Derive(s)
	if len(rep.Pools) != 2 || rep.Pools[1].Kubens != mcp.UnitDisabled || rep.Nodes[0].Kubens != mcp.UnitDisabled {
		t.Errorf("report %+v", rep)
	}
}

func mcNames(mcs []mcfgv1.MachineConfig) string {
	var out []string
	for _, mc := range mcs {
		out = append(out, mc.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
