//go:build !unit

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// passesOf reads the per-resource reconcile counter.
func passesOf(ns, name string) func() float64 {
	return func() float64 { return testutil.ToFloat64(reconcilePasses.WithLabelValues(ns, name)) }
}

// quietPasses waits until the resource's pass counter has stood still for a second, and
// returns it.
func quietPasses(ns, name string) float64 {
	var quiet float64
	Eventually(func(g Gomega) {
		quiet = passesOf(ns, name)()
		g.Consistently(passesOf(ns, name), time.Second, 100*time.Millisecond).Should(Equal(quiet))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	return quiet
}

func conflictReason(ns, name string) func() string {
	return func() string {
		c := condition(ns, name, whatsappv1alpha1.ConditionConflict)()
		if c.Status != metav1.ConditionTrue {
			return ""
		}
		return c.Reason
	}
}

func requestReconnect(ns, name, token string) {
	update(ns, name, func(w *whatsappv1alpha1.WhatsAppConnection) {
		if w.Annotations == nil {
			w.Annotations = map[string]string{}
		}
		w.Annotations[whatsappv1alpha1.ReconnectRequestedAtAnnotation] = token
	})
}

var _ = Describe("Conflict: ResourceNotOwned", func() {
	// The cache holds only objects with the connection label: a squatter without it is found by
	// the failed create and looked at again every notOwnedRecheck; one with it, by the cache.
	DescribeTable("never adopts or overwrites an object it does not control, and resumes when it is gone",
		func(obj client.Object, suffix string) {
			ns := newNamespace()
			obj.SetNamespace(ns)
			obj.SetName("squat" + suffix)
			if obj.GetLabels() == nil {
				obj.SetLabels(map[string]string{"owner": "someone-else"})
			}
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			before := obj.GetResourceVersion()

			newConnection(ns, "squat")
			Eventually(conflictReason(ns, "squat")).Should(Equal(whatsappv1alpha1.ReasonResourceNotOwned))
			Expect(condition(ns, "squat", whatsappv1alpha1.ConditionConflict)().Message).To(ContainSubstring(ns + "/squat" + suffix))
			Expect(phaseOf(ns, "squat")()).To(Equal(whatsappv1alpha1.PhaseConflict))
			Eventually(warningEvents(ns, "squat")).Should(ContainElement(whatsappv1alpha1.ReasonResourceNotOwned))

			Consistently(func() string {
				Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
				return obj.GetResourceVersion()
			}, 2*time.Second).Should(Equal(before), "the foreign object is never modified")
			Expect(obj.GetOwnerReferences()).To(BeEmpty())
			if _, isPod := obj.(*corev1.Pod); !isPod {
				Expect(podUID(ns, "squat")()).To(BeEmpty(), "no session pod while halted")
			}

			// Claims carry kubernetes.io/pvc-protection, which no controller in envtest removes.
			obj.SetFinalizers(nil)
			Expect(k8sClient.Update(ctx, obj)).To(Succeed())
			Expect(k8sClient.Delete(ctx, obj)).To(Succeed())
			Eventually(conflictReason(ns, "squat")).WithTimeout(notOwnedRecheck + 5*time.Second).Should(BeEmpty())
			Eventually(func() bool {
				pod := &corev1.Pod{}
				return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "squat-session"}, pod) == nil && len(pod.OwnerReferences) == 1
			}).Should(BeTrue())
		},
		Entry("Pod", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "busybox"}}}}, "-session"),
		Entry("PersistentVolumeClaim", &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *resourceQuantity("1Gi")}},
		}}, "-store"),
		Entry("Lease", &coordinationv1.Lease{}, "-session"),
		Entry("ServiceAccount", &corev1.ServiceAccount{}, "-session"),
		Entry("Role", &rbacv1.Role{}, "-session"),
		Entry("RoleBinding", &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "x"}}, "-session"),
		Entry("Pod with the connection label", &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{whatsappv1alpha1.ConnectionLabel: "squat"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "busybox"}}}}, "-session"),
		Entry("Lease with the connection label", &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{whatsappv1alpha1.ConnectionLabel: "squat"}}}, "-session"),
	)
})

var _ = Describe("Conflict: an own object that lost its label", func() {
	It("halts with a message that says so, and resumes when the label is back", func() {
		ns := newNamespace()
		newConnection(ns, "bare")
		pod := sessionPod(ns, "bare")
		delete(pod.Labels, whatsappv1alpha1.ConnectionLabel)
		Expect(k8sClient.Update(ctx, pod)).To(Succeed())

		Eventually(conflictReason(ns, "bare")).Should(Equal(whatsappv1alpha1.ReasonResourceNotOwned))
		Expect(condition(ns, "bare", whatsappv1alpha1.ConditionConflict)().Message).To(ContainSubstring("lost its label"))
		Expect(podUID(ns, "bare")()).To(Equal(string(pod.UID)), "the pod is neither replaced nor doubled")

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		pod.Labels[whatsappv1alpha1.ConnectionLabel] = "bare"
		Expect(k8sClient.Update(ctx, pod)).To(Succeed())
		Eventually(conflictReason(ns, "bare")).WithTimeout(notOwnedRecheck + 5*time.Second).Should(BeEmpty())
	})
})

var _ = Describe("Conflict: duplicate claims", func() {
	It("halts the younger of two resources with one phone number and resumes it when the older goes", func() {
		ns := newNamespace()
		phone := func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Pairing.PhoneNumber = "+14155550100" }
		newConnection(ns, "older", phone)
		sessionPod(ns, "older")
		// creationTimestamp has a one-second resolution; the tie-break is the name, and "younger"
		// sorts after "older" either way.
		newConnection(ns, "younger", phone)

		Eventually(conflictReason(ns, "younger")).Should(Equal(whatsappv1alpha1.ReasonDuplicatePhoneNumber))
		Expect(condition(ns, "younger", whatsappv1alpha1.ConditionConflict)().Message).To(ContainSubstring("the older WhatsAppConnection older"))
		Consistently(podUID(ns, "younger"), 2*time.Second).Should(BeEmpty())
		Expect(conflictReason(ns, "older")()).To(BeEmpty())

		Expect(k8sClient.Delete(ctx, get(ns, "older"))).To(Succeed())
		Eventually(conflictReason(ns, "younger")).Should(BeEmpty())
		Eventually(podUID(ns, "younger")).ShouldNot(BeEmpty())
	})

	It("stops the younger session when two resources report the same device", func() {
		ns1 := newNamespace()
		ns2 := ns1 // one namespace: claims are compared within it (the tie-break on equal creation seconds is the name)
		newConnection(ns1, "first")
		first := sessionPod(ns1, "first")
		reportAsSession(ns1, "first", first, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "1666:3@s.whatsapp.net"})
		Eventually(phaseOf(ns1, "first")).Should(Equal(whatsappv1alpha1.PhaseConnected))

		newConnection(ns2, "later-copy")
		copyPod := sessionPod(ns2, "later-copy")
		reportAsSession(ns2, "later-copy", copyPod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "1666:3@s.whatsapp.net"})

		Eventually(conflictReason(ns2, "later-copy")).Should(Equal(whatsappv1alpha1.ReasonDuplicateDevice))
		Eventually(podUID(ns2, "later-copy")).Should(BeEmpty(), "the younger session is stopped")
		Consistently(podUID(ns2, "later-copy"), 2*time.Second).Should(BeEmpty())
		Expect(podUID(ns1, "first")()).To(Equal(string(first.UID)))
	})
})

var _ = Describe("Conflict: LeaseHeldElsewhere", func() {
	It("halts while a foreign identity holds the Lease and resumes when it lets go", func() {
		ns := newNamespace()
		newConnection(ns, "lh")
		sessionPod(ns, "lh")
		lease := &coordinationv1.Lease{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lh-session"}, lease)).To(Succeed())
		lease.Spec.HolderIdentity = ptr.To("rogue-process")
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		Expect(k8sClient.Update(ctx, lease)).To(Succeed())

		Eventually(conflictReason(ns, "lh")).Should(Equal(whatsappv1alpha1.ReasonLeaseHeldElsewhere))
		Expect(condition(ns, "lh", whatsappv1alpha1.ConditionConflict)().Message).To(ContainSubstring("rogue-process"))

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(lease), lease)).To(Succeed())
		lease.Spec.HolderIdentity = ptr.To("")
		Expect(k8sClient.Update(ctx, lease)).To(Succeed())
		Eventually(conflictReason(ns, "lh")).Should(BeEmpty())
	})

	It("lifts the halt when the foreign Lease expires, with no other event", func() {
		ns := newNamespace()
		newConnection(ns, "lx")
		sessionPod(ns, "lx")
		holdLease(ns, "lx", "rogue-process", 2)
		Eventually(conflictReason(ns, "lx")).Should(Equal(whatsappv1alpha1.ReasonLeaseHeldElsewhere))
		Eventually(conflictReason(ns, "lx"), 10*time.Second).Should(BeEmpty(),
			"unchanged for its 2 s by the controller's clock, the Lease is expired and the session may take it")
	})
})

var _ = Describe("Conflict: StreamReplaced and Degraded halts", func() {
	It("halts on Replaced: no requeue, no reconcile work, no new pod; the reconnect token resumes once", func() {
		ns := newNamespace()
		newConnection(ns, "rep")
		pod := sessionPod(ns, "rep")
		reportAsSession(ns, "rep", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced, JID: "1777:2@s.whatsapp.net"})

		Eventually(conflictReason(ns, "rep")).Should(Equal(whatsappv1alpha1.ReasonStreamReplaced))
		Expect(phaseOf(ns, "rep")()).To(Equal(whatsappv1alpha1.PhaseConflict))
		Eventually(warningEvents(ns, "rep")).Should(ContainElement(whatsappv1alpha1.ReasonStreamReplaced))

		// The session keeps its pod (and Lease); if the pod dies anyway, no new one is made.
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Eventually(podUID(ns, "rep")).Should(BeEmpty())
		// The pod's deletion is an event, so a pass, which records that no pod runs; then quiet.
		Eventually(func() string { return get(ns, "rep").Status.SessionPod }).Should(BeEmpty())
		settled := quietPasses(ns, "rep")
		Consistently(passesOf(ns, "rep"), 10*time.Second, 500*time.Millisecond).Should(Equal(settled),
			"a halted resource causes no reconcile work")
		Expect(podUID(ns, "rep")()).To(BeEmpty())
		Expect(warningEvents(ns, "rep")()).To(HaveLen(1), "one Warning event per transition")

		requestReconnect(ns, "rep", "2026-11-28T10:00:00Z")
		Eventually(podUID(ns, "rep")).ShouldNot(BeEmpty())
		Eventually(conflictReason(ns, "rep")).Should(BeEmpty())
		Expect(get(ns, "rep").Status.LastHandledReconnectAt).To(Equal("2026-11-28T10:00:00Z"))
	})

	It("stays quiet while the halted session keeps renewing its Lease", func() {
		ns := newNamespace()
		newConnection(ns, "renew")
		pod := sessionPod(ns, "renew")
		lease := &coordinationv1.Lease{}
		renew := func() {
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "renew-session"}, lease)).To(Succeed())
			lease.Spec.HolderIdentity = ptr.To("renew-session")
			lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			Expect(k8sClient.Update(ctx, lease)).To(Succeed())
		}
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "renew-session"}, lease) }).Should(Succeed())
		renew()
		reportAsSession(ns, "renew", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced})
		Eventually(conflictReason(ns, "renew")).Should(Equal(whatsappv1alpha1.ReasonStreamReplaced))
		settled := quietPasses(ns, "renew")

		for range 8 { // a renewal every half second, as the session's elector would (faster)
			renew()
			Consistently(passesOf(ns, "renew"), 500*time.Millisecond, 100*time.Millisecond).Should(Equal(settled))
		}
	})

	It("restarts a halted live session on the reconnect token, and resumes on a spec change", func() {
		ns := newNamespace()
		newConnection(ns, "rep2")
		pod := sessionPod(ns, "rep2")
		reportAsSession(ns, "rep2", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced})
		Eventually(conflictReason(ns, "rep2")).Should(Equal(whatsappv1alpha1.ReasonStreamReplaced))

		requestReconnect(ns, "rep2", "t1")
		Eventually(podUID(ns, "rep2")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))), "a fresh session makes the new attempt")
		Eventually(conflictReason(ns, "rep2")).Should(BeEmpty())

		pod = sessionPod(ns, "rep2")
		reportAsSession(ns, "rep2", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced})
		Eventually(conflictReason(ns, "rep2")).Should(Equal(whatsappv1alpha1.ReasonStreamReplaced))
		update(ns, "rep2", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.DeviceName = "new-name" })
		Eventually(conflictReason(ns, "rep2")).Should(BeEmpty())
		Eventually(podUID(ns, "rep2")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
	})

	It("halts as Degraded when the session reports maxAttempts failed reconnects", func() {
		ns := newNamespace()
		newConnection(ns, "deg", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Reconnect.MaxAttempts = 2 })
		pod := sessionPod(ns, "deg")
		reportAsSession(ns, "deg", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionDisconnected, ReconnectAttempts: 1})
		Eventually(phaseOf(ns, "deg")).Should(Equal(whatsappv1alpha1.PhaseDisconnected))

		reportAsSession(ns, "deg", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionDisconnected, ReconnectAttempts: 2, Message: "dial tcp: refused"})
		Eventually(condition(ns, "deg", whatsappv1alpha1.ConditionDegraded)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", whatsappv1alpha1.ReasonReconnectLimit)))
		Expect(phaseOf(ns, "deg")()).To(Equal(whatsappv1alpha1.PhaseDegraded))

		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Consistently(podUID(ns, "deg"), 2*time.Second).Should(BeEmpty())
		requestReconnect(ns, "deg", "again")
		Eventually(podUID(ns, "deg")).ShouldNot(BeEmpty())
		Eventually(condition(ns, "deg", whatsappv1alpha1.ConditionDegraded)).Should(HaveField("Status", metav1.ConditionFalse))
	})
})
