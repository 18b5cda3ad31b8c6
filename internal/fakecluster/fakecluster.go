// Package fakecluster is a fake clientset for unit tests of the per-node
// pod engine and the commands on it.
package fakecluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// New is a fake clientset that behaves enough like an API server for the
// engine: it fills generateName and stamps a resourceVersion on every write
// (the engine's watch refuses objects without one).
func New() *fake.Clientset {
	c := fake.NewClientset()
	var mu sync.Mutex
	rv, names := 1, 0
	stamp := func(a k8stesting.Action) (bool, runtime.Object, error) {
		// Creates and updates alike carry the object written.
		w, ok := a.(interface{ GetObject() runtime.Object })
		if !ok {
			return false, nil, nil
		}
		m, err := meta.Accessor(w.GetObject())
		if err != nil {
			return false, nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		rv++
		m.SetResourceVersion(strconv.Itoa(rv))
		if m.GetName() == "" && m.GetGenerateName() != "" {
			names++
			m.SetName(fmt.Sprintf("%sx%04d", m.GetGenerateName(), names))
		}
		return false, nil, nil
	}
	c.PrependReactor("create", "*", stamp)
	c.PrependReactor("update", "*", stamp)
	return c
}

// WaitPods returns the pods of c, by name, once there are at least n of
// them; it fails the test after 10 s.
func WaitPods(t testing.TB, c kubernetes.Interface, n int) map[string]*corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := c.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) >= n {
			pods := map[string]*corev1.Pod{}
			for i := range list.Items {
				pods[list.Items[i].Name] = &list.Items[i]
			}
			return pods
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pod(s) after 10s, want %d", len(list.Items), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
