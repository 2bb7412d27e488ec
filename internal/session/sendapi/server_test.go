package sendapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/testtls"
)

// writeKeyPair writes a certificate for dnsName, signed by a new CA, as a kubernetes.io/tls
// Secret's files, and returns the CA.
func writeKeyPair(t *testing.T, dir, dnsName string, serial int64) *x509.CertPool {
	t.Helper()
	kp, err := testtls.Issue(dnsName, serial)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: the server reloads when tls.crt changes.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), kp.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), kp.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return kp.CA
}

func TestServesHTTPSWithTheSecretsCertificateAndPicksUpARenewal(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	const name = "shop-session.ns.svc"
	pool := writeKeyPair(t, dir, name, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	addr, err := sendapi.Serve(ctx, "127.0.0.1:0", h, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), logr.Discard())
	g.Expect(err).NotTo(HaveOccurred())

	get := func(pool *x509.CertPool) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}, DisableKeepAlives: true}}
		return c.Get("https://" + addr.String() + "/v1/messages/x")
	}
	resp, err := get(pool)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(resp.TLS.PeerCertificates[0].SerialNumber.Int64()).To(BeEquivalentTo(100))

	plain, err := http.Get("http://" + addr.String() + "/v1/messages/x")
	if err == nil {
		_ = plain.Body.Close()
		g.Expect(plain.StatusCode).To(Equal(http.StatusBadRequest), "plain HTTP gets the TLS server's refusal, never the API")
	}

	renewed := writeKeyPair(t, dir, name, 200)
	g.Eventually(func() (int64, error) {
		resp, err := get(renewed)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
	}).Should(BeEquivalentTo(200), "the renewed certificate, without a restart")
	_, err = get(pool)
	g.Expect(err).To(HaveOccurred(), "the old CA no longer verifies it")
}

func TestRefusesToStartWithoutAUsableKeyPair(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	_, err := sendapi.Serve(context.Background(), "127.0.0.1:0", http.NotFoundHandler(), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), logr.Discard())
	g.Expect(err).To(HaveOccurred())
}
