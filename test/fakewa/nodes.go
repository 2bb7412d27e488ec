package fakewa

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// maxNodeSize bounds a decompressed node so that a small compressed frame
// cannot expand without limit (waBinary.Unpack reads everything).
const maxNodeSize = 4 << 20

var errNodeTooLarge = errors.New("decompressed node exceeds the size limit")

// decodeNode turns a decrypted frame into a node. It is the only place where
// client bytes reach whatsmeow's binary decoder, so it also turns any panic in
// that decoder into an error: hostile input must not crash the server.
func decodeNode(data []byte) (node *waBinary.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("node decoder panicked: %v", r)
		}
	}()
	if len(data) == 0 {
		return nil, errors.New("empty frame")
	}
	flags, body := data[0], data[1:]
	if flags&2 != 0 {
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxNodeSize+1))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		if len(body) > maxNodeSize {
			return nil, errNodeTooLarge
		}
	}
	return waBinary.Unmarshal(body)
}

func encodeNode(node waBinary.Node) ([]byte, error) {
	return waBinary.Marshal(node)
}

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
