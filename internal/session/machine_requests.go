package session

import (
	"context"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// onResource takes a new version of the resource: the reconnect limit, deletion and the two
// request tokens. It reports whether it started something (so start does not connect too).
func (m *machine) onResource(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection) bool {
	m.wac = wac
	m.maxAttempts.Store(wac.Spec.Reconnect.Limit())

	if !wac.DeletionTimestamp.IsZero() {
		logout := wac.Spec.LogoutOnDelete == nil || *wac.Spec.LogoutOnDelete
		if logout && !m.deleteHandled && m.cli != nil && !m.replaced {
			m.deleteHandled = true
			m.logout(ctx, "logged out because the resource is being deleted")
			// The store is empty now: let another resource use its database.
			if err := m.cli.ReleaseStore(ctx); err != nil {
				m.log.Info("cannot release the device store", "error", logText(err))
			}
			return true
		}
		return false
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.LogoutRequestedAtAnnotation); tok != "" && tok != m.st.LastHandledLogoutAt {
		m.st.LastHandledLogoutAt = tok
		if m.cli == nil || m.replaced || whatsappv1alpha1.LogoutTokenPredatesResource(wac, tok) {
			m.publish(ctx)
			return false
		}
		m.logout(ctx, "logged out on request; pairing again")
		m.windows = 0
		m.connect(ctx)
		return true
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.ReconnectRequestedAtAnnotation); tok != "" && tok != m.st.LastHandledReconnectAt {
		m.st.LastHandledReconnectAt = tok
		if m.cli == nil {
			m.publish(ctx)
			m.retryStore(ctx)
			return true
		}
		if !m.replaced && m.st.State.ResumesOnRequest() && (m.halted || m.st.State == whatsappv1alpha1.SessionDisconnected) {
			m.attempts.Store(0)
			m.st.ReconnectAttempts = 0
			m.windows, m.banRetried = 0, false
			m.clearFailure()
			m.cli.Disconnect()
			m.connect(ctx)
			return true
		}
		m.publish(ctx)
	}
	return false
}

// logout unlinks the device (when the client can reach WhatsApp) and wipes the store, then
// reports LoggedOut.
func (m *machine) logout(ctx context.Context, message string) {
	// Not halt(): that would disconnect, and unlinking needs the live connection.
	m.stopTimer()
	m.pairingActive = false
	m.clearPairing()
	lctx, cancel := context.WithTimeout(ctx, m.cfg.RenewDeadline)
	defer cancel()
	err := m.cli.Logout(lctx)
	m.halted = true
	if err != nil {
		m.log.Info("logout did not reach WhatsApp", "error", logText(err))
		message += " (the store was wiped, but WhatsApp was not told: " + Describe(err) + "; remove the device on the phone)"
	}
	m.clearDevice()
	m.clearFailure()
	m.st.ReconnectAttempts = 0
	m.enter(ctx, whatsappv1alpha1.SessionLoggedOut, message)
}
