//go:build !unit

package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// podCensus watches every pod in a namespace and records, per resource, the most session pods
// that ever existed at once, as the API server's own event stream tells it.
type podCensus struct {
	mu   sync.Mutex
	live map[string]map[string]bool // resource -> pod UIDs
	max  map[string]int
}

func watchPods(ctx context.Context, ns string) *podCensus {
	c := &podCensus{live: map[string]map[string]bool{}, max: map[string]int{}}
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns))
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			owner := pod.Labels[whatsappv1alpha1.ConnectionLabel]
			c.mu.Lock()
			if c.live[owner] == nil {
				c.live[owner] = map[string]bool{}
			}
			if ev.Type == watch.Deleted {
				delete(c.live[owner], string(pod.UID))
			} else {
				c.live[owner][string(pod.UID)] = true
			}
			c.max[owner] = max(c.max[owner], len(c.live[owner]))
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *podCensus) maxAtOnce() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.max {
		out[k] = v
	}
	return out
}

var _ = Describe("two managers and concurrent reconciles", func() {
	It("never create two pods for one resource through pod deletions, failures and spec changes", func() {
		mgrCtx, stopSecond := context.WithCancel(ctx)
		defer stopSecond()
		startManager(mgrCtx) // a second, independent manager with MaxConcurrentReconciles 4

		ns := newNamespace()
		census := watchPods(mgrCtx, ns)
		names := []string{"c0", "c1", "c2", "c3", "c4"}
		for _, n := range names {
			newConnection(ns, n)
		}
		for round := range 6 {
			for _, n := range names {
				pod := sessionPod(ns, n)
				switch round % 3 {
				case 0:
					Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, pod))).To(Succeed())
				case 1:
					setPodPhase(pod, corev1.PodFailed, 1)
				case 2:
					update(ns, n, func(w *whatsappv1alpha1.WhatsAppConnection) {
						w.Spec.Session.NodeSelector = map[string]string{"round": fmt.Sprint(round)}
					})
				}
			}
			for _, n := range names {
				Eventually(func() bool {
					pod := &corev1.Pod{}
					err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: n + sessionSuffix}, pod)
					return err == nil && pod.DeletionTimestamp.IsZero() && pod.Status.Phase != corev1.PodFailed
				}, 15*time.Second).Should(BeTrue(), "resource %s gets its pod back in round %d", n, round)
			}
		}
		for _, n := range names {
			Expect(census.maxAtOnce()).To(HaveKeyWithValue(n, 1), "resource %s never had two pods at once", n)
		}
	})
})
