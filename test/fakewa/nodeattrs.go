package fakewa

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// serverJID is where every server-originated node comes from; whatsmeow
// ignores pair-device and pair-success iqs from anyone else.
var serverJID = types.ServerJID

func attrString(node *waBinary.Node, key string) string {
	switch v := node.Attrs[key].(type) {
	case string:
		return v
	case types.JID:
		return v.String()
	default:
		return ""
	}
}

func childBytes(node *waBinary.Node, tags ...string) []byte {
	child, ok := node.GetOptionalChildByTag(tags...)
	if !ok {
		return nil
	}
	b, _ := child.Content.([]byte)
	return b
}
