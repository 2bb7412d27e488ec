package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	ownJID   = "15550001111:1@s.whatsapp.net"
	otherJID = "15559990000:1@s.whatsapp.net"
)

// machineIn is a machine put in phase p as the session would be there: the store holds a device
// once paired, a pairing window has run, the published state is the phase's. Timers are an
// hour away, so that only the step under test acts.
func machineIn(t *testing.T, p phase) (*machine, *fakeClient, *recordingPublisher) {
	t.Helper()
	cfg := Config{RenewDeadline: time.Second, QRFirstTTL: time.Hour, QRNextTTL: time.Hour, PairingWindows: 2,
		PairingBackoff: time.Hour, StoreRetryBase: time.Hour, StoreRetryMax: time.Hour}
	pub := &recordingPublisher{}
	m := newMachine(cfg, pub, newMetrics(), logr.Discard())
	t.Cleanup(m.stopTimer)
	m.wac = testConnection()
	m.wac.Spec.Pairing.PhoneNumber = "+1 555 000 1111"
	jid := ownJID
	switch p {
	case phaseStarting, phaseStoreError, phasePairing, phasePairingBackoff:
		jid = ""
	}
	cli := newFakeClient(jid)
	m.cli = cli
	m.phase = p
	m.st.State = map[phase]whatsappv1alpha1.SessionState{
		phaseStarting: whatsappv1alpha1.SessionStarting, phaseStoreError: whatsappv1alpha1.SessionStoreError,
		phasePairing: whatsappv1alpha1.SessionPairing, phasePairingBackoff: whatsappv1alpha1.SessionPairing,
		phaseLoggingIn: whatsappv1alpha1.SessionConnecting, phaseConnected: whatsappv1alpha1.SessionConnected,
		phaseReconnecting: whatsappv1alpha1.SessionDisconnected, phaseBanned: whatsappv1alpha1.SessionTemporaryBan,
		phaseHalted: whatsappv1alpha1.SessionLoggedOut, phaseOutdated: whatsappv1alpha1.SessionClientOutdated,
		phaseReplaced: whatsappv1alpha1.SessionReplaced, phaseDeleted: whatsappv1alpha1.SessionLoggedOut,
	}[p]
	switch p {
	case phaseStoreError:
		m.cli = nil
		m.storeErr = NewStoreError(StoreUnreachable, "unreachable", nil)
		m.open = func(context.Context) (Client, error) { return cli, nil }
	case phasePairing:
		m.windows, m.codes = 1, []string{"c1", "c2", "c3"}
	case phasePairingBackoff:
		m.windows = 1
	}
	return m, cli, pub
}

// sample is an input of signal s as classify, a timer or the resource would make it.
func sample(s signal) input {
	in := input{sig: s}
	switch s {
	case sigQRCodes:
		in.ev = QRCodes{Codes: []string{"q1", "q2"}}
	case sigPaired:
		in.ev = PairSuccess{JID: ownJID, Platform: "android"}
	case sigPairedByOtherAccount:
		in.ev = PairSuccess{JID: otherJID}
	case sigConnected:
		in.ev = Connected{JID: ownJID, PushName: "Ann"}
	case sigConnectedByOtherAccount:
		in.ev = Connected{JID: otherJID}
	case sigDisconnected, sigDisconnectedUnpaired:
		in.ev, in.why = Disconnected{}, "the pairing window closed"
	case sigStreamReplaced:
		in.ev = StreamReplaced{}
	case sigLoggedOut:
		in.ev = LoggedOut{Reason: "logged out from another device"}
	case sigClientOutdated:
		in.ev = ClientOutdated{}
	case sigBan, sigBanAgain:
		in.ev = TemporaryBan{Code: "101", Expire: time.Hour}
	case sigConnectFailure:
		in.ev = ConnectFailure{Code: "403", Message: "nope"}
	case sigReconnectFailed, sigLoginFailed, sigGaveUp:
		in.n, in.err = 1, errors.New("dial refused")
	case sigWindowClosed, sigNoWindowLeft:
		in.why = "the QR codes expired"
	case sigStoreFailed:
		in.err = NewStoreError(StoreUnreachable, "unreachable", nil)
	case sigStoreOpened:
		in.cli = newFakeClient("")
	}
	return in
}

// stateAfter is the state a row leaves the session in (its follow-ups included), from
// machineIn's fixtures; ok false: the row echoes a request, the state stays.
func stateAfter(from phase, s signal) (whatsappv1alpha1.SessionState, bool) {
	switch s {
	case sigQRCodes, sigNextQR, sigWindowClosed, sigDisconnectedUnpaired, sigNextWindow:
		return whatsappv1alpha1.SessionPairing, true // a code, or the next window's backoff (1 of 2 ran)
	case sigDisconnected:
		if from == phasePairing {
			return whatsappv1alpha1.SessionPairing, true
		}
		return whatsappv1alpha1.SessionDisconnected, true
	case sigNoWindowLeft:
		return whatsappv1alpha1.SessionPairingTimeout, true
	case sigPaired, sigPairedByOtherAccount, sigPair, sigLogin, sigBanOver, sigRetryLogin, sigRetryStore, sigStoreOpened:
		return whatsappv1alpha1.SessionConnecting, true // logging in, or "opening a pairing window" noted
	case sigConnectedByOtherAccount:
		return whatsappv1alpha1.SessionConnecting, true // logged out, pairing again
	case sigConnected:
		return whatsappv1alpha1.SessionConnected, true
	case sigReconnectFailed, sigLoginFailed, sigGaveUp:
		return whatsappv1alpha1.SessionDisconnected, true
	case sigStreamReplaced:
		return whatsappv1alpha1.SessionReplaced, true
	case sigLoggedOut, sigDeleted:
		return whatsappv1alpha1.SessionLoggedOut, true
	case sigClientOutdated:
		return whatsappv1alpha1.SessionClientOutdated, true
	case sigBan, sigBanAgain:
		return whatsappv1alpha1.SessionTemporaryBan, true
	case sigConnectFailure:
		return whatsappv1alpha1.SessionConnectFailure, true
	case sigStoreFailed:
		return whatsappv1alpha1.SessionStoreError, true
	case sigLogoutRequested:
		if from == phaseStoreError || from == phaseReplaced {
			return "", false
		}
		return whatsappv1alpha1.SessionConnecting, true // logged out, pairing again
	case sigReconnectRequested:
		switch from {
		case phaseReconnecting, phaseBanned, phaseHalted, phaseStoreError:
			return whatsappv1alpha1.SessionConnecting, true // resumed
		}
	}
	return "", false
}

// statesOf are the states the session may report in each phase: the rules that read the phase
// (a reconnect request resumes halted, banned and reconnecting sessions in place) hold for
// the states a person sees.
var statesOf = map[phase][]whatsappv1alpha1.SessionState{
	phaseStarting:   {whatsappv1alpha1.SessionStarting},
	phaseStoreError: {whatsappv1alpha1.SessionStoreError},
	// Connecting is noted when the first window opens; a failed reconnect reported by the hook
	// while pairing says Disconnected without ending the window.
	phasePairing:        {whatsappv1alpha1.SessionPairing, whatsappv1alpha1.SessionConnecting, whatsappv1alpha1.SessionDisconnected},
	phasePairingBackoff: {whatsappv1alpha1.SessionPairing, whatsappv1alpha1.SessionDisconnected},
	phaseLoggingIn:      {whatsappv1alpha1.SessionConnecting},
	phaseConnected:      {whatsappv1alpha1.SessionConnected},
	phaseReconnecting:   {whatsappv1alpha1.SessionDisconnected},
	phaseBanned:         {whatsappv1alpha1.SessionTemporaryBan},
	phaseHalted: {whatsappv1alpha1.SessionLoggedOut, whatsappv1alpha1.SessionPairingTimeout, whatsappv1alpha1.SessionConnectFailure,
		whatsappv1alpha1.SessionTemporaryBan, whatsappv1alpha1.SessionDisconnected},
	phaseOutdated: {whatsappv1alpha1.SessionClientOutdated},
	phaseReplaced: {whatsappv1alpha1.SessionReplaced},
	phaseDeleted:  {whatsappv1alpha1.SessionLoggedOut},
}

// The halted phase is exactly the halts a reconnect request lifts in place (the API's rule,
// api/v1alpha1/halt.go); outdated and replaced are not.
func TestHaltedPhasesAgreeWithTheAPIsResumeRule(t *testing.T) {
	g := NewWithT(t)
	for _, s := range statesOf[phaseHalted] {
		g.Expect(s.ResumesOnRequest()).To(BeTrue(), "%s", s)
	}
	g.Expect(whatsappv1alpha1.SessionClientOutdated.ResumesOnRequest()).To(BeFalse())
	g.Expect(whatsappv1alpha1.SessionReplaced.ResumesOnRequest()).To(BeFalse())
}

type taken struct {
	from phase
	on   signal
	to   phase
}

// Every row of the table, from each of its phases: the machine takes that row, then only rows
// that start where the one before ended (an action's own signal), ends in the phase they say,
// and leaves the session in the state the row stands for.
func TestTheMachineTakesEveryRowOfItsTransitionTable(t *testing.T) {
	for _, row := range transitions {
		for _, from := range row.from {
			t.Run(from.String()+"/"+row.on.String(), func(t *testing.T) {
				g := NewWithT(t)
				m, _, pub := machineIn(t, from)
				before := len(pub.all)
				var steps []taken
				m.observe = func(f phase, s signal, to phase) { steps = append(steps, taken{f, s, to}) }

				m.step(context.Background(), sample(row.on))

				want := row.to
				if want == stay {
					want = from
				}
				g.Expect(steps).NotTo(BeEmpty())
				g.Expect(steps[0]).To(Equal(taken{from, row.on, want}))
				for i := 1; i < len(steps); i++ {
					g.Expect(steps[i].from).To(Equal(steps[i-1].to), "follow-up %d starts where the step before ended", i)
				}
				g.Expect(m.phase).To(Equal(steps[len(steps)-1].to))
				g.Expect(statesOf[m.phase]).To(ContainElement(m.st.State), "the phase %s and the state agree", m.phase)
				if st, ok := stateAfter(from, row.on); ok {
					g.Expect(m.st.State).To(Equal(st))
				} else {
					g.Expect(pub.all).To(HaveLen(before+1), "a request the phase does not act on is echoed")
					g.Expect(pub.Last().State).To(Equal(machineStateOf(t, from)))
				}
			})
		}
	}
}

func machineStateOf(t *testing.T, p phase) whatsappv1alpha1.SessionState {
	m, _, _ := machineIn(t, p)
	return m.st.State
}

// Every phase × signal pair not in the table is ignored: the phase, the status, the client and
// the pending timer stay as they were, and nothing is written.
func TestSignalsOutsideTheTableAreIgnored(t *testing.T) {
	ignored := 0
	for p := range numPhases {
		for s := range numSignals {
			if decisions[p][s] != nil {
				continue
			}
			ignored++
			t.Run(p.String()+"/"+s.String(), func(t *testing.T) {
				g := NewWithT(t)
				m, cli, pub := machineIn(t, p)
				st, gen := *m.st.DeepCopy(), m.timerGen
				m.observe = func(phase, signal, phase) { t.Error("a transition was taken") }

				m.step(context.Background(), sample(s))

				g.Expect(m.phase).To(Equal(p))
				g.Expect(m.st).To(Equal(st))
				g.Expect(cli.Calls()).To(BeEmpty())
				g.Expect(pub.all).To(BeEmpty())
				g.Expect(m.timerGen).To(Equal(gen), "no timer set or stopped")
			})
		}
	}
	if ignored == 0 {
		t.Fatal("no pair is ignored: the table lost its ignore rule")
	}
}

// What the table guarantees by its shape, whatever its rows say.
func TestTheTransitionTableKeepsTheSessionsPromises(t *testing.T) {
	g := NewWithT(t)
	reached := map[phase]bool{phaseStarting: true}
	for _, row := range transitions {
		g.Expect(row.from).NotTo(BeEmpty(), "row %s", row.on)
		g.Expect(row.do).NotTo(BeNil(), "row %s", row.on)
		reached[row.to] = true
		for _, from := range row.from {
			switch from {
			case phaseDeleted:
				t.Errorf("a deleted session acts on %s; it must do nothing more", row.on)
			case phaseReplaced:
				// A replaced session never connects again in this process: it only echoes.
				g.Expect(row.to).To(Equal(stay), "replaced on %s", row.on)
			}
		}
	}
	for p := range numPhases {
		g.Expect(reached).To(HaveKey(p), "no transition leads to %s", p)
	}
}
