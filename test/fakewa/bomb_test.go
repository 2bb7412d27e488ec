package fakewa_test

import (
	"bytes"
	"compress/zlib"
	"testing"
)

// zlibBomb is a compressed node frame (flag 2) that inflates to 64 MiB.
func zlibBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(2)
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	chunk := make([]byte, 1<<20)
	for range 64 {
		if _, err := zw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
