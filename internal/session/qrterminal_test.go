package session

import (
	"image"
	"image/color"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	goqr "github.com/piglig/go-qr"
)

// drawingToImage turns renderQR's half blocks back into pixels (dark modules black), px pixels
// per module, as a camera pointed at `kubectl describe` would see them.
func drawingToImage(t *testing.T, drawing string, px int) image.Image {
	t.Helper()
	lines := strings.Split(strings.TrimPrefix(drawing, "\n"), "\n")
	width := len([]rune(lines[0]))
	img := image.NewGray(image.Rect(0, 0, width*px, 2*len(lines)*px))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for row, line := range lines {
		for x, r := range []rune(line) {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			for half, dark := range []bool{top, bottom} {
				if !dark {
					continue
				}
				y := 2*row + half
				for dy := range px {
					for dx := range px {
						img.SetGray(x*px+dx, y*px+dy, color.Gray{})
					}
				}
			}
		}
	}
	return img
}

// The drawing in status.connection.qrCodeTerminal must scan to the code itself, quiet zone
// included, for WhatsApp's current payload form and the older one.
func TestQRDrawingScansToThePayload(t *testing.T) {
	for _, payload := range []string{
		"2@abc,def,ghi,jkl",
		"2@Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU==,Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=,aWRlbnRpdHlpZGVudGl0eWlkZW50aXR5aWRlbnRpdHk=,YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWQ=",
		"https://wa.me/settings/linked_devices#2@Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU==,Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=,aWRlbnRpdHlpZGVudGl0eWlkZW50aXR5aWRlbnRpdHk=,YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWQ=,1",
	} {
		t.Run(payload[:8], func(t *testing.T) {
			g := NewWithT(t)
			drawing, err := renderQR(payload)
			g.Expect(err).NotTo(HaveOccurred())
			lines := strings.Split(strings.TrimPrefix(drawing, "\n"), "\n")
			g.Expect(strings.Trim(lines[0]+lines[1], " ")).To(BeEmpty(), "the quiet zone's top rows")
			g.Expect(goqr.Decode(drawingToImage(t, drawing, 4))).To(Equal(payload))
		})
	}
}

// renderQR runs once per code on the way to status (start → QR in status); this is its cost.
func BenchmarkRenderQR(b *testing.B) {
	payload := "https://wa.me/settings/linked_devices#2@Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU==,Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=,aWRlbnRpdHlpZGVudGl0eWlkZW50aXR5aWRlbnRpdHk=,YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWR2YWQ=,1"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := renderQR(payload); err != nil {
			b.Fatal(err)
		}
	}
}
