//go:build !unit

package session_test

import (
	"context"
	"path/filepath"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
	"github.com/waoperator/whatsapp-operator/internal/session"
)

// The controller and the session together: the controller creates the Lease, RBAC and pod; a
// runtime runs as that pod (its name and UID, its ServiceAccount, its Role); the controller turns
// what the session reports into phase and conditions. envtest has no kubelet, so the test starts
// the runtime itself, as the local pod runner will.
var _ = Describe("controller and session end to end", func() {
	It("shows the QR while pairing, Connected with the JID after a scan, and Conflict when a rogue client replaces the session", func() {
		ns := "e2e-" + metav1.Now().Format("150405")
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		startController(ns)

		wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
		Expect(admin.Create(ctx, wac)).To(Succeed())
		c, _ := runSessionPod(wac)

		phase := func() whatsappv1alpha1.Phase { return c.get().Status.Phase }
		cond := func(typ string) func() metav1.Condition {
			return func() metav1.Condition {
				for _, cd := range c.get().Status.Conditions {
					if cd.Type == typ {
						return cd
					}
				}
				return metav1.Condition{}
			}
		}

		By("pairing: the QR code is in status and the controller says Pairing")
		Eventually(phase, timeout, poll).Should(Equal(whatsappv1alpha1.PhasePairing))
		qr := c.status().QRCode
		Expect(qr).NotTo(BeEmpty())
		Expect(cond(whatsappv1alpha1.ConditionPaired)()).To(HaveField("Status", metav1.ConditionFalse))

		By("a phone scans: Connected, Ready, Paired, and the JID as the account")
		jid, err := srv.Phone(nextPhone()).ScanQR(ctx, qr)
		Expect(err).NotTo(HaveOccurred())
		Eventually(phase, timeout, poll).Should(Equal(whatsappv1alpha1.PhaseConnected))
		Expect(cond(whatsappv1alpha1.ConditionReady)()).To(HaveField("Status", metav1.ConditionTrue))
		Expect(cond(whatsappv1alpha1.ConditionPaired)()).To(HaveField("Status", metav1.ConditionTrue))
		Expect(c.get().Status.Account).To(Equal(jid.String()))

		By("a rogue client with a copy of the store: Conflict/StreamReplaced, and no further logins")
		connectRogue(c)

		Eventually(phase, timeout, poll).Should(Equal(whatsappv1alpha1.PhaseConflict))
		Expect(cond(whatsappv1alpha1.ConditionConflict)()).To(HaveField("Reason", whatsappv1alpha1.ReasonStreamReplaced))
		Expect(cond(whatsappv1alpha1.ConditionReady)()).To(HaveField("Status", metav1.ConditionFalse))
		logins := srv.Device(jid).Stats().Logins
		Consistently(func() int { return srv.Device(jid).Stats().Logins }, 3*retryPeriod, poll).Should(Equal(logins))
		Expect(srv.Device(jid).Stats().MaxLive).To(BeNumerically("<=", 1))
	})
})

// The QR code is readable by whoever may read the resource. With spec.pairing.phoneNumber set,
// a scan by another account's phone must not leave the device linked to that account.
var _ = Describe("a pairing by another account than spec.pairing.phoneNumber", func() {
	It("logs that device out, records Conflict UnexpectedAccount, and pairs the right phone after", func() {
		ns := "hijack-" + metav1.Now().Format("150405")
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		startController(ns)
		owner, intruder := nextPhone(), nextPhone()
		wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
		wac.Spec.Pairing.PhoneNumber = owner
		Expect(admin.Create(ctx, wac)).To(Succeed())
		c, pod := runSessionPod(wac)
		conflict := func() metav1.Condition {
			for _, cd := range c.get().Status.Conditions {
				if cd.Type == whatsappv1alpha1.ConditionConflict {
					return cd
				}
			}
			return metav1.Condition{}
		}

		By("another account's phone scans the QR code")
		Eventually(func() string { return c.status().QRCode }, timeout, poll).ShouldNot(BeEmpty())
		var stolen types.JID
		var err error
		Eventually(func() error { // a code can rotate between the read and the scan
			stolen, err = srv.Phone(intruder).ScanQR(ctx, c.status().QRCode)
			return err
		}, timeout, poll).Should(Succeed())
		Eventually(conflict, timeout, poll).Should(And(
			HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", whatsappv1alpha1.ReasonUnexpectedAccount)))
		Eventually(func() bool { return srv.Device(stolen).Stats().Removed }, timeout, poll).Should(BeTrue(), "that device is logged out")
		Expect(c.status().JID).To(BeEmpty())
		Expect(c.status().UnexpectedAccount).To(Equal("+" + stolen.User))

		By("the QR flow stays available: a new code, and the right phone pairs")
		Eventually(func() string { return c.status().QRCode }, timeout, poll).ShouldNot(BeEmpty())
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})).To(Succeed(), "the session pod stays")
		var jid types.JID
		Eventually(func() error {
			jid, err = srv.Phone(owner).ScanQR(ctx, c.status().QRCode)
			return err
		}, timeout, poll).Should(Succeed())
		Eventually(func() whatsappv1alpha1.Phase { return c.get().Status.Phase }, timeout, poll).Should(Equal(whatsappv1alpha1.PhaseConnected))
		Expect(c.status().JID).To(Equal(jid.String()))
		Expect(conflict()).To(HaveField("Status", metav1.ConditionFalse))
		Expect(srv.Device(jid).Stats().Removed).To(BeFalse())
	})
})

// startController runs the operator's reconciler, watching only ns so that it leaves the other
// specs' hand-made objects alone.
func startController(ns string, logger ...logr.Logger) {
	mgrCtx, stop := context.WithCancel(ctx)
	DeferCleanup(stop)
	mgr, err := controllers.NewManager(mgrCtx, cfg, controllers.ManagerOptions{
		Reconciler: controllers.Options{
			Session: controllers.SessionConfig{
				Image: "example.com/whatsapp-operator:test", LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			},
			LogoutTimeout: timeout, CrashBackoff: retryPeriod, MaxConcurrentReconciles: 2,
		},
		Namespaces: []string{ns},
		Tune: func(o *ctrl.Options) {
			o.Controller = config.Controller{SkipNameValidation: ptrTo(true)}
			if len(logger) > 0 {
				o.Logger = logger[0]
			}
		},
	})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
}

func ptrTo[T any](v T) *T { return &v }

// runSessionPod waits for the session pod the controller creates for wac and runs the session
// runtime as that pod: its name and UID (as the downward API gives them in a cluster), its
// ServiceAccount and its Lease.
func runSessionPod(wac *whatsappv1alpha1.WhatsAppConnection) (*connection, *corev1.Pod) {
	name := wac.Name + "-session"
	pod := &corev1.Pod{}
	Eventually(func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: wac.Namespace, Name: name}, pod)
	}, timeout, poll).Should(Succeed())
	c := &connection{name: wac.Name, namespace: wac.Namespace, lease: name,
		storePath: filepath.Join(GinkgoT().TempDir(), "device.db"),
		user:      "system:serviceaccount:" + wac.Namespace + ":" + name}
	c.start(pod.Name, session.StoreConfig{}, func(sc *session.Config) { sc.PodUID = string(pod.UID) })
	return c, pod
}
