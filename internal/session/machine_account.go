package session

import (
	"context"
	"strings"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Anyone who can read the resource while it pairs can scan its QR code with their own phone and
// so receive what the device receives. When spec.pairing.phoneNumber names the account, a link
// by any other account is undone: once that login completes (WhatsApp takes an unlink only from
// a logged-in device), the session logs the device out, which removes it from that phone and
// wipes the store, reports the refused account (the controller records Conflict
// UnexpectedAccount) and opens a new pairing window, so the right phone can still pair.

// expectedAccount is the account user part spec.pairing.phoneNumber names, "" when unset.
func expectedAccount(wac *whatsappv1alpha1.WhatsAppConnection) string {
	if wac == nil {
		return ""
	}
	return digits(wac.Spec.Pairing.PhoneNumber)
}

// accountOf is the phone number (user part) of a device JID "15550001111:3@s.whatsapp.net".
func accountOf(jid string) string {
	user, _, _ := strings.Cut(jid, "@")
	user, _, _ = strings.Cut(user, ":")
	return digits(user)
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// unexpectedAccount reports whether jid belongs to an account other than the expected one.
func (m *machine) unexpectedAccount(jid string) bool {
	want := expectedAccount(m.wac)
	return want != "" && jid != "" && accountOf(jid) != want
}

// refuseAccount logs out the device another account linked and pairs again.
func (m *machine) refuseAccount(ctx context.Context, in input) {
	jid := in.ev.(Connected).JID
	m.log.Info("refusing a device linked by another account than spec.pairing.phoneNumber", "account", accountOf(jid))
	m.logout(ctx, "a phone of another account than spec.pairing.phoneNumber linked this device; it was logged out")
	m.st.UnexpectedAccount = "+" + accountOf(jid)
	m.windows = 0
	m.connect(ctx, in)
}
