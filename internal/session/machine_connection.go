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
		m.step(ctx, input{sig: sigStoreFailed, err: m.storeErr})
		m.onResource(ctx, wac)
		return
	}
	if tok := whatsappv1alpha1.RequestToken(wac, whatsappv1alpha1.ReconnectRequestedAtAnnotation); tok != "" {
		// This pod is the answer to that request: the controller replaced the halted one.
		m.st.LastHandledReconnectAt = tok
	}
	m.onResource(ctx, wac)
	if m.phase == phaseStarting { // no request started anything
		m.connect(ctx, input{})
	}
}

// onEvent classifies the client's event and hands it to the table. The sinks' health is not
// part of the lifecycle: it is reported in any phase.
func (m *machine) onEvent(ctx context.Context, ev Event) {
	if h, ok := ev.(SinksHealth); ok {
		m.onSinksHealth(ctx, h)
		return
	}
	if in, ok := m.classify(ev); ok {
		m.step(ctx, in)
	}
}

// classify names what ev means for the session: which account paired or logged in, whether
// the store holds a device, whether a ban is the first in a row.
func (m *machine) classify(ev Event) (input, bool) {
	in := input{ev: ev}
	switch ev := ev.(type) {
	case QRCodes:
		if len(ev.Codes) == 0 {
			return in, false
		}
		in.sig = sigQRCodes
	case PairSuccess:
		in.sig = sigPaired
		if m.unexpectedAccount(ev.JID) {
			in.sig = sigPairedByOtherAccount
		}
	case PairError:
		m.log.Info("pairing failed", "error", logText(ev.Err))
		in.sig, in.why = sigWindowClosed, "pairing failed: "+Describe(ev.Err)
	case Connected:
		in.sig = sigConnected
		if m.unexpectedAccount(ev.JID) {
			in.sig = sigConnectedByOtherAccount
		}
	case Disconnected:
		in.sig, in.why = sigDisconnected, "the pairing window closed"
		if m.cli.PairedJID() == "" {
			in.sig = sigDisconnectedUnpaired
		}
	case StreamReplaced:
		in.sig = sigStreamReplaced
	case LoggedOut:
		in.sig = sigLoggedOut
	case ClientOutdated:
		in.sig = sigClientOutdated
	case TemporaryBan:
		in.sig = sigBan
		if m.bans > 0 {
			in.sig = sigBanAgain
		}
	case ConnectFailure:
		in.sig = sigConnectFailure
	default:
		return in, false
	}
	return in, true
}

// login connects with the device in the store.
func (m *machine) login(ctx context.Context, _ input) {
	m.st.JID = m.cli.PairedJID()
	m.enter(ctx, whatsappv1alpha1.SessionConnecting, "logging in")
	if err := m.cli.Connect(ctx); err != nil {
		// A login that did not reach WhatsApp counts like a failed automatic reconnect.
		n := m.attempts.Add(1)
		m.metrics.reconnects.Inc()
		m.step(ctx, m.failedConnect(n, err, true))
	}
}

// loggedIn: WhatsApp accepted the login; the counters start afresh.
func (m *machine) loggedIn(ctx context.Context, in input) {
	ev := in.ev.(Connected)
	m.st.UnexpectedAccount = ""
	m.attempts.Store(0)
	m.bans = 0
	m.stopTimer()
	m.clearPairing()
	m.clearFailure()
	m.st.JID, m.st.PushName, m.st.ReconnectAttempts = ev.JID, ev.PushName, 0
	if ev.Platform != "" {
		m.st.Platform = ev.Platform
	}
	m.st.LastConnectedAt = m.time(0)
	m.enter(ctx, whatsappv1alpha1.SessionConnected, "")
}

func (m *machine) connectionLost(ctx context.Context, _ input) {
	m.st.ReconnectAttempts = m.attempts.Load()
	m.enter(ctx, whatsappv1alpha1.SessionDisconnected, "connection lost; reconnecting")
}

// countDroppedLogin counts a login that reached WhatsApp and dropped.
func (m *machine) countDroppedLogin(ctx context.Context, _ input) {
	n := m.attempts.Add(1)
	m.metrics.reconnects.Inc()
	m.step(ctx, m.failedConnect(n, errors.New("the login did not complete"), false))
}

// reportAttempt says which failed connect in a row this was.
func (m *machine) reportAttempt(ctx context.Context, in input) {
	m.st.ReconnectAttempts = in.n
	m.enter(ctx, whatsappv1alpha1.SessionDisconnected,
		fmt.Sprintf("connect attempt %d of %d failed: %s", in.n, m.maxAttempts.Load(), Describe(in.err)))
}

// retryLogin reports a login that could not start and tries again after whatsmeow's own
// backoff (2 s × attempts).
func (m *machine) retryLogin(ctx context.Context, in input) {
	m.reportAttempt(ctx, in)
	m.schedule(time.Duration(in.n)*2*time.Second, after(sigRetryLogin))
}

// giveUp halts at spec.reconnect.maxAttempts; the halt also stops whatsmeow's own retries of
// failed logins, which the hook does not see.
func (m *machine) giveUp(ctx context.Context, in input) {
	m.st.ReconnectAttempts = in.n
	m.halt()
	m.enter(ctx, whatsappv1alpha1.SessionDisconnected,
		fmt.Sprintf("gave up after %d failed connects (spec.reconnect.maxAttempts): %s", in.n, Describe(in.err)))
}

func (m *machine) replaced(ctx context.Context, _ input) {
	m.halt()
	m.enter(ctx, whatsappv1alpha1.SessionReplaced,
		"another client logged in with this device's keys; this session closed its connection and will not reconnect")
}

func (m *machine) loggedOut(ctx context.Context, in input) {
	m.halt()
	m.clearDevice()
	m.enter(ctx, whatsappv1alpha1.SessionLoggedOut, "the device was logged out ("+in.ev.(LoggedOut).Reason+"); set the logout-requested-at annotation to pair again")
}

func (m *machine) outdated(ctx context.Context, _ input) {
	m.halt()
	m.enter(ctx, whatsappv1alpha1.SessionClientOutdated, "WhatsApp refuses this client version; update the operator")
}

func (m *machine) connectFailure(ctx context.Context, in input) {
	ev := in.ev.(ConnectFailure)
	m.halt()
	m.st.FailureCode = ev.Code
	m.enter(ctx, whatsappv1alpha1.SessionConnectFailure, fmt.Sprintf("WhatsApp refused the login (%s): %s", ev.Code, ev.Message))
}

// halt stops whatever the session was doing and closes the connection; only a request (or,
// for a ban, its expiry) starts it again.
func (m *machine) halt() {
	m.stopTimer()
	m.clearPairing()
	if m.cli != nil {
		m.cli.Disconnect()
	}
}

// banAndRetry waits the first ban in a row out and tries once more when it ends.
func (m *machine) banAndRetry(ctx context.Context, in input) {
	m.banned(ctx, in.ev.(TemporaryBan), true)
}

// ban reports another ban before a login succeeded: the session stays halted.
func (m *machine) ban(ctx context.Context, in input) { m.banned(ctx, in.ev.(TemporaryBan), false) }

func (m *machine) banned(ctx context.Context, ev TemporaryBan, retry bool) {
	m.halt()
	m.bans++
	m.st.FailureCode = ev.Code
	m.st.BanExpiresAt = m.time(ev.Expire)
	msg := fmt.Sprintf("temporarily banned (code %s) until %s", ev.Code, m.st.BanExpiresAt.UTC().Format(time.RFC3339))
	if retry {
		m.schedule(ev.Expire, after(sigBanOver))
		msg += "; the session tries once more then"
	}
	m.enter(ctx, whatsappv1alpha1.SessionTemporaryBan, msg)
}
