//go:build !unit

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

func gone(obj client.Object) func() bool {
	return func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }
}

// goneOrGoing: deleted, or terminating behind a finalizer the controllers envtest lacks would
// remove (kubernetes.io/pvc-protection on claims).
func goneOrGoing(obj client.Object) bool {
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	return apierrors.IsNotFound(err) || (err == nil && !obj.GetDeletionTimestamp().IsZero())
}

// sessionObjects are the objects a resource named name owns in ns.
func sessionObjects(ns, name string) []client.Object {
	objs := []client.Object{&corev1.Pod{}, &coordinationv1.Lease{}, &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}}
	for _, o := range objs {
		o.SetNamespace(ns)
		o.SetName(name + sessionSuffix)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	pvc.SetNamespace(ns)
	pvc.SetName(name + storeSuffix)
	return append(objs, pvc)
}

// connectedSession makes the resource name whose session pod reported Connected as jid, and
// returns that pod.
func connectedSession(ns, name, jid string, mutate ...func(*whatsappv1alpha1.WhatsAppConnection)) *corev1.Pod {
	GinkgoHelper()
	newConnection(ns, name, mutate...)
	pod := sessionPod(ns, name)
	reportAsSession(ns, name, pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: jid})
	Eventually(phaseOf(ns, name)).Should(Equal(whatsappv1alpha1.PhaseConnected))
	return pod
}

// connectionGone: the resource is deleted, its finalizer released.
func connectionGone(ns, name string) func() bool {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.SetNamespace(ns)
	wac.SetName(name)
	return gone(wac)
}

var _ = Describe("deletion", func() {
	It("waits for the session to log out, then removes every object and the finalizer", func() {
		ns := newNamespace()
		pod := connectedSession(ns, "bye", "1888:4@s.whatsapp.net")

		Expect(k8sClient.Delete(ctx, get(ns, "bye"))).To(Succeed())
		Eventually(condition(ns, "bye", whatsappv1alpha1.ConditionReady)).Should(HaveField("Reason", whatsappv1alpha1.ReasonDeleting))
		Consistently(podUID(ns, "bye"), time.Second).Should(Equal(string(pod.UID)), "the session stays up to log out")

		reportAsSession(ns, "bye", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionLoggedOut})
		Eventually(connectionGone(ns, "bye"), testLogoutTimeout/2).Should(BeTrue(), "released as soon as the session reports LoggedOut")
		for _, obj := range sessionObjects(ns, "bye") {
			Expect(goneOrGoing(obj)).To(BeTrue(), "%T %s", obj, obj.GetName())
		}
	})

	It("releases the finalizer with a Warning event when the session never logs out", func() {
		ns := newNamespace()
		connectedSession(ns, "stuck", "1999:5@s.whatsapp.net")

		start := time.Now()
		Expect(k8sClient.Delete(ctx, get(ns, "stuck"))).To(Succeed())
		Eventually(connectionGone(ns, "stuck"), 3*testLogoutTimeout).Should(BeTrue())
		Expect(time.Since(start)).To(BeNumerically(">=", testLogoutTimeout-time.Second))
		Eventually(warningEvents(ns, "stuck")).Should(ContainElement("LogoutTimedOut"))
	})

	It("does not wait when logoutOnDelete is false or the device was never paired", func() {
		ns := newNamespace()
		connectedSession(ns, "keep", "1333:6@s.whatsapp.net", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.LogoutOnDelete = ptr.To(false) })
		newConnection(ns, "fresh")
		sessionPod(ns, "fresh")

		for _, name := range []string{"keep", "fresh"} {
			Expect(k8sClient.Delete(ctx, get(ns, name))).To(Succeed())
		}
		for _, name := range []string{"keep", "fresh"} {
			Eventually(connectionGone(ns, name), testLogoutTimeout-time.Second).Should(BeTrue(), name)
		}
	})
})

var _ = Describe("deletion, what is left behind", func() {
	It("says in a Warning that a suspended resource's device could not be logged out", func() {
		ns := newNamespace()
		connectedSession(ns, "asleep", "1444:7@s.whatsapp.net")
		update(ns, "asleep", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Suspend = true })
		Eventually(phaseOf(ns, "asleep")).Should(Equal(whatsappv1alpha1.PhaseSuspended))
		Eventually(podUID(ns, "asleep")).Should(BeEmpty())

		Expect(k8sClient.Delete(ctx, get(ns, "asleep"))).To(Succeed())
		Eventually(connectionGone(ns, "asleep")).Should(BeTrue())
		Eventually(warningMessages(ns, "asleep", "LogoutNotPossible")).Should(ContainElement(
			ContainSubstring("spec.suspend is true")))
	})

	It("deletes the resource's metric series with it", func() {
		ns := newNamespace()
		newConnection(ns, "counted")
		sessionPod(ns, "counted")
		Eventually(seriesOf(ns, "counted")).ShouldNot(BeZero())
		Expect(k8sClient.Delete(ctx, get(ns, "counted"))).To(Succeed())
		Eventually(seriesOf(ns, "counted")).Should(BeZero())
		Consistently(seriesOf(ns, "counted"), time.Second).Should(BeZero())
	})
})

// warningMessages lists the messages of Warning events with that reason about a resource.
func warningMessages(ns, name, reason string) func() []string {
	return func() []string {
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var msgs []string
		for _, e := range list.Items {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == name && e.Reason == reason {
				msgs = append(msgs, e.Message)
			}
		}
		return msgs
	}
}

// seriesOf counts the manager's metric series labelled with the resource.
func seriesOf(ns, name string) func() int {
	return func() int {
		families, err := metrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		n := 0
		for _, f := range families {
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["namespace"] == ns && labels["name"] == name {
					n++
				}
			}
		}
		return n
	}
}
