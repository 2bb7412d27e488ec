package fakewa_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// paired returns a logged-in client, its device handle and its store path.
func paired(t *testing.T, srv *fakewa.Server, number string) (*client, *fakewa.Device, string) {
	t.Helper()
	path := storePath(t)
	c := newClient(t, srv, path)
	d := pairByQR(t, srv, c, srv.Phone(number))
	return c, d, path
}

func TestReconnectWithStoredKeysNeedsNoQR(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	first, d, path := paired(t, srv, "15550002222")
	first.Disconnect()
	g.Eventually(func() int { return d.Stats().Live }).Should(BeZero())

	again := newClient(t, srv, path)
	g.Expect(again.Store.ID).NotTo(BeNil(), "the store kept the paired device")
	g.Expect(again.Connect()).To(Succeed())
	waitNth[*events.Connected](t, again.events, 1)

	g.Expect(count[*events.QR](again.events)).To(BeZero())
	st := d.Stats()
	g.Expect(st.Logins).To(Equal(2))
	g.Expect(st.PairingWindows).To(Equal(1))
	g.Expect(st.Live).To(Equal(1))
	g.Expect(st.MaxLive).To(Equal(1))
}

func TestSecondClientWithSameKeysReplacesFirst(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	first, d, path := paired(t, srv, "15550003333")

	second := newClient(t, srv, path)
	g.Expect(second.Connect()).To(Succeed())
	waitNth[*events.Connected](t, second.events, 1)
	waitNth[*events.StreamReplaced](t, first.events, 1)
	// The server closes the replaced socket; only the second one stays open.
	// (Polling whatsmeow's IsConnected here would race inside whatsmeow.)
	_, err := srv.WaitServerStats(ctxT(t), func(st fakewa.ServerStats) bool { return st.OpenSockets == 1 })
	g.Expect(err).NotTo(HaveOccurred())

	// The replaced client must not reconnect (it would kick the second).
	g.Consistently(func() int { return d.Stats().Logins }, 700*time.Millisecond).Should(Equal(2))
	g.Expect(count[*events.Disconnected](first.events)).To(BeZero())
	g.Expect(second.IsLoggedIn()).To(BeTrue())

	st := d.Stats()
	g.Expect(st.Live).To(Equal(1))
	g.Expect(st.MaxLive).To(Equal(1))
	g.Expect(st.Replacements).To(Equal(1))

	// The old connection is recorded as ended before the new one went live.
	var replacedAt, connectedAt = -1, -1
	for i, ev := range st.Timeline {
		if ev.Kind == fakewa.EventDisconnected && ev.Reason == fakewa.ReasonReplaced {
			replacedAt = i
		}
		if ev.Kind == fakewa.EventConnected {
			connectedAt = i
		}
	}
	g.Expect(replacedAt).To(BeNumerically(">=", 0))
	g.Expect(connectedAt).To(Equal(replacedAt+1), "timeline: %+v", st.Timeline)
	for _, ev := range st.Timeline {
		g.Expect(ev.Live).To(BeNumerically("<=", 1))
	}
}

func TestDeviceRemovedLogsOutAndWipesStore(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, path := paired(t, srv, "15550004444")

	g.Expect(d.Remove()).To(Succeed())
	loggedOut := waitNth[*events.LoggedOut](t, c.events, 1)
	g.Expect(loggedOut.OnConnect).To(BeFalse())
	g.Expect(loggedOut.Reason).To(Equal(events.ConnectFailureLoggedOut))
	// whatsmeow deletes the device after dispatching LoggedOut; watch the
	// SQLite file through a second container rather than racing on c.Store.
	other, err := sqlstore.New(ctxT(t), "sqlite", dsn(path), waLog.Noop)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = other.Close() })
	g.Eventually(func() ([]*store.Device, error) { return other.GetAllDevices(ctxT(t)) }).Should(BeEmpty(),
		"the device row is gone from SQLite")
	st := d.Stats()
	g.Expect(st.Removed).To(BeTrue())
	g.Expect(st.Live).To(BeZero())
	g.Consistently(func() int { return d.Stats().Logins }, 500*time.Millisecond).Should(Equal(1))
}

func TestClientOutdatedFailureStopsTheClient(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := paired(t, srv, "15550005555")

	d.FailLogins(fakewa.FailureClientOutdated, 0)
	g.Expect(d.DropConnections()).To(Equal(1))
	waitNth[*events.ClientOutdated](t, c.events, 1)
	g.Consistently(func() int { return d.Stats().RejectedLogins }, 700*time.Millisecond).Should(Equal(1),
		"a client told it is outdated does not retry")
	g.Expect(d.Stats().Live).To(BeZero())
}

func TestTemporaryBanCarriesExpiry(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := paired(t, srv, "15550006666")

	d.FailLogins(fakewa.FailureTemporaryBan(int(events.TempBanSentToTooManyPeople), 90*time.Minute), 0)
	g.Expect(d.DropConnections()).To(Equal(1))
	ban := waitNth[*events.TemporaryBan](t, c.events, 1)
	g.Expect(ban.Code).To(Equal(events.TempBanSentToTooManyPeople))
	g.Expect(ban.Expire).To(Equal(90 * time.Minute))
	g.Consistently(func() int { return d.Stats().RejectedLogins }, 500*time.Millisecond).Should(Equal(1))
}

func TestStreamError503Reconnects(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := paired(t, srv, "15550007777")

	g.Expect(d.SendStreamError(503)).To(Equal(1))
	waitNth[*events.Disconnected](t, c.events, 1)
	waitNth[*events.Connected](t, c.events, 2)
	st := d.Stats()
	g.Expect(st.Logins).To(Equal(2))
	g.Expect(st.Live).To(Equal(1))
	g.Expect(st.MaxLive).To(Equal(1))
}

func TestTCPDropReconnects(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := paired(t, srv, "15550008888")

	from := len(d.Stats().Timeline)
	g.Expect(d.DropConnections()).To(Equal(1))
	dropped, err := d.WaitEvent(ctxT(t), from, fakewa.EventDisconnected)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dropped.Reason).To(Equal(fakewa.ReasonTCPDrop))
	waitNth[*events.Disconnected](t, c.events, 1)
	reconnected, err := d.WaitEvent(ctxT(t), from, fakewa.EventConnected)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reconnected.ConnID).NotTo(Equal(dropped.ConnID))
	waitNth[*events.Connected](t, c.events, 2)
	st := d.Stats()
	g.Expect(st.Logins).To(Equal(2))
	g.Expect(st.Live).To(Equal(1))
}

func TestLoginFailure503IsRetried(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := paired(t, srv, "15550009999")

	d.FailLogins(fakewa.FailureUnavailable, 1)
	g.Expect(d.DropConnections()).To(Equal(1))
	waitNth[*events.Connected](t, c.events, 2)
	st := d.Stats()
	g.Expect(st.RejectedLogins).To(Equal(1))
	g.Expect(st.Logins).To(Equal(2))
}
