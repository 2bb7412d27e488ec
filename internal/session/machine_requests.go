package session

import (
	"context"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// onResource takes a new version of the resource: the reconnect limit, then deletion or one of
// the two request tokens, decided by the table. A token is recorded (echoed in status) whatever
// the phase makes of it.
func (m *machine) onResource(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection) {
	m.wac = wac
	m.maxAttempts.Store(wac.Spec.Reconnect.Limit())
	if in, ok := m.request(wac); ok {
		m.step(ctx, in)
	}
}

// request is what wac asks of the session, if anything. A resource being deleted asks nothing
// else: its tokens are not handled any more.
func (m *machine) request(wac *whatsappv1alpha1.WhatsAppConnection) (input, bool) {
	if !wac.DeletionTimestamp.IsZero() {
		logout := wac.Spec.LogoutOnDelete == nil || *wac.Spec.LogoutOnDelete
		return input{sig: sigDeleted}, logout
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.LogoutRequestedAtAnnotation); tok != "" && tok != m.st.LastHandledLogoutAt {
		m.st.LastHandledLogoutAt = tok
		if whatsappv1alpha1.LogoutTokenPredatesResource(wac, tok) {
			return input{sig: sigStaleLogoutRequested}, true
		}
		return input{sig: sigLogoutRequested}, true
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.ReconnectRequestedAtAnnotation); tok != "" && tok != m.st.LastHandledReconnectAt {
		m.st.LastHandledReconnectAt = tok
		return input{sig: sigReconnectRequested}, true
	}
	return input{}, false
}

// logoutForDeletion logs out and lets another resource use the store's database.
func (m *machine) logoutForDeletion(ctx context.Context, _ input) {
	m.logout(ctx, "logged out because the resource is being deleted")
	if err := m.cli.ReleaseStore(ctx); err != nil {
		m.log.Info("cannot release the device store", "error", logText(err))
	}
}

// logoutAndPair answers a logout request: wipe, then pair anew.
func (m *machine) logoutAndPair(ctx context.Context, in input) {
	m.logout(ctx, "logged out on request; pairing again")
	m.windows = 0
	m.connect(ctx, in)
}

// resume answers a reconnect request in a phase it lifts: the counters start afresh.
func (m *machine) resume(ctx context.Context, in input) {
	m.attempts.Store(0)
	m.st.ReconnectAttempts = 0
	m.windows, m.bans = 0, 0
	m.clearFailure()
	m.cli.Disconnect()
	m.connect(ctx, in)
}

// logout unlinks the device (when the client can reach WhatsApp) and wipes the store, then
// reports LoggedOut.
func (m *machine) logout(ctx context.Context, message string) {
	// Not halt(): that would disconnect, and unlinking needs the live connection.
	m.stopTimer()
	m.clearPairing()
	lctx, cancel := context.WithTimeout(ctx, m.cfg.RenewDeadline)
	defer cancel()
	err := m.cli.Logout(lctx)
	if err != nil {
		m.log.Info("logout did not reach WhatsApp", "error", logText(err))
		message += " (the store was wiped, but WhatsApp was not told: " + Describe(err) + "; remove the device on the phone)"
	}
	m.clearDevice()
	m.clearFailure()
	m.st.ReconnectAttempts = 0
	m.enter(ctx, whatsappv1alpha1.SessionLoggedOut, message)
}
