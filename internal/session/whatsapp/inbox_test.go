package whatsapp_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func TestInboxKeepsUndecryptableMessagesAsTheirOwnEvents(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, d := startPaired(t, "15550008101")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	opener := whatsapp.Opener{Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient}
	cli := openConnected(ctx, g, opener)

	phone := srv.Phone("15550008102")
	to := types.NewJID("15550008101", types.DefaultUserServer)
	bad, err := phone.SendUndecryptable(ctx, to)
	g.Expect(err).NotTo(HaveOccurred())
	good, err := phone.SendText(ctx, to, "readable")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 && st.Receipts["delivery"] == 1 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cli.Close()).To(Succeed())

	rows := inboxRows(g, path)
	g.Expect(rows).To(HaveLen(2))
	g.Expect(rows[0].Type).To(Equal(inbox.TypeUndecryptable))
	g.Expect(rows[0].MessageID).To(Equal(bad.ID))
	g.Expect(rows[1].Type).To(Equal(inbox.TypeMessage))
	g.Expect(rows[1].MessageID).To(Equal(good.ID))
	g.Expect(text(g, rows[1])).To(Equal("readable"))
}
