package session

import (
	"context"
	"fmt"
	"time"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// openWindow connects unpaired: WhatsApp answers with a set of QR codes (QRCodes).
func (m *machine) openWindow(ctx context.Context, _ input) {
	m.windows++
	m.codes, m.code = nil, 0
	if m.windows == 1 {
		// Pairing starts (or starts over): say so, with any request just handled, in the write
		// of the first QR code (or within a second if WhatsApp is slow to send one).
		m.note(whatsappv1alpha1.SessionConnecting, "opening a pairing window")
	}
	// The name the phone lists under Linked devices is sent with the registration.
	m.cli.SetDeviceName(m.wac.Spec.DeviceName)
	if err := m.cli.Connect(ctx); err != nil {
		m.log.Info("cannot reach WhatsApp to pair", "error", logText(err))
		m.step(ctx, input{sig: sigWindowClosed, why: "cannot reach WhatsApp to pair: " + Describe(err)})
	}
}

// showCodes publishes the window's first code (QR) or asks for a pairing code (PhoneCode, which
// needs this connected registration), and times the window with the same TTLs as WhatsApp.
func (m *machine) showCodes(ctx context.Context, in input) {
	ev := in.ev.(QRCodes)
	m.codes, m.code = ev.Codes, 0
	spec := m.wac.Spec.Pairing
	if spec.Method != whatsappv1alpha1.PairingMethodPhoneCode {
		m.publishQR(ctx)
		return
	}
	window := m.cfg.QRFirstTTL + time.Duration(len(ev.Codes)-1)*m.cfg.QRNextTTL
	pctx, cancel := context.WithTimeout(ctx, m.cfg.RenewDeadline)
	code, err := m.cli.PairPhone(pctx, spec.PhoneNumber)
	cancel()
	if err != nil {
		m.log.Info("cannot get a pairing code", "error", logText(err))
		m.step(ctx, input{sig: sigWindowClosed, why: "cannot get a pairing code: " + Describe(err)})
		return
	}
	m.clearPairing()
	m.st.PairingCode, m.st.PairingCodeExpiresAt = code, m.time(window)
	m.schedule(window, func() input { return input{sig: sigWindowClosed, why: "the pairing code expired"} })
	m.enter(ctx, whatsappv1alpha1.SessionPairing, "enter the pairing code on the phone under Linked devices")
}

// publishQR publishes the current code with its expiry and terminal drawing in one patch.
func (m *machine) publishQR(ctx context.Context) {
	ttl := m.cfg.QRNextTTL
	if m.code == 0 {
		ttl = m.cfg.QRFirstTTL
	}
	m.clearPairing()
	m.st.QRCode = m.codes[m.code]
	m.st.QRExpiresAt = m.time(ttl)
	drawing, err := renderQR(m.st.QRCode)
	if err != nil {
		m.log.Error(err, "cannot draw the QR code")
	}
	m.st.QRCodeTerminal = drawing
	m.metrics.qrCodes.Inc()
	m.schedule(ttl, m.qrExpired)
	m.enter(ctx, whatsappv1alpha1.SessionPairing, fmt.Sprintf("scan the QR code with WhatsApp on the phone (code %d of %d)", m.code+1, len(m.codes)))
}

// qrExpired is the signal of the current QR code's end: the next code, or the window's end.
func (m *machine) qrExpired() input {
	if m.code+1 >= len(m.codes) {
		return input{sig: sigWindowClosed, why: "the QR codes expired"}
	}
	return input{sig: sigNextQR}
}

func (m *machine) nextQR(ctx context.Context, _ input) {
	m.code++
	m.publishQR(ctx)
}

// closeWindow closes the registration connection and opens the next window after a backoff,
// or, once cfg.PairingWindows have run, signals that none is left.
func (m *machine) closeWindow(ctx context.Context, in input) {
	m.stopTimer()
	m.cli.Disconnect()
	m.clearPairing()
	if m.windows >= m.cfg.PairingWindows {
		m.step(ctx, input{sig: sigNoWindowLeft, why: in.why})
		return
	}
	wait := time.Duration(m.windows) * m.cfg.PairingBackoff
	m.schedule(wait, after(sigNextWindow))
	m.enter(ctx, whatsappv1alpha1.SessionPairing, fmt.Sprintf("%s; opening pairing window %d of %d in %s", in.why, m.windows+1, m.cfg.PairingWindows, wait))
}

func (m *machine) pairingTimeout(ctx context.Context, in input) {
	m.enter(ctx, whatsappv1alpha1.SessionPairingTimeout, fmt.Sprintf(
		"%s; no device was linked in %d pairing windows. Set the reconnect-requested-at annotation to pair again", in.why, m.windows))
}

// paired: the phone linked this device; whatsmeow logs in with it next.
func (m *machine) paired(ctx context.Context, in input) {
	ev := in.ev.(PairSuccess)
	m.windows = 0
	m.stopTimer()
	m.clearPairing()
	m.st.JID, m.st.Platform = ev.JID, ev.Platform
	m.note(whatsappv1alpha1.SessionConnecting, "paired; logging in")
}

// pairedByOtherAccount: not published as this resource's device; logged out once its login
// completes (refuseAccount).
func (m *machine) pairedByOtherAccount(ctx context.Context, _ input) {
	m.windows = 0
	m.stopTimer()
	m.clearPairing()
	m.enter(ctx, whatsappv1alpha1.SessionConnecting, "a phone of another account than spec.pairing.phoneNumber linked this device; logging it out")
}
