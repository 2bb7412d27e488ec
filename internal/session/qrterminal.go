package session

import (
	"strings"

	goqr "github.com/piglig/go-qr"
)

// qrQuietZone is the border of light modules around the code that a scanner needs (4 in the
// QR specification).
const qrQuietZone = 4

// renderQR draws a QR code in Unicode half blocks, two modules rows per text line, with the
// quiet zone the scanner needs. Dark modules are drawn as blocks, so it reads on a light
// background; kubectl describe prints a multi-line string as a block whose first line follows
// the field label, hence the leading newline.
//
// It is on the path to the first QR code in status: go-qr (a port of Nayuki's encoder) draws
// WhatsApp's code in ~1 ms, 25 kB in 43 allocations; skip2/go-qrcode, used before, took
// ~3.5 ms, 747 kB in 13,186 (BenchmarkRenderQR; docs/benchmarks.md, "Fifth round: the
// session's start CPU").
func renderQR(payload string) (string, error) {
	q, err := goqr.EncodeText(payload, goqr.Low)
	if err != nil {
		return "", err
	}
	dark := func(x, y int) bool { return q.Module(x-qrQuietZone, y-qrQuietZone) } // false outside the code
	side := q.Size() + 2*qrQuietZone
	var b strings.Builder
	b.Grow((side + 1) / 2 * (side*3 + 1))
	for y := 0; y < side; y += 2 {
		b.WriteByte('\n')
		for x := range side {
			top, bottom := dark(x, y), y+1 < side && dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
	}
	return b.String(), nil
}
