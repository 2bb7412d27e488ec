//go:build fakewa

package waendpoint_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func TestFakewaBuildPointsClientAtFakeServer(t *testing.T) {
	g := NewWithT(t)
	srv := fakeServerInEnv(t)

	cli := newTestClient(t)
	g.Expect(waendpoint.Configure(cli)).To(Succeed())
	root := srv.ClientConfig().RootPublicKey
	g.Expect(whatsmeow.WACertPubKey[:]).To(Equal(root))

	qr := make(chan *events.QR, 1)
	cli.AddEventHandler(func(evt any) {
		if e, ok := evt.(*events.QR); ok {
			qr <- e
		}
	})
	g.Expect(cli.Connect()).To(Succeed())
	g.Eventually(qr, 10*time.Second).Should(Receive(HaveField("Codes", HaveLen(6))))
	g.Expect(srv.Stats().Handshakes).To(Equal(1))
}

func TestFakewaBuildRefusesToRunWithoutConfig(t *testing.T) {
	g := NewWithT(t)
	t.Setenv(waendpoint.ConfigEnv, "")
	g.Expect(waendpoint.Configure(newTestClient(t))).To(MatchError(ContainSubstring(waendpoint.ConfigEnv)))
}

func TestFakewaBuildRefusesNonLoopbackAddress(t *testing.T) {
	g := NewWithT(t)
	srv, err := fakewa.Start(fakewa.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	cfg := srv.ClientConfig()
	cfg.Address = "203.0.113.7:443"
	data, err := json.Marshal(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(t.TempDir(), "fakewa.json")
	g.Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	t.Setenv(waendpoint.ConfigEnv, path)

	g.Expect(waendpoint.Configure(newTestClient(t))).To(MatchError(ContainSubstring("not loopback")))
}
