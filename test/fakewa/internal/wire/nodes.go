package wire

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// MaxNodeSize bounds a decompressed node so that a small compressed frame
// cannot expand without limit (waBinary.Unpack reads everything).
const MaxNodeSize = 4 << 20

// ErrNodeTooLarge is returned for a compressed node that inflates past MaxNodeSize.
var ErrNodeTooLarge = errors.New("decompressed node exceeds the size limit")

// DecodeNode turns a decrypted frame into a node. It is the only place where
// client bytes reach whatsmeow's binary decoder, so it also turns any panic in
// that decoder into an error: hostile input must not crash the server.
func DecodeNode(data []byte) (node *waBinary.Node, err error) {
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
		body, err = io.ReadAll(io.LimitReader(zr, MaxNodeSize+1))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		if len(body) > MaxNodeSize {
			return nil, ErrNodeTooLarge
		}
	}
	return waBinary.Unmarshal(body)
}

// EncodeNode is waBinary.Marshal (uncompressed, flag byte 0).
func EncodeNode(node waBinary.Node) ([]byte, error) {
	return waBinary.Marshal(node)
}
