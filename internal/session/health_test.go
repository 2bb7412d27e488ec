//go:build !unit

package session_test

import (
	"fmt"
	"io"
	"net"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

func freeAddr() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var _ = Describe("health and metrics endpoints", func() {
	It("is live at once, ready only while leading and connected, and exports its state", func() {
		health, metrics := freeAddr(), freeAddr()
		c := newConnection()
		s := c.start("wac-session", session.StoreConfig{}, func(cfg *session.Config) {
			cfg.HealthAddr, cfg.MetricsAddr = health, metrics
		})
		Eventually(func() string { code, body := get("http://" + health + "/healthz"); return fmt.Sprint(code, body) }, timeout, poll).Should(Equal("200ok"))
		code, _ := get("http://" + health + "/readyz")
		Expect(code).To(Equal(http.StatusServiceUnavailable))

		pair(c, s)
		Eventually(func() int { code, _ := get("http://" + health + "/readyz"); return code }, timeout, poll).Should(Equal(http.StatusOK))
		_, body := get("http://" + metrics + "/metrics")
		Expect(body).To(ContainSubstring("whatsapp_session_connected 1"))
		Expect(body).To(ContainSubstring(`whatsapp_session_state{state="Connected"} 1`))
		Expect(body).To(MatchRegexp(`whatsapp_session_qr_codes_total [1-9]`))
		Expect(body).To(ContainSubstring(`whatsapp_session_lease_transitions_total{transition="acquired"} 1`))
		Expect(body).To(MatchRegexp(`whatsapp_session_lease_writes_total [1-9]`))
		Expect(body).NotTo(ContainSubstring(c.status().JID), "no identifiers in metrics")
	})
})
