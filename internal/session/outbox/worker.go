package outbox

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
)

// Sender hands one message to WhatsApp and waits for the server's acknowledgement. waID is the
// message's fixed WhatsApp id: sending it again is the same message, never a second one.
type Sender interface {
	Send(ctx context.Context, to, text, waID string) (sentAt time.Time, err error)
}

// ErrUnavailable wraps a Sender error that means WhatsApp never saw the message (not
// connected): the attempt does not count, and the message waits.
var ErrUnavailable = errors.New("not connected to WhatsApp")

// PermanentError is a Sender error that retrying cannot fix (WhatsApp refused the message, the
// number is not on WhatsApp): the message fails with Reason.
type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return e.Reason }

// Defaults of a Worker.
const (
	// DefaultRate and DefaultBurst: one message every 2 s on average, 10 at once. WhatsApp bans
	// accounts that send like a bulk sender (its own Business API is the channel for that); a
	// person types a few messages a minute. 30 a minute (1,800 an hour) is far more than a
	// person, enough for the notifications and replies a linked device is for, and slow enough
	// that a runaway caller does not get the number banned within minutes.
	DefaultRate  = rate.Limit(0.5)
	DefaultBurst = 10
	// DefaultChats is how many chats are sent to at once. whatsmeow sends one message at a time
	// per client anyway (its send lock); more chats in flight keep one slow chat's retries from
	// holding the others back, not throughput.
	DefaultChats = 4
	// DefaultMaxAttempts bounds the attempts of a message whose sends time out.
	DefaultMaxAttempts = 5
	// DefaultBackoff is the wait before the second attempt, doubled up to DefaultMaxBackoff.
	DefaultBackoff    = 2 * time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultUnavailableWait is how long a message waits when the connection is down.
	DefaultUnavailableWait = time.Second
	// poll bounds the wait for work when nothing notified the worker (a retry that came due).
	poll = 5 * time.Second
)

// Worker sends the outbox: in order within a chat (a message waits until the one before it is
// sent or failed), several chats at once, at most Rate messages a second.
type Worker struct {
	Store  *Store
	Sender Sender
	Log    logr.Logger

	Rate                rate.Limit
	Burst               int
	Chats               int
	MaxAttempts         int
	Backoff, MaxBackoff time.Duration
	// UnavailableWait is how long a message waits when the connection is down.
	UnavailableWait time.Duration
	// Changed is called after every state change of a message, with its caller id.
	Changed func(id string)
	// Counters, when set, count the attempts (the session's metrics).
	Counters *Counters

	wakeOnce sync.Once
	wakeCh   chan struct{}
	limiter  *rate.Limiter
}

func (w *Worker) wake() chan struct{} {
	w.wakeOnce.Do(func() { w.wakeCh = make(chan struct{}, 1) })
	return w.wakeCh
}

// defaults fills the unset fields; Run calls it.
func (w *Worker) defaults() {
	if w.Rate == 0 {
		w.Rate = DefaultRate
	}
	if w.Burst <= 0 {
		w.Burst = DefaultBurst
	}
	if w.Chats <= 0 {
		w.Chats = DefaultChats
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = DefaultMaxAttempts
	}
	if w.Backoff <= 0 {
		w.Backoff = DefaultBackoff
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = DefaultMaxBackoff
	}
	if w.UnavailableWait <= 0 {
		w.UnavailableWait = DefaultUnavailableWait
	}
	w.limiter = rate.NewLimiter(w.Rate, w.Burst)
}

// Notify wakes the worker: a message was queued.
func (w *Worker) Notify() {
	select {
	case w.wake() <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends. A message being sent when ctx ends stays "sending" and is sent
// again, with the same WhatsApp id, by the next Run (the next Lease holder).
func (w *Worker) Run(ctx context.Context) {
	w.defaults()
	wake := w.wake()
	defer w.Store.closeStatements()
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := map[string]bool{}
	done := make(chan string, w.Chats)
	for {
		heads, err := w.Store.Heads(ctx, time.Now(), w.Chats*4)
		if err != nil && ctx.Err() == nil {
			w.Log.Error(err, "reading the outbox failed")
		}
		for _, m := range heads {
			if inflight[m.To] || len(inflight) >= w.Chats {
				continue
			}
			inflight[m.To] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.send(ctx, m)
				done <- m.To
			}()
		}
		wait := poll
		if next, err := w.Store.NextDue(ctx); err == nil && !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			// Let the in-flight sends see ctx end and return.
			for len(inflight) > 0 {
				delete(inflight, <-done)
			}
			return
		case chat := <-done:
			delete(inflight, chat)
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// send makes one attempt at m.
func (w *Worker) send(ctx context.Context, m Message) {
	if err := w.limiter.Wait(ctx); err != nil {
		return
	}
	if err := w.Store.markSending(ctx, m.ID); err != nil {
		w.logStoreError(ctx, err, m)
		return
	}
	w.changed(m.ID)
	attempt := m.Attempts + 1
	at, err := w.Sender.Send(ctx, m.To, m.Text, m.WAID)
	if c := w.Counters; c != nil && ctx.Err() == nil {
		c.Sends.Add(1)
		if err != nil {
			c.Failures.Add(1)
		}
	}
	// The outcome is written even when ctx just ended: it is what happened.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var perm *PermanentError
	switch {
	case err == nil:
		err = w.Store.markSent(wctx, m.ID, at)
	case ctx.Err() != nil:
		return // stays sending; the next Run sends it again
	case errors.Is(err, ErrUnavailable):
		err = w.Store.retryLater(wctx, m.ID, time.Now().Add(w.UnavailableWait), ErrUnavailable.Error(), true)
	case errors.As(err, &perm):
		err = w.Store.fail(wctx, m.ID, perm.Reason, time.Now())
	case attempt >= w.MaxAttempts:
		err = w.Store.fail(wctx, m.ID, "gave up after "+strconv.Itoa(attempt)+" attempts: "+err.Error(), time.Now())
	default:
		err = w.Store.retryLater(wctx, m.ID, time.Now().Add(w.backoff(attempt)), err.Error(), false)
	}
	if err != nil {
		w.logStoreError(ctx, err, m)
		return
	}
	w.changed(m.ID)
}

func (w *Worker) backoff(attempt int) time.Duration {
	d := w.Backoff
	for i := 1; i < attempt && d < w.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.MaxBackoff)
}

func (w *Worker) changed(id string) {
	if w.Changed != nil {
		w.Changed(id)
	}
}

func (w *Worker) logStoreError(ctx context.Context, err error, m Message) {
	if ctx.Err() == nil {
		// The caller id only: the row holds personal data.
		w.Log.Error(err, "writing the outbox failed", "id", m.ID)
	}
}
