package fakewa

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// SendGroupText makes the phone write text in the group chat group (a JID on g.us), as seen by
// the account to: only to's devices get it, each encrypted on the phone's pairwise Signal
// session (pkmsg/msg, as the real service's sender-key distribution message is), with
// from=group and participant=phone. fakewa keeps no group membership, metadata or sender keys:
// this is enough for a device to see several chats from one phone, in order.
func (p *Phone) SendGroupText(ctx context.Context, group, to types.JID, text string) (SentMessage, error) {
	if group.Server != types.GroupServer || group.User == "" {
		return SentMessage{}, fmt.Errorf("%w: %q is not a group", ErrBadJID, group.String())
	}
	plaintext, err := proto.Marshal(&waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		return SentMessage{}, err
	}
	return p.send(ctx, to, group, padMessage(plaintext), false)
}
