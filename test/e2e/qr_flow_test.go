package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	waLog "go.mau.fi/whatsmeow/util/log"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	qrSample  = "config/samples/whatsapp_v1alpha1_whatsappconnection_qr_sqlite.yaml"
	qrName    = "support"
	fakePhone = "+15550001111"
)

// The README's quickstart and the seed's failure modes, one step after the other on one
// resource, as a user meets them.
var _ = Describe("the QR sample through its life", Ordered, func() {
	var (
		jid      string // the device paired by the first scan
		firstQR  string
		before   fakewa.DeviceStats
		rogue    *whatsmeow.Client
		wacRef   = "wac/" + qrName
		selector = "-l=" + whatsappv1alpha1.ConnectionLabel + "=" + qrName
	)

	AfterAll(func() {
		if rogue != nil {
			rogue.Disconnect()
		}
	})

	It("shows a QR code in kubectl describe once applied", func() {
		mustKubectl("apply", "-f", qrSample)
		Eventually(func(g Gomega) {
			out, err := kubectl("describe", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(`Phase:\s+Pairing`))
			g.Expect(out).To(ContainSubstring("Qr Code Terminal:"))
			g.Expect(out).To(ContainSubstring("▀"), "the QR drawn in half blocks")
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
		var err error
		firstQR, err = jsonpath(wacRef, "{.status.connection.qrCode}")()
		Expect(err).NotTo(HaveOccurred())
	})

	It("connects once the phone scans it", func() {
		Eventually(func(g Gomega) {
			var err error
			jid, err = scanQR(qrName, fakePhone)()
			g.Expect(err).NotTo(HaveOccurred(), "the fake phone scans the QR read with kubectl")
		}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(jid).To(HavePrefix("15550001111:"))
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(qrName + `\s+Connected\s+` + regexp.QuoteMeta(jid)))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Expect(jsonpath(wacRef, "{.status.connection.jid}")()).To(Equal(jid))
	})

	It("reconnects a killed session process in a new pod without a new QR", func() {
		var err error
		before, err = device(jid)
		Expect(err).NotTo(HaveOccurred())
		uid, err := jsonpath("pod/"+qrName+"-session", "{.metadata.uid}")()
		Expect(err).NotTo(HaveOccurred())
		procs := processesWithEnv("WA_POD_UID=" + uid)
		Expect(procs).To(HaveLen(1), "one session process for pod %s", uid)
		Expect(syscall.Kill(procs[0].PID, syscall.SIGKILL)).To(Succeed())

		// A session that ran under 30 s waits out the crash backoff; its Lease is released at once.
		Eventually(func(g Gomega) {
			newUID, err := jsonpath("pod/"+qrName+"-session", "{.metadata.uid}")()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(newUID).NotTo(Equal(uid), "a new pod")
			holder, err := jsonpath(wacRef, "{.status.phase} {.status.connection.holder.uid}")()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(holder).To(Equal("Connected " + newUID))
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())

		after, err := device(jid)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.PairingWindows).To(Equal(before.PairingWindows), "no new QR: the store on the claim kept the device")
		Expect(after.Logins).To(BeNumerically(">", before.Logins))
		Expect(after.MaxLive).To(BeNumerically("<=", 1))
		Expect(after.Replacements).To(BeZero(), "never two live clients")
	})

	It("halts in Conflict when a second client uses a copy of the device store", func() {
		// The seed's "two instances with the same session files".
		claim := filepath.Join(st.stateDir, "run", "volumes", "default", qrName+"-store")
		entries, err := os.ReadDir(claim)
		Expect(err).NotTo(HaveOccurred())
		copyDir := filepath.Join(st.tmp, "rogue")
		Expect(os.MkdirAll(copyDir, 0o700)).To(Succeed())
		var dbPath string
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			copyFile(filepath.Join(claim, e.Name()), filepath.Join(copyDir, e.Name()))
			if filepath.Ext(e.Name()) == ".db" {
				dbPath = filepath.Join(copyDir, e.Name())
			}
		}
		Expect(dbPath).NotTo(BeEmpty(), "a SQLite database in %s", claim)

		ctx := context.Background()
		container, err := whatsapp.OpenStore(ctx, session.StoreConfig{Type: "sqlite", SQLitePath: dbPath}, waLog.Noop)
		Expect(err).NotTo(HaveOccurred())
		dev, err := container.GetFirstDevice(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(dev.ID).NotTo(BeNil(), "the copy holds the paired device")
		Expect(dev.ID.String()).To(Equal(jid))
		rogue = whatsmeow.NewClient(dev, waLog.Noop)
		cfg, err := fakewa.ReadClientConfig(filepath.Join(st.stateDir, "fakewa.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Apply(rogue)).To(Succeed())
		base, err := device(jid)
		Expect(err).NotTo(HaveOccurred())
		Expect(rogue.Connect()).To(Succeed())

		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(qrName + `\s+Conflict`))
			out, err = kubectl("describe", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(ContainSubstring(whatsappv1alpha1.ReasonStreamReplaced))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		var halted fakewa.DeviceStats
		Eventually(func(g Gomega) {
			halted, err = device(jid)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(halted.Live).To(Equal(1), "the rogue is the one live client")
			g.Expect(halted.Logins).To(Equal(base.Logins + 1))
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(halted.Replacements).To(Equal(base.Replacements+1), "the rogue replaced the session once")

		// No reconnect loop: the session stays down while the rogue holds the device.
		Consistently(func() (int, error) {
			d, err := device(jid)
			return d.Logins, err
		}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Equal(halted.Logins))
		Expect(kubectl("get", "wac", qrName)).To(MatchRegexp(qrName + `\s+Conflict`))
	})

	It("connects again when asked to with the reconnect annotation", func() {
		rogue.Disconnect()
		rogue = nil
		mustKubectl("annotate", "wac", qrName, whatsappv1alpha1.ReconnectRequestedAtAnnotation+"="+token(), "--overwrite")
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(qrName + `\s+Connected`))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		d, err := device(jid)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Live).To(Equal(1))
		Expect(d.PairingWindows).To(Equal(before.PairingWindows), "no re-scan")
	})

	It("logs out and shows a new QR code with the logout annotation", func() {
		mustKubectl("annotate", "wac", qrName, whatsappv1alpha1.LogoutRequestedAtAnnotation+"="+token(), "--overwrite")
		Eventually(func(g Gomega) {
			d, err := device(jid)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Removed).To(BeTrue(), "the old device is unlinked from the phone")
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) {
			out, err := kubectl("describe", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(`Phase:\s+Pairing`))
			g.Expect(out).To(ContainSubstring("▀"))
			qr, err := jsonpath(wacRef, "{.status.connection.qrCode}")()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(qr).NotTo(BeEmpty())
			g.Expect(qr).NotTo(Equal(firstQR))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	It("logs out and removes everything it created on delete", func() {
		// Pair again first, so that the delete has a device to log out.
		var newJID string
		Eventually(func(g Gomega) {
			var err error
			newJID, err = scanQR(qrName, fakePhone)()
			g.Expect(err).NotTo(HaveOccurred())
		}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(newJID).NotTo(Equal(jid), "a new device")
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", qrName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(qrName + `\s+Connected\s+` + regexp.QuoteMeta(newJID)))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		mustKubectl("delete", "wac", qrName, "--wait=false")
		Eventually(func(g Gomega) {
			_, err := kubectl("get", "wac", qrName)
			g.Expect(err).To(MatchError(ContainSubstring("NotFound")))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		d, err := device(newJID)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Removed).To(BeTrue(), "logoutOnDelete unlinked the device")
		Expect(d.Live).To(BeZero())
		Eventually(kubectl).WithArguments("get", "pod,pvc,lease,sa,role,rolebinding", selector, "-o", "name").
			WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
	})
})

func copyFile(from, to string) {
	in, err := os.Open(from)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer func() { _ = in.Close() }()
	out, err := os.Create(to)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	_, err = io.Copy(out, in)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, out.Close()).To(Succeed())
}

// token is an annotation value that differs from every earlier one.
func token() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }
