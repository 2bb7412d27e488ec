// Package wire splits the client's byte stream into frames and frames into
// nodes for the fake server. It is kept apart, with few dependencies, so
// that its fuzz targets build quickly.
package wire

import (
	"bytes"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/socket"
)

// DefaultMaxFrameSize bounds one client frame. whatsmeow never sends frames
// anywhere near this (its largest is the initial pre-key upload, ~100 KiB);
// a larger frame is treated as hostile and closes the connection.
const DefaultMaxFrameSize = 1 << 20

const frameLengthSize = socket.FrameLengthSize

// Decoder errors; any of them means the client is broken or hostile.
var (
	ErrBadHeader     = errors.New("connection header is not WA\\x06\\x03")
	ErrFrameTooLarge = errors.New("frame exceeds the size limit")
)

// FrameDecoder splits the client's byte stream into frames: the 4-byte
// connection header once, then frames with a 3-byte big-endian length. A
// websocket message may hold several frames or part of one.
type FrameDecoder struct {
	maxSize    int
	headerSeen bool
	buf        []byte
}

func NewFrameDecoder(maxSize int) *FrameDecoder {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	return &FrameDecoder{maxSize: maxSize}
}

// Feed consumes one websocket message and returns the frames it completed.
// After an error the decoder is unusable; the caller closes the connection.
func (d *FrameDecoder) Feed(msg []byte) ([][]byte, error) {
	d.buf = append(d.buf, msg...)
	if !d.headerSeen {
		header := socket.WAConnHeader
		n := min(len(d.buf), len(header))
		if !bytes.Equal(d.buf[:n], header[:n]) {
			return nil, ErrBadHeader
		}
		if len(d.buf) < len(header) {
			return nil, nil
		}
		d.buf = d.buf[len(header):]
		d.headerSeen = true
	}
	var frames [][]byte
	for len(d.buf) >= frameLengthSize {
		length := int(d.buf[0])<<16 | int(d.buf[1])<<8 | int(d.buf[2])
		if length > d.maxSize {
			return frames, fmt.Errorf("%w (%d > %d bytes)", ErrFrameTooLarge, length, d.maxSize)
		}
		if len(d.buf) < frameLengthSize+length {
			break
		}
		frames = append(frames, append([]byte(nil), d.buf[frameLengthSize:frameLengthSize+length]...))
		d.buf = d.buf[frameLengthSize+length:]
	}
	if len(d.buf) == 0 {
		d.buf = nil
	}
	return frames, nil
}

// EncodeFrame prefixes data with its 3-byte length; the server never sends
// the connection header (only the client does).
func EncodeFrame(data []byte) ([]byte, error) {
	if len(data) >= socket.FrameMaxSize {
		return nil, ErrFrameTooLarge
	}
	out := make([]byte, frameLengthSize+len(data))
	out[0], out[1], out[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(out[frameLengthSize:], data)
	return out, nil
}
