//go:build cluster

package cluster

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// decodeDescribedQR reads the QR code `kubectl describe` draws in half blocks (two module rows
// per line) back into modules, renders them as a PNG and decodes it with a real QR reader
// (zbarimg, Debian's zbar-tools), as a phone's camera would read the terminal.
func decodeDescribedQR(describe, dir string) (string, error) {
	_, after, ok := strings.Cut(describe, "Qr Code Terminal:")
	if !ok {
		return "", fmt.Errorf("describe shows no QR code")
	}
	var rows [][]rune
	started := false
	for _, line := range strings.Split(after, "\n")[1:] {
		if !strings.ContainsAny(line, "▀▄█") {
			if started {
				break
			}
			continue
		}
		started = true
		rows = append(rows, []rune(line))
	}
	if len(rows) == 0 {
		return "", fmt.Errorf("describe's QR code has no modules")
	}
	// The code's left edge is the leftmost drawn column; its width follows from the rightmost
	// (the finder patterns sit in both top corners).
	left, right := 1<<30, -1
	for _, r := range rows {
		for x, c := range r {
			if c == '▀' || c == '▄' || c == '█' {
				left, right = min(left, x), max(right, x)
			}
		}
	}
	n := right - left + 1
	dark := func(x, y int) bool {
		line := y / 2
		if line >= len(rows) || left+x >= len(rows[line]) {
			return false
		}
		c := rows[line][left+x]
		if y%2 == 0 {
			return c == '▀' || c == '█'
		}
		return c == '▄' || c == '█'
	}
	// The first drawn line may start on an odd module row (quiet rows above it).
	offset := 0
	if !dark(0, 0) {
		offset = 1
	}
	const scale, quiet = 8, 4
	size := (n + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if !dark(x, y+offset) {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
				}
			}
		}
	}
	path := filepath.Join(dir, "described-qr.png")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sbinary", path).Output()
	if err != nil {
		return "", fmt.Errorf("zbarimg could not read the QR code kubectl describe shows: %w", err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}
