package session

import (
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// renderQR draws a QR code in Unicode half blocks, two modules rows per text line, with the
// quiet zone the scanner needs. Dark modules are drawn as blocks, so it reads on a light
// background; kubectl describe prints a multi-line string as a block whose first line follows
// the field label, hence the leading newline.
func renderQR(payload string) (string, error) {
	q, err := qrcode.New(payload, qrcode.Low)
	if err != nil {
		return "", err
	}
	bits := q.Bitmap() // includes a 4-module border
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		b.WriteByte('\n')
		for x := range bits[y] {
			top := bits[y][x]
			bottom := y+1 < len(bits) && bits[y+1][x]
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
