package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// start picks up what earlier session pods reported (the request tokens they handled) and
// either acts on a pending request or connects.
func (m *machine) start(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection) {
	if prev := wac.Status.Connection; prev != nil {
		m.st.LastHandledLogoutAt = prev.LastHandledLogoutAt
		m.st.LastHandledReconnectAt = prev.LastHandledReconnectAt
	}
	if m.cli == nil {
		m.wac = wac
		m.storeFailed(ctx, m.storeErr)
		m.onResource(ctx, wac)
		return
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.ReconnectRequestedAtAnnotation); tok != "" {
		// This pod is the answer to that request: the controller replaced the halted one.
		m.st.LastHandledReconnectAt = tok
	}
	if m.onResource(ctx, wac) {
		return
	}
	m.connect(ctx)
}

// connect logs in when the store holds a device, else opens a pairing window.
func (m *machine) connect(ctx context.Context) {
	if m.replaced || m.cli == nil {
		return
	}
	m.stopTimer()
	m.halted = false
	if m.cli.PairedJID() == "" {
		m.openPairingWindow(ctx)
		return
	}
	m.st.JID = m.cli.PairedJID()
	m.enter(ctx, whatsappv1alpha1.SessionConnecting, "logging in")
	if err := m.cli.Connect(ctx); err != nil {
		m.connectFailed(ctx, err)
	}
}

// connectFailed counts a login that did not reach WhatsApp like a failed automatic reconnect,
// and tries again after whatsmeow's own backoff (2 s × attempts) while under the limit.
func (m *machine) connectFailed(ctx context.Context, err error) {
	n := m.attempts.Add(1)
	m.metrics.reconnects.Inc()
	m.reconnectFailed(ctx, n, err)
	if n < m.maxAttempts.Load() {
		m.schedule(time.Duration(n)*2*time.Second, m.connect)
	}
}

func (m *machine) reconnectFailed(ctx context.Context, n int32, err error) {
	if m.halted || m.connected.Load() {
		return
	}
	m.st.ReconnectAttempts = n
	msg := fmt.Sprintf("connect attempt %d of %d failed: %s", n, m.maxAttempts.Load(), Describe(err))
	if n >= m.maxAttempts.Load() {
		msg = fmt.Sprintf("gave up after %d failed connects (spec.reconnect.maxAttempts): %s", n, Describe(err))
		// Also stops whatsmeow's own retries of failed logins, which the hook does not see.
		m.halt()
	}
	m.enter(ctx, whatsappv1alpha1.SessionDisconnected, msg)
}

func (m *machine) onEvent(ctx context.Context, ev Event) {
	switch ev := ev.(type) {
	case SinksHealth:
		m.onSinksHealth(ctx, ev)
	case QRCodes:
		m.onQRCodes(ctx, ev)
	case PairSuccess:
		m.pairingActive, m.windows = false, 0
		m.stopTimer()
		m.clearPairing()
		if m.unexpectedAccount(ev.JID) {
			// Not published as this resource's device: logged out once its login completes.
			m.enter(ctx, whatsappv1alpha1.SessionConnecting, "a phone of another account than spec.pairing.phoneNumber linked this device; logging it out")
			return
		}
		m.st.JID, m.st.Platform = ev.JID, ev.Platform
		m.note(whatsappv1alpha1.SessionConnecting, "paired; logging in")
	case PairError:
		m.log.Info("pairing failed", "error", logText(ev.Err))
		m.endPairingWindow(ctx, "pairing failed: "+Describe(ev.Err))
	case Connected:
		if m.unexpectedAccount(ev.JID) {
			m.refuseAccount(ctx, ev.JID)
			return
		}
		m.st.UnexpectedAccount = ""
		m.attempts.Store(0)
		m.halted, m.banRetried = false, false
		m.stopTimer()
		m.clearPairing()
		m.clearFailure()
		m.st.JID, m.st.PushName, m.st.ReconnectAttempts = ev.JID, ev.PushName, 0
		if ev.Platform != "" {
			m.st.Platform = ev.Platform
		}
		m.st.LastConnectedAt = m.time(0)
		m.enter(ctx, whatsappv1alpha1.SessionConnected, "")
	case Disconnected:
		switch {
		case m.pairingActive:
			m.endPairingWindow(ctx, "the pairing window closed")
		case m.halted || m.cli.PairedJID() == "":
		case m.st.State == whatsappv1alpha1.SessionConnected:
			m.st.ReconnectAttempts = m.attempts.Load()
			m.enter(ctx, whatsappv1alpha1.SessionDisconnected, "connection lost; reconnecting")
		default:
			// A reconnect reached WhatsApp but the login failed (a 5xx <failure>): whatsmeow
			// retries that without asking AutoReconnectHook, so it is counted here.
			n := m.attempts.Add(1)
			m.metrics.reconnects.Inc()
			m.reconnectFailed(ctx, n, errors.New("the login did not complete"))
		}
	case StreamReplaced:
		m.replaced = true
		m.halt()
		m.enter(ctx, whatsappv1alpha1.SessionReplaced,
			"another client logged in with this device's keys; this session closed its connection and will not reconnect")
	case LoggedOut:
		m.halt()
		m.clearDevice()
		m.enter(ctx, whatsappv1alpha1.SessionLoggedOut, "the device was logged out ("+ev.Reason+"); set the logout-requested-at annotation to pair again")
	case ClientOutdated:
		m.halt()
		m.enter(ctx, whatsappv1alpha1.SessionClientOutdated, "WhatsApp refuses this client version; update the operator")
	case TemporaryBan:
		m.onTemporaryBan(ctx, ev)
	case ConnectFailure:
		m.halt()
		m.st.FailureCode = ev.Code
		m.enter(ctx, whatsappv1alpha1.SessionConnectFailure, fmt.Sprintf("WhatsApp refused the login (%s): %s", ev.Code, ev.Message))
	}
}

// halt stops whatever the session was doing and closes the connection; only a request (or,
// for a ban, its expiry) starts it again.
func (m *machine) halt() {
	m.halted, m.pairingActive = true, false
	m.stopTimer()
	m.clearPairing()
	if m.cli != nil {
		m.cli.Disconnect()
	}
}

// onTemporaryBan waits the ban out and tries once more; a second ban in a row stays halted.
func (m *machine) onTemporaryBan(ctx context.Context, ev TemporaryBan) {
	m.halt()
	m.st.FailureCode = ev.Code
	m.st.BanExpiresAt = m.time(ev.Expire)
	msg := fmt.Sprintf("temporarily banned (code %s) until %s", ev.Code, m.st.BanExpiresAt.UTC().Format(time.RFC3339))
	if !m.banRetried {
		m.banRetried = true
		m.schedule(ev.Expire, m.connect)
		msg += "; the session tries once more then"
	}
	m.enter(ctx, whatsappv1alpha1.SessionTemporaryBan, msg)
}
