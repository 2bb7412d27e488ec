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

// storeFailed reports err and schedules the next attempt.
func (m *machine) storeFailed(ctx context.Context, err error) {
	m.storeErr = err
	m.storeAttempts++
	m.halted = true
	m.metrics.storeFailures.Inc()
	wait := m.storeBackoff()
	m.log.Info("cannot open the device store; retrying", "error", Describe(err), "attempt", m.storeAttempts, "retryIn", wait)
	m.schedule(wait, m.retryStore)
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

// retryStore opens the store again; once it opens, the session starts as it would have.
func (m *machine) retryStore(ctx context.Context) {
	if m.cli != nil || m.open == nil {
		return
	}
	m.stopTimer()
	cli, err := m.open(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.storeFailed(ctx, err)
		}
		return
	}
	m.log.Info("device store opened", "attempts", m.storeAttempts)
	m.cli, m.storeErr, m.storeAttempts, m.halted = cli, nil, 0, false
	m.clearFailure()
	m.enter(ctx, whatsappv1alpha1.SessionStarting, "device store opened")
	if m.wac != nil && m.onResource(ctx, m.wac) {
		return
	}
	m.connect(ctx)
}
