//go:build postgres && !unit

package session_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
)

// PostgresDSNEnv names the test server's DSN; hack/postgres-test.sh prints one. The test fails
// without it: a run built with the postgres tag has promised a server.
const PostgresDSNEnv = "WAOPERATOR_TEST_POSTGRES_DSN"

// postgresStore gives the test a database of its own, so that each test has an empty device
// store. Not a schema: whatsmeow's migration asks whether its version table exists in any
// schema, so a second schema of one database fails its first upgrade (42P01).
func postgresStore() session.StoreConfig {
	GinkgoHelper()
	dsn := os.Getenv(PostgresDSNEnv)
	Expect(dsn).NotTo(BeEmpty(), "%s is not set: run DSN=$(hack/postgres-test.sh) first", PostgresDSNEnv)
	db, err := sql.Open("pgx", dsn)
	Expect(err).NotTo(HaveOccurred())
	defer db.Close()
	name := fmt.Sprintf("session_%d_%d", GinkgoRandomSeed(), nsSeq.Add(1))
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	Expect(err).NotTo(HaveOccurred())
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+name)
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(dsn)
	Expect(err).NotTo(HaveOccurred())
	u.Path = "/" + name
	return session.StoreConfig{Type: "postgres", PostgresDSN: u.String()}
}

var _ = Describe("session runtime on a Postgres store", func() {
	It("pairs, connects, and logs back in after a restart without a QR", func() {
		store := postgresStore()
		c := newConnection(func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store = whatsappv1alpha1.StoreSpec{Postgres: &whatsappv1alpha1.PostgresStore{
				SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "pg", Key: "dsn"}}}
		})
		s := c.start("wac-session", store)
		jid := pair(c, s)
		Expect(s.stop()).To(Succeed())
		windows := srv.Device(jid).Stats().PairingWindows
		s2 := c.start("wac-session", store)
		Eventually(func(g Gomega) {
			st := c.status()
			g.Expect(st.Holder).To(Equal(s2.holder()))
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
		}, timeout, poll).Should(Succeed())
		Expect(srv.Device(jid).Stats().PairingWindows).To(Equal(windows))
	})

	It("binds the store to its resource: a second resource on the same database is refused, and the first keeps its device", func() {
		store := postgresStore()
		first := newConnection()
		s := first.start("wac-session", store)
		jid := pair(first, s)

		second := newConnection()
		second.start("wac-session", store)
		Eventually(func(g Gomega) {
			st := second.status()
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionStoreError))
			g.Expect(st.FailureCode).To(Equal(session.StoreOwnedElsewhere))
		}, timeout, poll).Should(Succeed())
		Consistently(func() int { return srv.Device(jid).Stats().Logins }, 2*retryPeriod, poll).Should(Equal(1))

		By("a logout of the refused resource cannot wipe the owner's device")
		second.annotate(whatsappv1alpha1.LogoutRequestedAtAnnotation, "t1")
		Eventually(func() string { return second.status().LastHandledLogoutAt }, timeout, poll).Should(Equal("t1"))
		Expect(srv.Device(jid).Stats().Removed).To(BeFalse())
		Expect(first.status().State).To(Equal(whatsappv1alpha1.SessionConnected))

		By("the owner restarts on its store and logs in without pairing")
		Expect(s.stop()).To(Succeed())
		s2 := first.start("wac-session", store)
		Eventually(func(g Gomega) {
			st := first.status()
			g.Expect(st.Holder).To(Equal(s2.holder()))
			g.Expect(st.State).To(Equal(whatsappv1alpha1.SessionConnected))
		}, timeout, poll).Should(Succeed())
	})

	It("reports StoreError when the Postgres server cannot be reached", func() {
		c := newConnection()
		c.start("wac-session", session.StoreConfig{Type: "postgres", PostgresDSN: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"})
		Eventually(state(c), timeout, poll).Should(Equal(whatsappv1alpha1.SessionStoreError))
		Expect(c.status().Message).To(ContainSubstring("Postgres"))
		Expect(c.status().FailureCode).To(Equal(session.StoreUnreachable))
	})
})
