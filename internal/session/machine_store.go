package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// A store that cannot be opened is not terminal: a Postgres server comes back, a volume gets
// its permissions, a Secret is fixed (see the README: a fixed Secret reaches the session through
// a new pod). The session retries with an exponential backoff, capped, and a reconnect request
// retries at once. Each failure is reported as a class and a fixed text (StoreError).

// storeFailed reports the store's error and schedules the next attempt.
func (m *machine) storeFailed(ctx context.Context, in input) {
	err := in.err
	m.storeErr = err
	m.storeAttempts++
	m.metrics.storeFailures.Inc()
	wait := m.storeBackoff()
	m.log.Info("cannot open the device store; retrying", "error", Describe(err), "attempt", m.storeAttempts, "retryIn", wait)
	m.schedule(wait, after(sigRetryStore))
	var se *StoreError
	if errors.As(err, &se) {
		m.st.FailureCode = se.Class
	}
	m.enter(ctx, whatsappv1alpha1.SessionStoreError, fmt.Sprintf(
		"cannot open the device store: %s; retrying with backoff (attempt %d, next in %s)", Describe(err), m.storeAttempts, wait.Round(time.Second)))
}

// storeBackoff doubles from StoreRetryBase per failed attempt, up to StoreRetryMax.
func (m *machine) storeBackoff() time.Duration {
	wait := max(m.cfg.StoreRetryBase, 10*time.Millisecond) // never a hot loop, whatever the config
	for i := 1; i < m.storeAttempts && wait < m.cfg.StoreRetryMax; i++ {
		wait *= 2
	}
	return min(wait, m.cfg.StoreRetryMax)
}

// openStore opens the store again: the table goes on from whether it opened.
func (m *machine) openStore(ctx context.Context, _ input) {
	if m.cli != nil || m.open == nil {
		return
	}
	m.stopTimer()
	cli, err := m.open(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.step(ctx, input{sig: sigStoreFailed, err: err})
		}
		return
	}
	m.step(ctx, input{sig: sigStoreOpened, cli: cli})
}

// echoAndOpenStore answers a reconnect request while the store cannot be opened: at once.
func (m *machine) echoAndOpenStore(ctx context.Context, in input) {
	m.publish(ctx)
	m.openStore(ctx, in)
}

// storeOpened starts the session as it would have started with the store open: a pending
// request first, else a connect.
func (m *machine) storeOpened(ctx context.Context, in input) {
	m.log.Info("device store opened", "attempts", m.storeAttempts)
	m.cli, m.storeErr, m.storeAttempts = in.cli, nil, 0
	m.clearFailure()
	m.enter(ctx, whatsappv1alpha1.SessionStarting, "device store opened")
	if m.wac != nil {
		m.onResource(ctx, m.wac)
	}
	if m.phase == phaseStarting {
		m.connect(ctx, input{})
	}
}
