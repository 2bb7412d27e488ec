//go:build !unit

package session_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	timeout = 20 * time.Second
	poll    = 50 * time.Millisecond
)

var phoneSeq int

func nextPhone() string {
	phoneSeq++
	return fmt.Sprintf("+1555%07d", phoneSeq)
}

func state(c *connection) func() whatsappv1alpha1.SessionState {
	return func() whatsappv1alpha1.SessionState { return c.status().State }
}

// pair scans the first QR code s publishes and waits for s to report Connected.
func pair(c *connection, s *runningSession) types.JID {
	GinkgoHelper()
	var qr string
	Eventually(func(g Gomega) {
		st := c.status()
		g.Expect(st.Holder).To(Equal(s.holder()))
		g.Expect(st.QRCode).NotTo(BeEmpty())
		qr = st.QRCode
	}, timeout, poll).Should(Succeed())
	jid, err := srv.Phone(nextPhone()).ScanQR(ctx, qr)
	Expect(err).NotTo(HaveOccurred())
	Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionConnected))
	Expect(c.status().JID).To(Equal(jid.String()))
	return jid
}

// connectRogue logs in a second client with a copy of c's device store: the seed's "two
// instances with the same session files".
func connectRogue(c *connection) {
	GinkgoHelper()
	rogueStore, err := whatsapp.OpenStore(ctx, session.StoreConfig{Type: "sqlite", SQLitePath: c.storePath}, nil)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(rogueStore.Close)
	dev, err := rogueStore.GetFirstDevice(ctx)
	Expect(err).NotTo(HaveOccurred())
	rogue := whatsmeow.NewClient(dev, nil)
	Expect(srv.ConfigureClient(rogue)).To(Succeed())
	Expect(rogue.Connect()).To(Succeed())
	DeferCleanup(rogue.Disconnect)
}

var _ = Describe("session runtime with whatsmeow against fakewa", func() {
	It("publishes rotating QR codes, connects on a scan, writes nothing while idle, and logs back in after a restart without a QR", func() {
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{})

		var first whatsappv1alpha1.ConnectionStatus
		Eventually(func(g Gomega) {
			first = c.status()
			g.Expect(first.State).To(Equal(whatsappv1alpha1.SessionPairing))
			g.Expect(first.QRCode).NotTo(BeEmpty())
		}, timeout, poll).Should(Succeed())
		Expect(first.Holder).To(Equal(s.holder()))
		Expect(first.QRCodeTerminal).To(HavePrefix("\n"))
		Expect(first.QRExpiresAt).NotTo(BeNil())
		Eventually(func() string { return c.status().QRCode }, timeout, poll).ShouldNot(Equal(first.QRCode), "the code rotates")

		jid := pair(c, s)
		st := c.status()
		Expect(st.LastConnectedAt).NotTo(BeNil())
		Expect(st.Platform).NotTo(BeEmpty())
		Expect(st.QRCode).To(BeEmpty())
		Expect(c.leaseHolder()).To(Equal(s.identity()))

		By("idling: only Lease renewals reach the API server")
		rv := c.get().ResourceVersion
		statusWrites, leaseWrites := s.link.statusWrites.Load(), s.link.leaseWrites.Load()
		window := 4 * retryPeriod
		start := time.Now()
		Consistently(func() string { return c.get().ResourceVersion }, window, poll).Should(Equal(rv))
		elapsed := time.Since(start)
		Expect(s.link.statusWrites.Load()).To(Equal(statusWrites))
		renewals := s.link.leaseWrites.Load() - leaseWrites
		// One write per RetryPeriod: scale the measured rate back to the default timings.
		perHour := float64(renewals) / elapsed.Seconds() * 3600 / scale
		AddReportEntry("idle Lease writes per session-hour at default timings", fmt.Sprintf("%.0f (%d renewals in %s at retry period %s)", perHour, renewals, elapsed.Round(time.Millisecond), retryPeriod))
		fmt.Fprintf(GinkgoWriter, "MEASURE idle lease writes/hour at defaults: %.0f\n", perHour)
		Expect(perHour).To(BeNumerically("<=", 400))
		Expect(renewals).To(BeNumerically(">=", 3))

		By("restarting (SIGTERM): the Lease is released and the next runtime logs in without pairing")
		Expect(s.stop()).To(Succeed())
		Expect(c.leaseHolder()).To(BeEmpty())
		windows := srv.Device(jid).Stats().PairingWindows
		s2 := c.start("wac-session", session.StoreConfig{})
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.Holder).To(Equal(s2.holder()))
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
		}, timeout, poll).Should(Succeed())
		Expect(c.status().QRCode).To(BeEmpty())
		Expect(srv.Device(jid).Stats().PairingWindows).To(Equal(windows))
	})

	It("asks the API server only for its Lease, one watch of its resource and one status write before its QR code", func() {
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{})
		Eventually(func() string { return c.status().QRCode }, timeout, poll).ShouldNot(BeEmpty())

		sent := s.link.requests()
		first := slices.Index(sent, "PATCH whatsappconnections/status")
		Expect(first).To(BeNumerically(">=", 0), "the QR code is a status write: %v", sent)
		Expect(sent[:first]).To(ConsistOf("GET leases", "PUT leases", "WATCH whatsappconnections"),
			"the watch reads the resource: no GET before it")
	})

	It("reports Replaced when a rogue client logs in with a copy of the store, and never logs in again", func() {
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)

		connectRogue(c)

		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionReplaced))
		logins := srv.Device(jid).Stats().Logins
		Consistently(func() int { return srv.Device(jid).Stats().Logins }, 3*time.Second, poll).Should(Equal(logins))
		Expect(s.exited()).To(BeFalse(), "a replaced session stays, holding its Lease")
		Expect(c.leaseHolder()).To(Equal(s.identity()))
	})

	It("logs out, wipes the store and publishes a new QR code on the logout annotation", func() {
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)
		// A token newer than the resource: an older one is a re-applied manifest and is ignored.
		token := time.Now().UTC().Format(time.RFC3339Nano)
		c.annotate(whatsappv1alpha1.LogoutRequestedAtAnnotation, token)
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.LastHandledLogoutAt).To(Equal(token))
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionPairing))
			g.Expect(st.QRCode).NotTo(BeEmpty())
			g.Expect(st.JID).To(BeEmpty())
		}, timeout, poll).Should(Succeed())
		Expect(srv.Device(jid).Stats().Removed).To(BeTrue())
	})

	It("logs out and reports LoggedOut when the resource is deleted", func() {
		c := newConnection(func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Finalizers = []string{"test.waoperator.io/hold"} // stands in for the controller's
		})
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)
		Expect(admin.Delete(ctx, c.get())).To(Succeed())
		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionLoggedOut))
		Expect(srv.Device(jid).Stats().Removed).To(BeTrue())
		wac := c.get()
		wac.Finalizers = nil
		Expect(admin.Update(ctx, wac)).To(Succeed())

		By("the emptied store is released: another resource may use it")
		next := newConnection()
		next.start("wac-session", session.StoreConfig{Type: "sqlite", SQLitePath: c.storePath})
		Eventually(state(next), timeout, poll).Should(Equal(whatsappv1alpha1.SessionPairing))
	})

	It("refuses a store that belongs to another resource: StoreError OwnedByAnotherResource, and the owner keeps its device", func() {
		owner := newConnection()
		s := owner.start("wac-session", session.StoreConfig{})
		jid := pair(owner, s)

		intruder := newConnection()
		intruder.start("wac-session", session.StoreConfig{Type: "sqlite", SQLitePath: owner.storePath})
		Eventually(func(g Gomega) {
			st := intruder.status()
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionStoreError))
			g.Expect(st.FailureCode).To(Equal(session.StoreOwnedElsewhere))
			g.Expect(st.Message).To(ContainSubstring("another namespace"))
			g.Expect(st.Message).NotTo(ContainSubstring(owner.namespace), "names no object of another namespace")
			g.Expect(st.JID).To(BeEmpty())
		}, timeout, poll).Should(Succeed())
		Consistently(func() int { return srv.Device(jid).Stats().Logins }, 2*retryPeriod, poll).Should(Equal(1), "the intruder never logs in with the owner's keys")
		Expect(owner.status().State).To(Equal(whatsappv1alpha1.SessionConnected))
		Expect(srv.Device(jid).Stats().Replacements).To(BeZero())
	})

	It("ends, releasing its Lease, when its store Secret's file changes, so that a new pod reads the Secret", func() {
		c := newConnection()
		file := filepath.Join(GinkgoT().TempDir(), "dsn")
		Expect(os.WriteFile(file, []byte("postgres://old"), 0o600)).To(Succeed())
		s := c.start("wac-session", session.StoreConfig{}, func(sc *session.Config) {
			sc.StoreSecretFile, sc.StoreSecretValue, sc.StoreSecretPoll = file, "postgres://old", 100*time.Millisecond
		})
		Eventually(func() string { return c.status().QRCode }, timeout, poll).ShouldNot(BeEmpty())
		Consistently(s.exited, 3*100*time.Millisecond, poll).Should(BeFalse(), "the same value is no change")

		Expect(os.WriteFile(file, []byte("postgres://new"), 0o600)).To(Succeed())
		Eventually(s.exited, timeout, poll).Should(BeTrue())
		Expect(s.err).To(MatchError(session.ErrStoreSecretChanged))
		Expect(c.leaseHolder()).To(BeEmpty(), "released: the next pod takes over at once")
	})

	It("reports StoreError with the path when the store cannot be opened, and stays up", func() {
		c := newConnection()
		path := "/nonexistent-dir/device.db"
		s := c.start("wac-session", session.StoreConfig{Type: "sqlite", SQLitePath: path})
		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionStoreError))
		Expect(c.status().Message).To(ContainSubstring(path))
		Expect(s.exited()).To(BeFalse())
		_, err := os.Stat(path)
		Expect(err).To(HaveOccurred())
	})

	It("waits out the Lease of a killed predecessor with the same pod name: a new UID is a new holder", func() {
		c := newConnection()
		a := c.start("wac-session", session.StoreConfig{})
		device := pair(c, a)
		// A kill: the process and its sockets vanish, the Lease is not released.
		a.link.cut.Store(true)
		a.cancel()
		<-a.done
		killed := time.Now()
		Expect(c.leaseHolder()).To(Equal(a.identity()))

		b := c.start("wac-session", session.StoreConfig{})
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.Holder).To(Equal(b.holder()))
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
		}, timeout, poll).Should(Succeed())
		Expect(time.Since(killed)).To(BeNumerically(">=", leaseDuration),
			"the successor took the Lease only after seeing it unchanged for a Lease duration on its own clock")
		Expect(c.leaseHolder()).To(Equal(b.identity()))
		Expect(srv.Device(device).Stats().MaxLive).To(Equal(1))
	})

	Context("two runtimes for one resource", func() {
		var (
			c      *connection
			a, b   *runningSession
			device types.JID
		)
		BeforeEach(func() {
			c = newConnection()
			a = c.start("pod-a", session.StoreConfig{})
			device = pair(c, a)
			b = c.start("pod-b", session.StoreConfig{})
			Consistently(func() int { return srv.Device(device).Stats().Logins }, 2*retryPeriod, poll).Should(Equal(1), "the standby does not connect")
			Expect(c.leaseHolder()).To(Equal(a.identity()))
		})
		AfterEach(func() {
			st := srv.Device(device).Stats()
			Expect(st.MaxLive).To(BeNumerically("<=", 1))
			Expect(st.Replacements).To(BeZero())
		})

		It("fails over to the standby within the target when the leader is killed", func() {
			// A kill: the process and its sockets vanish, the Lease is not released.
			a.link.cut.Store(true)
			killed := time.Now()
			a.cancel()
			Eventually(func(g Gomega) {
				st := c.status()
				g.Expect(st.Holder).To(Equal(b.holder()))
				g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
			}, timeout, poll).Should(Succeed())
			failover := time.Since(killed)
			AddReportEntry("failover after a kill", failover.String())
			fmt.Fprintf(GinkgoWriter, "MEASURE failover after kill: %s (scaled target %s, x%d = %s)\n", failover, failoverTarget, scale, failover*scale)
			Expect(failover).To(BeNumerically("<=", failoverTarget))
		})

		It("drops WhatsApp when its API traffic is cut, before the Lease can expire elsewhere", func() {
			a.link.cut.Store(true)
			cut := time.Now()
			Eventually(func() int { return srv.Device(device).Stats().Live }, timeout, poll).Should(BeZero())
			dropped := time.Since(cut)
			Expect(dropped).To(BeNumerically("<", leaseDuration), "dropped before the Lease could expire")
			Eventually(a.done, timeout).Should(BeClosed())
			Expect(a.err).To(MatchError(session.ErrRenewDeadline))
			Eventually(func() *whatsappv1alpha1.Holder { return c.status().Holder }, timeout, poll).Should(Equal(b.holder()))
			Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionConnected))
		})
	})
})

var _ = Describe("session runtime reconnects and login failures", func() {
	It("counts failed reconnects and stops at spec.reconnect.maxAttempts", func() {
		c := newConnection(func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Reconnect.MaxAttempts = 2 })
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)
		d := srv.Device(jid)
		d.FailLogins(fakewa.FailureUnavailable, 0)
		_, err := d.DropConnections()
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionDisconnected))
			g.Expect(st.ReconnectAttempts).To(BeEquivalentTo(2))
			g.Expect(st.Message).To(ContainSubstring("gave up"))
		}, timeout, poll).Should(Succeed())
		rejected := d.Stats().RejectedLogins
		Consistently(func() int { return d.Stats().RejectedLogins }, 3*time.Second, poll).Should(Equal(rejected), "no retries past the limit")

		By("a reconnect request resumes in place once the failures stop")
		d.ClearLoginFailures()
		c.annotate(whatsappv1alpha1.ReconnectRequestedAtAnnotation, "r1")
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
			g.Expect(st.LastHandledReconnectAt).To(Equal("r1"))
			g.Expect(st.ReconnectAttempts).To(BeZero())
		}, timeout, poll).Should(Succeed())
	})

	It("reports ClientOutdated and TemporaryBan with its expiry", func() {
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)
		d := srv.Device(jid)
		d.FailLogins(fakewa.FailureTemporaryBan(101, time.Hour), 0)
		_, err := d.DropConnections()
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionTemporaryBan))
			g.Expect(st.BanExpiresAt).NotTo(BeNil())
			g.Expect(st.BanExpiresAt.Time).To(BeTemporally("~", time.Now().Add(time.Hour), time.Minute))
		}, timeout, poll).Should(Succeed())

		d.FailLogins(fakewa.FailureClientOutdated, 0)
		c.annotate(whatsappv1alpha1.ReconnectRequestedAtAnnotation, "r1")
		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionClientOutdated))
	})

	It("links the device under spec.deviceName, as the phone lists it", func() {
		c := newConnection(func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.DeviceName = "Front desk (shop 2)" })
		s := c.start("wac-session", session.StoreConfig{})
		jid := pair(c, s)
		Expect(srv.Device(jid).Stats().Name).To(Equal("Front desk (shop 2)"))

		By("a resource that names no device gets the API's default name")
		other := newConnection()
		Expect(other.get().Spec.DeviceName).To(Equal("whatsapp-operator"))
		jid2 := pair(other, other.start("wac-session", session.StoreConfig{}))
		Expect(srv.Device(jid2).Stats().Name).To(Equal("whatsapp-operator"))
	})

	It("pairs with a phone code when spec.pairing.method is PhoneCode", func() {
		phone := nextPhone()
		c := newConnection(func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Pairing = whatsappv1alpha1.PairingSpec{Method: whatsappv1alpha1.PairingMethodPhoneCode, PhoneNumber: phone}
			w.Spec.DeviceName = "Till 3"
		})
		c.start("wac-session", session.StoreConfig{})
		var code string
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.PairingCode).NotTo(BeEmpty())
			g.Expect(st.PairingCodeExpiresAt).NotTo(BeNil())
			g.Expect(st.QRCode).To(BeEmpty())
			code = st.PairingCode
		}, timeout, poll).Should(Succeed())
		jid, err := srv.Phone(phone).EnterCode(ctx, code)
		Expect(err).NotTo(HaveOccurred())
		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionConnected))
		Expect(c.status().JID).To(Equal(jid.String()))
		Expect(srv.Device(jid).Stats().Name).To(Equal("Till 3"))
	})
})
