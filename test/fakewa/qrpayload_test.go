package fakewa_test

import (
	"encoding/base64"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func TestParseQRReadsBothForms(t *testing.T) {
	t.Parallel()
	key := func(b byte) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), 32))) }
	noise, identity, adv := key('n'), key('i'), key('a')
	bare := "2@ref+/=," + noise + "," + identity + "," + adv
	for _, tc := range []struct {
		name, qr   string
		ok         bool
		clientType string
	}{
		{name: "bare form (whatsmeow until 2025)", qr: bare, ok: true},
		{name: "link form (whatsmeow 2026)", qr: fakewa.QRLinkPrefix + bare + ",1", ok: true, clientType: "1"},
		{name: "link form, macOS client type", qr: fakewa.QRLinkPrefix + bare + ",c", ok: true, clientType: "c"},
		{name: "link form without client type", qr: fakewa.QRLinkPrefix + bare},
		{name: "link form with empty client type", qr: fakewa.QRLinkPrefix + bare + ","},
		{name: "bare form with a fifth field", qr: bare + ",1"},
		{name: "other link", qr: "https://wa.me/qr/" + bare + ",1"},
		{name: "empty ref", qr: "," + noise + "," + identity + "," + adv},
		{name: "key not base64", qr: "ref,!!," + identity + "," + adv},
		{name: "short key", qr: "ref," + base64.StdEncoding.EncodeToString([]byte("short")) + "," + identity + "," + adv},
		{name: "nonsense", qr: "nonsense"},
		{name: "empty", qr: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p, err := fakewa.ParseQR(tc.qr)
			if !tc.ok {
				g.Expect(err).To(MatchError(fakewa.ErrMalformedQR))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Ref).To(Equal("2@ref+/="))
			g.Expect(p.NoiseKey).To(Equal([]byte(strings.Repeat("n", 32))))
			g.Expect(p.IdentityKey).To(Equal([]byte(strings.Repeat("i", 32))))
			g.Expect(p.ADVSecret).To(Equal([]byte(strings.Repeat("a", 32))))
			g.Expect(p.ClientType).To(Equal(tc.clientType))
		})
	}
}
