package session

import (
	"context"
	"fmt"
)

// phase is where the session is in its lifecycle: the one state the machine's decisions read.
// The published status.connection.state follows from it but says more (halted is LoggedOut,
// PairingTimeout, ConnectFailure, a second TemporaryBan or a given-up Disconnected). Counters
// (connect attempts, pairing windows, bans in a row, the store's failed opens) stay counters:
// they pick the signal (a connect that failed vs the one that gives up), not the phase.
type phase uint8

const (
	// phaseStarting: before the first version of the resource, and for the moment between a
	// (re)start and the connect it leads to (pairing when the store holds no device).
	phaseStarting phase = iota
	// phaseStoreError: the device store cannot be opened; it is retried with a backoff.
	phaseStoreError
	// phasePairing: a pairing window is open (or being opened): QR codes or a pairing code.
	phasePairing
	// phasePairingBackoff: between two pairing windows.
	phasePairingBackoff
	// phaseLoggingIn: logging in with the paired device.
	phaseLoggingIn
	phaseConnected
	// phaseReconnecting: the connection was lost or a login failed, under maxAttempts: whatsmeow
	// (or, for a login that could not start, the machine) tries again.
	phaseReconnecting
	// phaseBanned: a temporary ban; the session tries once more when it ends.
	phaseBanned
	// phaseHalted: a terminal state that a reconnect request resumes in place.
	phaseHalted
	// phaseOutdated: ClientOutdated; only another operator image helps.
	phaseOutdated
	// phaseReplaced: another client logged in with this device's keys; this process never
	// connects again (the controller answers a reconnect request with a new pod).
	phaseReplaced
	// phaseDeleted: logged out because the resource is being deleted; nothing more happens.
	phaseDeleted

	numPhases
	// stay, as a transition's target, keeps the phase.
	stay phase = 255
)

var phaseNames = [numPhases]string{"starting", "storeError", "pairing", "pairingBackoff", "loggingIn",
	"connected", "reconnecting", "banned", "halted", "outdated", "replaced", "deleted"}

func (p phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	if p == stay {
		return "stay"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// signal is what happened, classified by the counters and the event's content (the account
// that paired, whether the store holds a device) so that the table needs no conditions.
type signal uint8

const (
	// WhatsApp's events (the client's).
	sigQRCodes signal = iota
	sigPaired
	sigPairedByOtherAccount
	sigConnected
	sigConnectedByOtherAccount
	sigDisconnected         // with a device in the store
	sigDisconnectedUnpaired // without one
	sigStreamReplaced
	sigLoggedOut
	sigClientOutdated
	sigBan      // the first temporary ban in a row
	sigBanAgain // another one before a login succeeded
	sigConnectFailure

	// Failed connects: whatsmeow's reconnect hook or a login that dropped (sigReconnectFailed), a
	// login that could not start (sigLoginFailed, retried by the machine), and the failure that
	// reaches spec.reconnect.maxAttempts (sigGaveUp).
	sigReconnectFailed
	sigLoginFailed
	sigGaveUp

	// Pairing: a window ended (its codes expired, pairing failed, the registration dropped or
	// could not start), and none is left.
	sigWindowClosed
	sigNoWindowLeft

	// Timers.
	sigNextQR
	sigNextWindow
	sigBanOver
	sigRetryLogin
	sigRetryStore

	// The device store.
	sigStoreFailed
	sigStoreOpened

	// Connecting after a (re)start: pair when the store holds no device, else log in.
	sigPair
	sigLogin

	// The resource: deletion (with logoutOnDelete) and the two requests.
	sigDeleted
	sigLogoutRequested
	sigStaleLogoutRequested // a token older than the resource: echoed, never acted on
	sigReconnectRequested

	numSignals
)

var signalNames = [numSignals]string{"QRCodes", "Paired", "PairedByOtherAccount", "Connected",
	"ConnectedByOtherAccount", "Disconnected", "DisconnectedUnpaired", "StreamReplaced", "LoggedOut",
	"ClientOutdated", "Ban", "BanAgain", "ConnectFailure", "ReconnectFailed", "LoginFailed", "GaveUp",
	"WindowClosed", "NoWindowLeft", "NextQR", "NextWindow", "BanOver", "RetryLogin", "RetryStore",
	"StoreFailed", "StoreOpened", "Pair", "Login", "Deleted", "LogoutRequested", "StaleLogoutRequested",
	"ReconnectRequested"}

func (s signal) String() string {
	if s < numSignals {
		return signalNames[s]
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// input is a signal and what its action needs.
type input struct {
	sig signal
	ev  Event  // the client's event it came from
	n   int32  // failed connects in a row
	err error  // why a connect or the store failed
	why string // why a pairing window closed
	cli Client // the client over a store that opened
}

// transition: in any of from, on signal on, go to to (stay: keep the phase), then do.
type transition struct {
	from []phase
	on   signal
	to   phase
	do   func(*machine, context.Context, input)
}

// Phases in which a client is open and WhatsApp's events are taken. Not replaced or deleted:
// the client was closed for good there, and nothing may bring the session back.
var live = []phase{phasePairing, phasePairingBackoff, phaseLoggingIn, phaseConnected, phaseReconnecting,
	phaseBanned, phaseHalted, phaseOutdated}

func phases(ps ...[]phase) []phase {
	var out []phase
	for _, p := range ps {
		out = append(out, p...)
	}
	return out
}

func of(p ...phase) []phase { return p }

// transitions are all of the machine's decisions. A signal that no row takes in the current
// phase is ignored (logged at V(1)): a late QR code after the window closed, a failed reconnect
// reported after a halt, a request the phase cannot honour other than by its echo.
var transitions = []transition{
	// Pairing.
	{of(phaseStarting), sigPair, phasePairing, (*machine).openWindow},
	{of(phasePairing), sigQRCodes, stay, (*machine).showCodes},
	{of(phasePairing), sigNextQR, stay, (*machine).nextQR},
	{of(phasePairing), sigWindowClosed, phasePairingBackoff, (*machine).closeWindow},
	{of(phasePairing), sigDisconnected, phasePairingBackoff, (*machine).closeWindow},
	{of(phasePairing), sigDisconnectedUnpaired, phasePairingBackoff, (*machine).closeWindow},
	{of(phasePairingBackoff), sigNextWindow, phasePairing, (*machine).openWindow},
	{of(phasePairingBackoff), sigNoWindowLeft, phaseHalted, (*machine).pairingTimeout},
	// A pairing that completes late (after its window closed, or timed out) still counts: the
	// store holds the device now.
	{of(phasePairing, phasePairingBackoff, phaseHalted), sigPaired, phaseLoggingIn, (*machine).paired},
	{of(phasePairing, phasePairingBackoff, phaseHalted), sigPairedByOtherAccount, phaseLoggingIn, (*machine).pairedByOtherAccount},

	// Logging in and staying connected.
	{of(phaseStarting), sigLogin, phaseLoggingIn, (*machine).login},
	{of(phasePairing, phasePairingBackoff, phaseLoggingIn, phaseConnected, phaseReconnecting, phaseBanned, phaseHalted),
		sigConnected, phaseConnected, (*machine).loggedIn},
	{of(phasePairing, phasePairingBackoff, phaseLoggingIn, phaseConnected, phaseReconnecting, phaseBanned, phaseHalted),
		sigConnectedByOtherAccount, phaseStarting, (*machine).refuseAccount},
	{of(phaseConnected), sigDisconnected, phaseReconnecting, (*machine).connectionLost},
	// A reconnect reached WhatsApp but the login failed (a 5xx <failure>): whatsmeow retries
	// that without asking its AutoReconnectHook, so it is counted here.
	{of(phaseLoggingIn, phaseReconnecting), sigDisconnected, stay, (*machine).countDroppedLogin},
	{of(phaseLoggingIn, phaseReconnecting), sigReconnectFailed, phaseReconnecting, (*machine).reportAttempt},
	// The hook may report a failure while pairing: said, without ending the window.
	{of(phasePairing, phasePairingBackoff), sigReconnectFailed, stay, (*machine).reportAttempt},
	{of(phaseLoggingIn), sigLoginFailed, phaseReconnecting, (*machine).retryLogin},
	{of(phaseReconnecting), sigRetryLogin, phaseStarting, (*machine).connect},
	{of(phasePairing, phasePairingBackoff, phaseLoggingIn, phaseReconnecting), sigGaveUp, phaseHalted, (*machine).giveUp},

	// WhatsApp ends the session.
	{live, sigStreamReplaced, phaseReplaced, (*machine).replaced},
	{live, sigLoggedOut, phaseHalted, (*machine).loggedOut},
	{live, sigClientOutdated, phaseOutdated, (*machine).outdated},
	{live, sigConnectFailure, phaseHalted, (*machine).connectFailure},
	{live, sigBan, phaseBanned, (*machine).banAndRetry},
	{live, sigBanAgain, phaseHalted, (*machine).ban},
	{of(phaseBanned), sigBanOver, phaseStarting, (*machine).connect},

	// The device store.
	{of(phaseStarting, phaseStoreError), sigStoreFailed, phaseStoreError, (*machine).storeFailed},
	{of(phaseStoreError), sigRetryStore, stay, (*machine).openStore},
	{of(phaseStoreError), sigStoreOpened, phaseStarting, (*machine).storeOpened},

	// The resource.
	{phases(of(phaseStarting), live), sigDeleted, phaseDeleted, (*machine).logoutForDeletion},
	{phases(of(phaseStarting), live), sigLogoutRequested, phaseStarting, (*machine).logoutAndPair},
	{of(phaseStoreError, phaseReplaced), sigLogoutRequested, stay, (*machine).echo},
	{phases(of(phaseStarting, phaseStoreError, phaseReplaced), live), sigStaleLogoutRequested, stay, (*machine).echo},
	{of(phaseReconnecting, phaseBanned, phaseHalted), sigReconnectRequested, phaseStarting, (*machine).resume},
	{of(phaseStoreError), sigReconnectRequested, stay, (*machine).echoAndOpenStore},
	{of(phaseStarting, phasePairing, phasePairingBackoff, phaseLoggingIn, phaseConnected, phaseOutdated, phaseReplaced),
		sigReconnectRequested, stay, (*machine).echo},
}

// decisions indexes transitions by phase and signal; a pair in two rows is a bug: init panics
// naming it, so every test of the package fails.
var decisions [numPhases][numSignals]*transition

func init() {
	for i := range transitions {
		t := &transitions[i]
		for _, p := range t.from {
			if decisions[p][t.on] != nil {
				panic(fmt.Sprintf("session machine: two transitions from %s on %s", p, t.on))
			}
			decisions[p][t.on] = t
		}
	}
}

// step takes in: the table says where the machine goes and what it does on the way. The phase
// changes first, so that an action's own signal (a pairing window that cannot open, a login
// that fails at once) is decided from the phase it led to.
func (m *machine) step(ctx context.Context, in input) {
	from := m.phase
	t := decisions[from][in.sig]
	if t == nil {
		m.log.V(1).Info("ignored", "phase", from, "signal", in.sig)
		return
	}
	if t.to != stay {
		m.phase = t.to
	}
	if m.observe != nil {
		m.observe(from, in.sig, m.phase)
	}
	t.do(m, ctx, in)
}

// connect (re)starts the session: pairing when the store holds no device, else a login. The
// transitions that lead to it go to phaseStarting first.
func (m *machine) connect(ctx context.Context, _ input) {
	if m.cli == nil {
		return
	}
	m.stopTimer()
	if m.cli.PairedJID() == "" {
		m.step(ctx, input{sig: sigPair})
		return
	}
	m.step(ctx, input{sig: sigLogin})
}

// failedConnect is the signal of the n-th failed connect in a row; login: one the machine
// itself retries.
func (m *machine) failedConnect(n int32, err error, login bool) input {
	switch {
	case n >= m.maxAttempts.Load():
		return input{sig: sigGaveUp, n: n, err: err}
	case login:
		return input{sig: sigLoginFailed, n: n, err: err}
	default:
		return input{sig: sigReconnectFailed, n: n, err: err}
	}
}

// echo publishes the status, with the request token just handled.
func (m *machine) echo(ctx context.Context, _ input) { m.publish(ctx) }
