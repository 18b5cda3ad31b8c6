package benefit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/oc-kubens/oc-kubens/test/harness/images"
)

const (
	churnLabel  = "oc-kubens.io/benefit-churn"
	churnSecret = "benefit-secret"
	churnConfig = "benefit-config"
)

// churnPod is one pod of the workload: the volume kinds a typical
// application pod carries (secret, configmap, emptyDir, and a projected
// volume like the service account token's, here with a configmap, a secret
// and the downward API), each a mount or several on the node, for a
// container that sleeps and exits. Host network: the local cluster has no
// pod network. No scheduler runs, so the pod names its node.
func churnPod(name, nodeName string, sleep time.Duration) *corev1.Pod {
	mount := func(name, path string) corev1.VolumeMount {
		return corev1.VolumeMount{Name: name, MountPath: path, ReadOnly: name != "scratch"}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{churnLabel: "true"}},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			HostNetwork:                   true,
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			// A pod that never gets going must not hold its slot forever.
			ActiveDeadlineSeconds: ptr.To[int64](120),
			Containers: []corev1.Container{{
				Name:            "sleep",
				Image:           images.ToolsImage,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"sleep", fmt.Sprint(int(sleep.Seconds()))},
				VolumeMounts: []corev1.VolumeMount{
					mount("secret", "/vol/secret"), mount("config", "/vol/config"),
					mount("scratch", "/vol/scratch"), mount("projected", "/vol/projected"),
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: churnSecret}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: churnConfig}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: churnConfig}}},
						{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: churnSecret}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
							{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
						}}},
					}}}},
			},
		},
	}
}

// setupNamespace creates the workload's namespace, secret and configmap, and
// waits for the namespace's default ServiceAccount, without which the API
// server refuses pods.
func setupNamespace(ctx context.Context, kube kubernetes.Interface, ns string) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: churnSecret},
		StringData: map[string]string{"password": "not-a-secret", "token": "churn"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: churnConfig},
		Data: map[string]string{"app.conf": "mode=churn\n", "level": "info"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s: no default ServiceAccount: %w", ns, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// churn keeps InFlight pods on a node: every pod that ends is deleted, and
// every pod that is gone is replaced by a new one. In flight means the Pod
// object exists, from its creation to its removal from the API.
type churn struct {
	kube     kubernetes.Interface
	ns, node string
	inFlight int
	sleep    time.Duration
	logf     func(string, ...any)

	live                       atomic.Int64
	created, succeeded, failed atomic.Int64
	createErrors               atomic.Int64
	seq                        atomic.Int64

	mu       sync.Mutex
	born     map[string]time.Time // pod name -> creation
	lifetime time.Duration        // summed over pods gone, creation to removal
	gone     int

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start begins the loop; stop ends it.
func (c *churn) start(ctx context.Context) error {
	c.born = map[string]time.Time{}
	list, err := c.kube.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: churnLabel})
	if err != nil {
		return err
	}
	if n := len(list.Items); n > 0 {
		return fmt.Errorf("%d churn pods left from before", n)
	}
	ctx, c.cancel = context.WithCancel(ctx)
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			lo.LabelSelector = churnLabel
			return c.kube.CoreV1().Pods(c.ns).Watch(ctx, lo)
		},
	})
	if err != nil {
		c.cancel()
		return err
	}
	slots := make(chan struct{}, c.inFlight)
	for range c.inFlight {
		slots <- struct{}{}
	}
	c.done.Add(2)
	go func() {
		defer c.done.Done()
		defer w.Stop()
		c.watch(ctx, w, slots)
	}()
	go func() {
		defer c.done.Done()
		c.create(ctx, slots)
	}()
	return nil
}

// create makes a pod for every free slot. A failed create gives its slot
// back after a pause, so a hiccup of the API server slows the loop down
// instead of stopping it.
func (c *churn) create(ctx context.Context, slots chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		name := fmt.Sprintf("churn-%05d", c.seq.Add(1))
		c.mu.Lock()
		c.born[name] = time.Now()
		c.mu.Unlock()
		c.live.Add(1)
		if _, err := c.kube.CoreV1().Pods(c.ns).Create(ctx, churnPod(name, c.node, c.sleep), metav1.CreateOptions{}); err != nil {
			c.live.Add(-1)
			c.mu.Lock()
			delete(c.born, name)
			c.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			if c.createErrors.Add(1) <= 3 {
				c.logf("churn: create %s: %v", name, err)
			}
			time.AfterFunc(time.Second, func() { slots <- struct{}{} })
			continue
		}
		c.created.Add(1)
	}
}

// watch deletes the pods that ended and frees the slots of those gone.
func (c *churn) watch(ctx context.Context, w watch.Interface, slots chan struct{}) {
	deleting := map[string]bool{}
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-w.ResultChan():
			if !ok {
				return
			}
		}
		pod, isPod := ev.Object.(*corev1.Pod)
		if !isPod {
			continue
		}
		switch {
		case ev.Type == watch.Deleted:
			delete(deleting, pod.Name)
			c.mu.Lock()
			born, known := c.born[pod.Name]
			if known {
				delete(c.born, pod.Name)
				c.lifetime += time.Since(born)
				c.gone++
			}
			c.mu.Unlock()
			if known {
				c.live.Add(-1)
				slots <- struct{}{}
			}
		case deleting[pod.Name] || pod.DeletionTimestamp != nil:
		case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
			if pod.Status.Phase == corev1.PodSucceeded {
				c.succeeded.Add(1)
			} else {
				c.failed.Add(1)
				if c.failed.Load() <= 3 {
					c.logf("churn: pod %s failed: %s %s", pod.Name, pod.Status.Reason, pod.Status.Message)
				}
			}
			deleting[pod.Name] = true
			// An ended pod is removed from the API at once (the API
			// server gives terminal pods no grace period); the kubelet
			// then tears its volumes down.
			go func(name string) {
				err := c.kube.CoreV1().Pods(c.ns).Delete(ctx, name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
					c.logf("churn: delete %s: %v", name, err)
				}
			}(pod.Name)
		}
	}
}

// counters is a snapshot of the loop's counts.
type counters struct {
	Created, Succeeded, Failed, CreateErrors int64
	Gone                                     int
	Lifetime                                 time.Duration
}

func (c *churn) counters() counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counters{Created: c.created.Load(), Succeeded: c.succeeded.Load(), Failed: c.failed.Load(),
		CreateErrors: c.createErrors.Load(), Gone: c.gone, Lifetime: c.lifetime}
}

func (c counters) sub(o counters) counters {
	return counters{Created: c.Created - o.Created, Succeeded: c.Succeeded - o.Succeeded, Failed: c.Failed - o.Failed,
		CreateErrors: c.CreateErrors - o.CreateErrors, Gone: c.Gone - o.Gone, Lifetime: c.Lifetime - o.Lifetime}
}

// stop ends the loop and removes every churn pod at once (no grace: their
// containers only sleep), then waits until the kubelet has let go of them
// all, so the next phase starts from an idle node.
func (c *churn) stop(ctx context.Context, podsGone func(context.Context) error) error {
	c.cancel()
	c.done.Wait()
	err := c.kube.CoreV1().Pods(c.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)},
		metav1.ListOptions{LabelSelector: churnLabel})
	if err != nil {
		return err
	}
	return podsGone(ctx)
}
