package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// clearScreen moves the cursor home and clears, so a rotated code replaces the old one instead
// of scrolling a stale, still scannable-looking code above it.
const clearScreen = "\033[H\033[2J"

// WaitOptions control the commands that follow the resource while the session works.
type WaitOptions struct {
	// Watch keeps following the resource after the first result, until it is connected.
	Watch bool
	// Timeout bounds the wait; zero waits until ctx ends.
	Timeout time.Duration
	// PollInterval is how often the resource is read; zero means DefaultPollInterval.
	PollInterval time.Duration
	// ClearScreen redraws in place; only for a terminal.
	ClearScreen bool
}

// QR prints the QR code a phone scans to link the device. With Watch it redraws the code each
// time the session rotates it and returns once the device is connected, printing its JID.
func QR(ctx context.Context, t Target, out io.Writer, o WaitOptions) error {
	wac, err := t.get(ctx)
	if err != nil {
		return err
	}
	if jid, ok := connected(wac); ok {
		_, err := fmt.Fprintf(out, "%s is connected as %s.\n", wac.Name, jid)
		return err
	}
	if wac.Spec.Pairing.Method == whatsappv1alpha1.PairingMethodPhoneCode {
		return fmt.Errorf("%s pairs with a phone code, not a QR code: kubectl whatsapp pair %s --phone %s",
			wac.Name, wac.Name, orDash(wac.Spec.Pairing.PhoneNumber))
	}
	if !o.Watch {
		if err := halted(wac); err != nil {
			return err
		}
		if qrPayload(wac) == "" {
			return fmt.Errorf("%s has no QR code yet (phase %s); use --watch to wait for one",
				wac.Name, orDash(string(wac.Status.Phase)))
		}
		return printQR(out, wac, false)
	}

	shown, lastPhase, announced := "", whatsappv1alpha1.Phase(""), false
	return t.poll(ctx, o, t.Namespace+"/"+t.Name+" to connect",
		func(wac *whatsappv1alpha1.WhatsAppConnection) (bool, error) {
			if jid, ok := connected(wac); ok {
				_, err := fmt.Fprintf(out, "Connected as %s.\n", jid)
				return true, err
			}
			if err := halted(wac); err != nil {
				return false, err
			}
			if p := qrPayload(wac); p != "" && p != shown {
				shown = p
				return false, printQR(out, wac, o.ClearScreen)
			}
			// Between codes (the session starting, or pairing in progress after a scan) say
			// what is happening rather than leave an expired code as the last word.
			if qrPayload(wac) == "" && (!announced || wac.Status.Phase != lastPhase) {
				lastPhase, announced = wac.Status.Phase, true
				_, err := fmt.Fprintf(out, "Waiting: phase %s. %s\n", orDash(string(lastPhase)), oneLine(message(wac)))
				return false, err
			}
			return false, nil
		})
}

func qrPayload(wac *whatsappv1alpha1.WhatsAppConnection) string {
	if wac.Status.Connection == nil {
		return ""
	}
	return wac.Status.Connection.QRCode
}

func printQR(out io.Writer, wac *whatsappv1alpha1.WhatsAppConnection, redraw bool) error {
	conn := wac.Status.Connection
	drawing := conn.QRCodeTerminal
	if drawing == "" {
		q, err := qrcode.New(conn.QRCode, qrcode.Low)
		if err != nil {
			return fmt.Errorf("rendering the QR code: %w", err)
		}
		drawing = q.ToSmallString(false)
	}
	var b strings.Builder
	if redraw {
		b.WriteString(clearScreen)
	}
	fmt.Fprintf(&b, "Scan with WhatsApp > Settings > Linked devices > Link a device (%s/%s):\n",
		wac.Namespace, wac.Name)
	b.WriteString(strings.TrimPrefix(drawing, "\n"))
	if !strings.HasSuffix(drawing, "\n") {
		b.WriteByte('\n')
	}
	if conn.QRExpiresAt != nil {
		fmt.Fprintf(&b, "Expires at %s.\n", conn.QRExpiresAt.Local().Format(time.TimeOnly))
	}
	_, err := io.WriteString(out, b.String())
	return err
}
