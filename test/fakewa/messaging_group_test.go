package fakewa_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func TestPhoneWritesInAGroupChat(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := pairedWithKeys(t, srv, "15550007401")
	sender := srv.Phone("15550007402")
	group := types.NewJID("120363000000000001", types.GroupServer)

	_, err := sender.SendGroupText(ctxT(t), account("15550007402"), account("15550007401"), "not a group")
	g.Expect(err).To(MatchError(fakewa.ErrBadJID))

	direct, err := sender.SendText(ctxT(t), account("15550007401"), "direct")
	g.Expect(err).NotTo(HaveOccurred())
	inGroup, err := sender.SendGroupText(ctxT(t), group, account("15550007401"), "in the group")
	g.Expect(err).NotTo(HaveOccurred())

	first := waitNth[*events.Message](t, c.events, 1)
	g.Expect(first.Info.ID).To(Equal(direct.ID))
	g.Expect(first.Info.Chat).To(Equal(account("15550007402")))
	second := waitNth[*events.Message](t, c.events, 2)
	g.Expect(second.Info.ID).To(Equal(inGroup.ID))
	g.Expect(second.Message.GetConversation()).To(Equal("in the group"))
	g.Expect(second.Info.IsGroup).To(BeTrue())
	g.Expect(second.Info.Chat).To(Equal(group), "the group is the chat")
	g.Expect(second.Info.Sender.User).To(Equal("15550007402"), "the phone is the sender")

	// The device's delivery receipt (to the group, participant the phone) empties the mailbox.
	st, err := d.WaitMailbox(ctxT(t), func(st fakewa.MailboxStats) bool { return st.Receipts["delivery"] == 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.Pending).To(BeZero())
}
