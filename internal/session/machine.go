package session

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// machine is the session's state machine. One goroutine (run) owns all of its state; whatsmeow's
// goroutines reach it only through the Client's event channel and post().
type machine struct {
	cfg      Config
	cli      Client // nil while the store cannot be opened
	storeErr error
	// open opens the store and a client over it, fenced like the first one; storeAttempts
	// counts the failed opens in a row.
	open          func(context.Context) (Client, error)
	storeAttempts int
	pub           publisher
	log           logr.Logger
	metrics       *metrics
	now           func() time.Time

	st  whatsappv1alpha1.ConnectionStatus // what the session reports, published on each transition
	wac *whatsappv1alpha1.WhatsAppConnection

	// attempts and maxAttempts are read by whatsmeow's reconnect goroutine through shouldReconnect.
	attempts, maxAttempts atomic.Int32
	connected             atomic.Bool
	// state is st.State as last published, for readers off the machine's goroutine (send API).
	state atomic.Value

	// phase is the lifecycle; transitions (machine_phase.go) decide every move between phases.
	phase phase
	// observe, when set (tests), sees each transition taken.
	observe func(from phase, on signal, to phase)

	windows int // pairing windows opened since pairing (re)started
	codes   []string
	code    int
	bans    int // temporary bans since the last login or reconnect request
	// publishPending: the last status write failed or was deferred (note); run's ticker
	// writes it. Not a phase: any phase may have a write outstanding.
	publishPending bool

	timer    *time.Timer
	timerGen int
	wake     chan func(context.Context)
	done     chan struct{}
}

func newMachine(cfg Config, pub publisher, met *metrics, log logr.Logger) *machine {
	m := &machine{cfg: cfg, pub: pub, metrics: met, log: log, now: time.Now,
		wake: make(chan func(context.Context), 16), done: make(chan struct{})}
	m.maxAttempts.Store(whatsappv1alpha1.DefaultReconnectMaxAttempts)
	return m
}

// run drives the machine until ctx ends. The first version of the resource comes before
// anything else: it carries the pairing method, the reconnect limit and pending requests.
func (m *machine) run(ctx context.Context, resources <-chan *whatsappv1alpha1.WhatsAppConnection) {
	defer close(m.done)
	defer m.stopTimer()
	select {
	case <-ctx.Done():
		return
	case wac := <-resources:
		m.start(ctx, wac)
	}
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		var events <-chan Event // none until the store opens
		if m.cli != nil {
			events = m.cli.Events()
		}
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			m.onEvent(ctx, ev)
		case wac := <-resources:
			m.onResource(ctx, wac)
		case fn := <-m.wake:
			fn(ctx)
		case <-retry.C:
			if m.publishPending {
				m.publish(ctx)
			}
		}
	}
}

// post runs fn on the machine's goroutine; a no-op once the machine has stopped.
func (m *machine) post(fn func(context.Context)) {
	select {
	case m.wake <- fn:
	case <-m.done:
	}
}

// schedule replaces the pending timer (QR rotation, next pairing window, ban retry, login or
// store retry): the session is only ever waiting for one of them. When it fires, next says
// what happened (on the machine's goroutine) and the table decides.
func (m *machine) schedule(d time.Duration, next func() input) {
	m.stopTimer()
	gen := m.timerGen
	m.timer = time.AfterFunc(d, func() {
		m.post(func(ctx context.Context) {
			if gen == m.timerGen {
				m.step(ctx, next())
			}
		})
	})
}

// after is a timer's signal that needs nothing but itself.
func after(s signal) func() input { return func() input { return input{sig: s} } }

func (m *machine) stopTimer() {
	m.timerGen++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// shouldReconnect is whatsmeow's AutoReconnectHook: it counts consecutive failures and stops
// at spec.reconnect.maxAttempts. It runs on whatsmeow's goroutine.
func (m *machine) shouldReconnect(err error) bool {
	n := m.attempts.Add(1)
	m.metrics.reconnects.Inc()
	m.post(func(ctx context.Context) { m.step(ctx, m.failedConnect(n, err, false)) })
	return n < m.maxAttempts.Load()
}

// publish writes the current status. A failed write is retried by run's ticker, since the
// next transition may be a long way off.
func (m *machine) publish(ctx context.Context) {
	m.metrics.setState(m.st.State)
	m.connected.Store(m.st.State == whatsappv1alpha1.SessionConnected)
	m.state.Store(m.st.State)
	wctx, cancel := context.WithTimeout(ctx, m.cfg.RenewDeadline)
	defer cancel()
	if err := m.pub.publish(wctx, m.st); err != nil {
		m.publishPending = true
		m.log.Info("cannot write status.connection; will try again", "state", m.st.State, "error", err.Error())
		return
	}
	m.publishPending = false
}

// note moves to state with message without writing it now: the next transition carries it, or
// run's ticker writes it within a second. It is for the short states on the way to one a
// person waits for: "Connecting" before the first QR code costs an API round trip before the
// code (start → QR in status), and "paired; logging in" one while the client logs in.
func (m *machine) note(state whatsappv1alpha1.SessionState, message string) {
	if m.st.State != state {
		m.log.Info("session state", "state", state, "message", message)
	}
	m.st.State, m.st.Message = state, message
	m.publishPending = true
}

// enter moves to state with message and publishes it.
func (m *machine) enter(ctx context.Context, state whatsappv1alpha1.SessionState, message string) {
	if m.st.State != state {
		m.log.Info("session state", "state", state, "message", message)
	}
	m.st.State, m.st.Message = state, message
	m.publish(ctx)
}

func (m *machine) time(d time.Duration) *metav1.Time {
	t := metav1.NewTime(m.now().Add(d).Truncate(time.Second))
	return &t
}

func (m *machine) clearPairing() {
	m.st.QRCode, m.st.QRCodeTerminal, m.st.QRExpiresAt = "", "", nil
	m.st.PairingCode, m.st.PairingCodeExpiresAt = "", nil
}

func (m *machine) clearDevice() {
	m.st.JID, m.st.PushName, m.st.Platform = "", "", ""
}

func (m *machine) clearFailure() {
	m.st.FailureCode, m.st.BanExpiresAt = "", nil
}
