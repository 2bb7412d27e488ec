package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	phoneCodeSample = "config/samples/whatsapp_v1alpha1_whatsappconnection_phonecode_sqlite.yaml"
	phoneCodeName   = "sales"
	phoneCodePhone  = "+14155550123"
	postgresSample  = "config/samples/whatsapp_v1alpha1_whatsappconnection_qr_postgres.yaml"
	postgresName    = "notifications"
	postgresSecret  = "notifications-whatsapp-db"
)

var _ = Describe("the PhoneCode sample", Ordered, func() {
	var jid string
	wacRef := "wac/" + phoneCodeName

	AfterAll(func() {
		mustKubectl("delete", "wac", phoneCodeName, "--ignore-not-found", "--wait=false")
		Eventually(kubectl).WithArguments("get", "wac", phoneCodeName, "--ignore-not-found", "-o", "name").
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
		Eventually(kubectl).WithArguments("get", "pod,pvc,lease,sa,role,rolebinding",
			"-l="+whatsappv1alpha1.ConnectionLabel+"="+phoneCodeName, "-o", "name").
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
	})

	It("pairs with the code the phone enters", func() {
		mustKubectl("apply", "-f", phoneCodeSample)
		Eventually(func(g Gomega) {
			code, err := jsonpath(wacRef, "{.status.connection.pairingCode}")()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).NotTo(BeEmpty(), "a pairing code in status")
			reply, err := controlPost("/pair-code", map[string]string{"phone": phoneCodePhone, "code": code})
			g.Expect(err).NotTo(HaveOccurred())
			jid = reply["jid"]
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", phoneCodeName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(phoneCodeName + `\s+Connected`))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Expect(jsonpath(wacRef, "{.status.connection.jid}")()).To(Equal(jid))
	})

	It("suspends without the pod and resumes without a re-scan", func() {
		before, err := device(jid)
		Expect(err).NotTo(HaveOccurred())
		mustKubectl("patch", "wac", phoneCodeName, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
		Eventually(func(g Gomega) {
			_, err := kubectl("get", "pod", phoneCodeName+"-session")
			g.Expect(err).To(MatchError(ContainSubstring("NotFound")), "the session pod is gone")
			g.Expect(jsonpath(wacRef, "{.status.phase}")()).To(Equal(string(whatsappv1alpha1.PhaseSuspended)))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		d, err := device(jid)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Live).To(BeZero())
		Expect(d.Removed).To(BeFalse(), "suspend is not a logout")

		mustKubectl("patch", "wac", phoneCodeName, "--type=merge", "-p", `{"spec":{"suspend":false}}`)
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "wac", phoneCodeName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(phoneCodeName + `\s+Connected`))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		d, err = device(jid)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.PairingWindows).To(Equal(before.PairingWindows), "no new pairing window")
		Expect(d.Logins).To(BeNumerically(">", before.Logins))
		Expect(d.Live).To(Equal(1))
	})
})

var _ = Describe("the Postgres sample", Ordered, func() {
	var dsn string

	BeforeAll(func() {
		dsn = freshDatabase()
	})

	AfterAll(func() {
		mustKubectl("delete", "wac", postgresName, "--ignore-not-found", "--wait=false")
		// The Secret goes last: the deletion may need the store to log out.
		Eventually(kubectl).WithArguments("get", "wac", postgresName, "--ignore-not-found", "-o", "name").
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
		Eventually(kubectl).WithArguments("get", "pod,lease,sa,role,rolebinding",
			"-l="+whatsappv1alpha1.ConnectionLabel+"="+postgresName, "-o", "name").
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
		mustKubectl("delete", "secret", postgresSecret, "--ignore-not-found")
	})

	It("waits for its missing Secret and starts once it exists", func() {
		// The sample without its placeholder Secret, as if the user forgot it.
		data, err := os.ReadFile(filepath.Join(st.moduleRoot, postgresSample))
		Expect(err).NotTo(HaveOccurred())
		var wacDoc string
		for _, doc := range strings.Split(string(data), "\n---\n") {
			if strings.Contains(doc, "kind: WhatsAppConnection") {
				wacDoc = doc
			}
		}
		Expect(wacDoc).NotTo(BeEmpty())
		_, err = kubectlIn(wacDoc, "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, err := kubectl("describe", "wac", postgresName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(ContainSubstring(whatsappv1alpha1.ReasonSecretNotFound))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		mustKubectl("create", "secret", "generic", postgresSecret, "--from-literal=dsn="+dsn)
		Eventually(func(g Gomega) {
			out, err := kubectl("describe", "wac", postgresName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchRegexp(`Phase:\s+Pairing`))
			g.Expect(out).To(ContainSubstring("▀"), "a QR code")
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
	})
})

// freshDatabase returns the DSN of a new, empty database on the test PostgreSQL: the one `make
// test` started ($WAOPERATOR_TEST_POSTGRES_DSN) or one this suite starts. Other packages' tests
// share that server, and the session takes the first device it finds in its store, so it must
// not see theirs.
func freshDatabase() string {
	base := os.Getenv("WAOPERATOR_TEST_POSTGRES_DSN")
	if base == "" {
		cmd := exec.Command(filepath.Join(st.moduleRoot, "hack", "postgres-test.sh"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred(), "hack/postgres-test.sh:\n%s", stderr.String())
		base = strings.TrimSpace(string(out))
		m := regexp.MustCompile(`postgres test server in (\S+)`).FindStringSubmatch(stderr.String())
		Expect(m).NotTo(BeNil(), stderr.String())
		DeferCleanup(func() {
			out, err := exec.Command(filepath.Join(st.moduleRoot, "hack", "postgres-test.sh"), "stop", m[1]).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
		})
	}
	u, err := url.Parse(base)
	Expect(err).NotTo(HaveOccurred())
	name := fmt.Sprintf("e2e_%d_%d", os.Getpid(), time.Now().UnixNano())
	db, err := sql.Open("pgx", base)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+name)
	Expect(err).NotTo(HaveOccurred())
	// Registered before the stop above runs (cleanups run last-in first-out), after the
	// resource's own cleanup has stopped its session.
	DeferCleanup(func() {
		defer func() { _ = db.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		Expect(err).NotTo(HaveOccurred())
	})
	u.Path = "/" + name
	return u.String()
}
