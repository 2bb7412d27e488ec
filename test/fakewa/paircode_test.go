package fakewa_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func TestPhoneCodePairing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	phone := srv.Phone("+1 555 010 2020")
	c := newClient(t, srv, storePath(t))
	g.Expect(c.Connect()).To(Succeed())
	waitNth[*events.QR](t, c.events, 1)

	_, err := c.PairPhone(ctxT(t), "+1 555 010 2020", true, whatsmeow.PairClientChrome, "not a browser")
	g.Expect(err).To(HaveOccurred(), "the service only accepts 'Browser (OS)' display names")

	code, err := c.PairPhone(ctxT(t), "+1 555 010 2020", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(MatchRegexp(`^[1-9A-Z]{4}-[1-9A-Z]{4}$`))

	_, err = srv.Phone("+1 555 999 0000").EnterCode(ctxT(t), code)
	g.Expect(err).To(MatchError(fakewa.ErrNoPendingCode), "the code belongs to the number the client named")
	_, err = phone.EnterCode(ctxT(t), wrongCode(code))
	g.Expect(err).To(MatchError(fakewa.ErrWrongCode))

	jid, err := phone.EnterCode(ctxT(t), code)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(jid.User).To(Equal("15550102020"))
	g.Expect(waitNth[*events.PairSuccess](t, c.events, 1).ID).To(Equal(jid))
	waitNth[*events.Connected](t, c.events, 1)
	g.Expect(*c.Store.ID).To(Equal(jid))
	g.Expect(srv.Device(jid).Stats().Live).To(Equal(1))
}

// wrongCode changes one character of a valid code.
func wrongCode(code string) string {
	b := []byte(code)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}
