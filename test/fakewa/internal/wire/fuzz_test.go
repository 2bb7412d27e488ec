package wire

import (
	"bytes"
	"compress/zlib"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
)

// FuzzFrameDecoder feeds arbitrary client bytes, split into two websocket
// messages at any point. The decoder must not panic, must never return a
// frame over the limit, and must not depend on where the stream was split.
func FuzzFrameDecoder(f *testing.F) {
	f.Add(append(append([]byte{}, socket.WAConnHeader...), 0, 0, 3, 'a', 'b', 'c'), 5)
	f.Add([]byte("GET / HTTP/1.1\r\n"), 2)
	f.Add(append(append([]byte{}, socket.WAConnHeader...), 0xff, 0xff, 0xff), 4)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		const limit = 1 << 12
		whole, wholeErr := NewFrameDecoder(limit).Feed(data)
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		d := NewFrameDecoder(limit)
		first, err := d.Feed(data[:split])
		parts := first
		if err == nil {
			var rest [][]byte
			rest, err = d.Feed(data[split:])
			parts = append(parts, rest...)
		}
		if (wholeErr == nil) != (err == nil) {
			t.Fatalf("split at %d changed the outcome: whole %v, split %v", split, wholeErr, err)
		}
		if len(whole) != len(parts) {
			t.Fatalf("split at %d changed the frame count: %d vs %d", split, len(whole), len(parts))
		}
		for i := range whole {
			if len(whole[i]) > limit {
				t.Fatalf("frame %d has %d bytes, over the limit", i, len(whole[i]))
			}
			if !bytes.Equal(whole[i], parts[i]) {
				t.Fatalf("split at %d changed frame %d", split, i)
			}
		}
	})
}

// FuzzNodeDecoder feeds arbitrary decrypted frames to the node decoder. It
// must not panic (DecodeNode also recovers from panics inside whatsmeow's
// decoder, which this would report as an error), a decoded node must print,
// and the zlib path must decode exactly what the plain path decodes.
func FuzzNodeDecoder(f *testing.F) {
	seed, _ := waBinary.Marshal(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"id": "1", "type": "get", "xmlns": "w:p", "to": types.ServerJID},
		Content: []waBinary.Node{{Tag: "count", Content: []byte{1, 2, 3}}},
	})
	f.Add(seed)
	f.Add([]byte{2, 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		node, err := DecodeNode(data)
		if node == nil && err == nil {
			t.Fatal("DecodeNode returned neither a node nor an error")
		}
		if err == nil {
			_ = node.String()
		}
		if len(data) == 0 || data[0]&2 != 0 {
			return
		}
		var z bytes.Buffer
		z.WriteByte(data[0] | 2)
		zw := zlib.NewWriter(&z)
		_, _ = zw.Write(data[1:])
		_ = zw.Close()
		viaZlib, zerr := DecodeNode(z.Bytes())
		if (err == nil) != (zerr == nil) {
			t.Fatalf("compressed decode disagrees: plain %v, zlib %v", err, zerr)
		}
		if err == nil && node.String() != viaZlib.String() {
			t.Fatalf("compressed decode differs:\n%s\n%s", node.String(), viaZlib.String())
		}
	})
}
