// Package events delivers the session's inbox to sinks: CloudEvents 1.0 over HTTP in binary
// mode, signed with the Standard Webhooks scheme, FIFO per chat and parallel across chats, with
// retries (exponential backoff with full jitter, Retry-After honoured) and one durable cursor per
// sink. Event bodies are personal data: nothing here logs them.
package events

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// CloudEventTypePrefix prefixes an inbox event type to make the CloudEvents type.
const CloudEventTypePrefix = "io.waoperator.whatsapp."

// Sink is one destination and how to deliver to it.
type Sink struct {
	// Name identifies the sink (its cursor, logs, metrics).
	Name string
	// URL receives the events (http or https).
	URL string
	// Keys sign each request (Standard Webhooks); none means unsigned. During a rotation both
	// keys sign.
	Keys [][]byte
	// Types and Chats filter events (inbox types, chat JIDs); empty means all.
	Types, Chats []string
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between tries (default 1 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge is how long an event is retried after it reached the inbox (default 24 h); then it
	// is given up on (it stays in the inbox) and the sink moves on.
	MaxAge time.Duration
	// Client sends the requests; default one that follows no redirects.
	Client *http.Client
	// Invalid, when set, is a fixed-text reason the sink cannot be delivered to (its
	// destination or key could not be used): nothing is sent, and the sink reports failing.
	Invalid string
	// DeadLetter receives, once, each event the sink refused for good or that outlived MaxAge.
	DeadLetter *Endpoint
}

// Endpoint is a dead-letter destination.
type Endpoint struct {
	URL string
	// Client sends the requests; default as for the sink.
	Client *http.Client
	// Invalid: as Sink.Invalid; the events then stay in the inbox.
	Invalid string
}

func (s Sink) withDefaults() Sink {
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.MinBackoff <= 0 {
		s.MinBackoff = time.Second
	}
	if s.MaxBackoff < s.MinBackoff {
		s.MaxBackoff = max(5*time.Minute, s.MinBackoff)
	}
	if s.MaxAge <= 0 {
		s.MaxAge = 24 * time.Hour
	}
	if s.Client == nil {
		s.Client = NewHTTPClient(nil)
	}
	if s.DeadLetter != nil && s.DeadLetter.Client == nil {
		dl := *s.DeadLetter
		dl.Client = s.Client
		s.DeadLetter = &dl
	}
	return s
}

func (s Sink) wants(ev inbox.Event) bool {
	return (len(s.Types) == 0 || slices.Contains(s.Types, ev.Type)) &&
		(len(s.Chats) == 0 || slices.Contains(s.Chats, ev.Chat))
}

// Source is where events come from: the inbox.
type Source interface {
	After(ctx context.Context, seq int64, limit int) ([]inbox.Event, error)
}

// Stats counts one sink's deliveries.
type Stats struct {
	Delivered, Retries, GaveUp, Filtered, DeadLettered int64
	// Cursor is the sequence up to which everything is done.
	Cursor int64
	// Failing: see Deliverer.Health.
	Failing bool
}

// Deliverer delivers one sink's events. Run it only while holding the connection's Lease.
type Deliverer struct {
	Sink    Sink
	Source  Source
	Cursors *Cursors
	// CESource is the CloudEvents source, naming the WhatsAppConnection.
	CESource string
	Log      logr.Logger
	// MaxInFlight bounds the events read ahead of the cursor (default 1024).
	MaxInFlight int

	// OnHealth, when set, is called (on a delivery goroutine) when the sink starts or stops
	// failing; Health says how it is now.
	OnHealth func()

	wake                                               chan struct{}
	delivered, retries, gaveUp, filtered, deadLettered atomic.Int64
	cursor                                             atomic.Int64
	health                                             healthState
}

// Notify tells the deliverer the inbox has new events (it also polls every second).
func (d *Deliverer) Notify() {
	select {
	case d.wakeChan() <- struct{}{}:
	default:
	}
}

func (d *Deliverer) wakeChan() chan struct{} {
	if d.wake == nil {
		d.wake = make(chan struct{}, 1)
	}
	return d.wake
}

// Stats returns the deliverer's counters.
func (d *Deliverer) Stats() Stats {
	return Stats{Delivered: d.delivered.Load(), Retries: d.retries.Load(), GaveUp: d.gaveUp.Load(),
		Filtered: d.filtered.Load(), DeadLettered: d.deadLettered.Load(), Cursor: d.cursor.Load(), Failing: d.health.failing.Load()}
}

// Run delivers until ctx ends. Events of one chat go out one at a time in inbox order; chats
// proceed in parallel, so a failing chat delays only itself (up to MaxInFlight events behind
// it). The cursor moves over the longest prefix of events that are done, so after a restart
// an event is delivered again only if it was in flight (at least once, same id).
func (d *Deliverer) Run(ctx context.Context) error {
	d.Sink = d.Sink.withDefaults()
	if d.Sink.Invalid != "" {
		// Nothing can be sent: report it and keep the events (the cursor stays) until the
		// resource is fixed, which replaces this process.
		d.setHealth(d.Sink.Invalid, true)
		<-ctx.Done()
		return nil
	}
	if d.MaxInFlight <= 0 {
		d.MaxInFlight = 1024
	}
	wake := d.wakeChan()
	cursor, err := d.Cursors.Get(ctx, d.Sink.Name)
	if err != nil {
		return fmt.Errorf("sink %s: read cursor: %w", d.Sink.Name, err)
	}
	d.cursor.Store(cursor)
	read := cursor
	var inflight []int64 // sequences read and not yet passed by the cursor, ascending
	done := map[int64]bool{}
	finished := make(chan int64, d.MaxInFlight)
	type chatQueue struct {
		ch    chan inbox.Event
		count int
	}
	chats := map[string]*chatQueue{}
	chatOf := map[int64]string{}
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	more := true // the inbox may hold events past read

	for {
		if room := d.MaxInFlight - len(inflight); more && room > 0 {
			evs, err := d.Source.After(ctx, read, room)
			if err != nil && ctx.Err() == nil {
				d.Log.Error(err, "reading the inbox failed", "sink", d.Sink.Name)
			}
			more = len(evs) == room
			for _, ev := range evs {
				read = ev.Seq
				inflight = append(inflight, ev.Seq)
				if !d.Sink.wants(ev) {
					d.filtered.Add(1)
					done[ev.Seq] = true
					continue
				}
				q := chats[ev.Chat]
				if q == nil {
					q = &chatQueue{ch: make(chan inbox.Event, d.MaxInFlight)}
					chats[ev.Chat] = q
					go d.chatWorker(ctx, q.ch, finished)
				}
				q.count++
				chatOf[ev.Seq] = ev.Chat
				q.ch <- ev
			}
		}
		// Move the cursor over the done prefix.
		moved := false
		for len(inflight) > 0 && done[inflight[0]] {
			cursor = inflight[0]
			delete(done, cursor)
			inflight = inflight[1:]
			moved = true
		}
		if moved {
			if err := d.Cursors.Set(ctx, d.Sink.Name, cursor); err != nil && ctx.Err() == nil {
				d.Log.Error(err, "saving the sink cursor failed", "sink", d.Sink.Name)
			}
			d.cursor.Store(cursor)
		}
		select {
		case <-ctx.Done():
			for _, q := range chats {
				close(q.ch)
			}
			return nil
		case seq := <-finished:
			done[seq] = true
			chat := chatOf[seq]
			delete(chatOf, seq)
			if q := chats[chat]; q != nil {
				q.count--
				if q.count == 0 {
					close(q.ch)
					delete(chats, chat)
				}
			}
		case <-wake:
			more = true
		case <-poll.C:
			more = true
		}
	}
}

func (d *Deliverer) chatWorker(ctx context.Context, ch <-chan inbox.Event, finished chan<- int64) {
	for ev := range ch {
		if ctx.Err() != nil {
			return
		}
		d.deliver(ctx, ev)
		select {
		case finished <- ev.Seq:
		case <-ctx.Done():
			return
		}
	}
}

// deliver tries one event until the sink takes it, refuses it for good, or it is too old; an
// event given up on goes to the dead-letter destination when there is one.
func (d *Deliverer) deliver(ctx context.Context, ev inbox.Event) {
	s := d.Sink
	for attempt := 0; ; attempt++ {
		status, retryAfter, err := d.post(ctx, s.Client, s.URL, ev, nil)
		switch {
		case err == nil && status >= 200 && status < 300:
			d.delivered.Add(1)
			d.succeeded()
			return
		case ctx.Err() != nil:
			return
		}
		d.failed(errorClass(err, status))
		if err == nil && !retryable(status) {
			d.Log.Info("sink refused an event; not retrying", "sink", s.Name, "event", ev.ID, "status", status)
			d.giveUp(ctx, ev, GiveUpRefused, status)
			return
		}
		if time.Since(ev.ReceivedAt) > s.MaxAge {
			d.Log.Info("event older than the sink's maximum age; giving up on it", "sink", s.Name, "event", ev.ID)
			d.giveUp(ctx, ev, GiveUpMaxAge, status)
			return
		}
		wait := backoff(s.MinBackoff, s.MaxBackoff, attempt)
		if retryAfter > wait {
			wait = min(retryAfter, s.MaxBackoff)
		}
		d.retries.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// retryable: 5xx, 429 and 408 are worth another try; other statuses (4xx, and 3xx since
// redirects are not followed) are not.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// backoff is exponential with full jitter: uniform in [min, min·2^attempt] capped at max.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	ceil := hi
	if attempt < 30 && lo<<attempt < hi {
		ceil = lo << attempt
	}
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo)
}

// maxResponseBody bounds how much of a sink's answer is read (then the connection is dropped).
const maxResponseBody = 64 << 10

// post sends one event in CloudEvents binary mode to target and reports the status and any
// Retry-After; extra holds further CloudEvents extension attributes (dead letters).
func (d *Deliverer) post(ctx context.Context, client *http.Client, target string, ev inbox.Event, extra map[string]string) (int, time.Duration, error) {
	s := d.Sink
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(ev.Data))
	if err != nil {
		return 0, 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", ev.ID)
	h.Set("ce-source", d.CESource)
	h.Set("ce-type", CloudEventTypePrefix+ev.Type)
	h.Set("ce-subject", ev.Chat)
	h.Set("ce-time", ev.Time.UTC().Format(time.RFC3339Nano))
	h.Set("ce-sequence", strconv.FormatInt(ev.Seq, 10))
	for k, v := range extra {
		h.Set("ce-"+k, v)
	}
	if len(s.Keys) > 0 {
		ts := time.Now().Unix()
		h.Set("webhook-id", ev.ID)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", Sign(s.Keys, ev.ID, ts, ev.Data))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxResponseBody)
	_ = resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), nil
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
