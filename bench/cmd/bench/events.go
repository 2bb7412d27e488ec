package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// eventsSizes are the counts of the events figures (issue 15).
type eventsSizes struct {
	Latency    int // messages sent one at a time for phone → sink latency
	Throughput int // messages sent as fast as the phones can for events per second
	Pending    int // messages left pending (sink down) for the session's RSS
	Chats      int // phones writing at once, one chat each
}

var (
	eventsFull  = eventsSizes{Latency: 300, Throughput: 3000, Pending: 10000, Chats: 10}
	eventsQuick = eventsSizes{Latency: 50, Throughput: 500, Pending: 2000, Chats: 10}
)

// Targets: issue 15 sets none in numbers; these are what the figures are read against.
const (
	eventsLatencyTarget = 250 * time.Millisecond // p99 phone → sink at low load
	eventsRSSTarget     = 64                     // MiB with the pending backlog
)

// benchSink is the user's service: it records when each WhatsApp message id first arrived, and
// answers 503 while down.
type benchSink struct {
	down    atomic.Bool
	mu      sync.Mutex
	arrived map[string]time.Time
	refused atomic.Int64
}

func (s *benchSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s.down.Load() {
		s.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	now := time.Now()
	var msg struct{ ID string }
	if json.Unmarshal(body, &msg) == nil && msg.ID != "" {
		s.mu.Lock()
		if _, ok := s.arrived[msg.ID]; !ok {
			s.arrived[msg.ID] = now
		}
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// at is when id first arrived (zero if it has not).
func (s *benchSink) at(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrived[id]
}

func (s *benchSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrived)
}

// benchEvents measures the receive path end to end for one connection: the fake phones send
// through fakewa to the session (real whatsmeow, inbox commit before the receipt), which
// delivers to an HTTP sink in this process. Figures: phone → sink latency (p50, p99) one
// message at a time; events per second with every phone sending at once; the session's RSS
// with a backlog of pending events while the sink is down, and how fast that backlog drains.
func benchEvents(ctx context.Context, o options, bins *binaries, res *results) error {
	res.noteLoad("events")
	sz := eventsFull
	if o.Quick {
		sz = eventsQuick
	}
	sink := &benchSink{arrived: map[string]time.Time{}}
	hook := httptest.NewServer(sink)
	defer hook.Close()

	s, err := startSessionStack(ctx, o, bins, nil)
	if err != nil {
		return err
	}
	defer s.stop()
	const ns, name = "bench-events", "wac-0000"
	if err := s.cp.namespace(ctx, ns); err != nil {
		return err
	}
	wac := newConnection(ns, name)
	wac.Spec.Events = &whatsappv1alpha1.EventsSpec{Sinks: []whatsappv1alpha1.EventSink{{
		Name: "app", Destination: whatsappv1alpha1.Destination{URI: hook.URL + "/whatsapp"},
		Filter: &whatsappv1alpha1.EventFilter{Types: []whatsappv1alpha1.EventType{whatsappv1alpha1.EventMessageReceived}},
		// A down sink is retried every second at most, as a user would set for a local service.
		Delivery: &whatsappv1alpha1.EventDelivery{BackoffDelay: &metav1.Duration{Duration: 100 * time.Millisecond},
			BackoffMax: &metav1.Duration{Duration: time.Second}},
	}}}
	if err := s.cp.c.Create(ctx, wac); err != nil {
		return err
	}
	jids, err := s.pair(ctx, ns, []string{name}, 2*time.Minute)
	if err != nil {
		return err
	}
	account := jids[name].ToNonAD()
	phones := make([]*fakewa.Phone, sz.Chats)
	for i := range phones {
		phones[i] = s.fw.Phone(fmt.Sprintf("+1555900%04d", i))
	}
	// The device's pre-keys reach the server shortly after login; the first message opens each
	// phone's Signal session (pkmsg), which is not what the figures are about.
	warm := make([]string, 0, len(phones))
	for _, p := range phones {
		id, err := sendRetrying(ctx, p, account, "warm-up")
		if err != nil {
			return err
		}
		warm = append(warm, id)
	}
	if err := waitArrived(ctx, sink, warm, time.Minute); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "   paired; %d phones warmed up\n", len(phones))

	// From here on, the session's API writes are counted: the status-write cost under load.
	s.proxy.reset()
	loadStart := time.Now()

	// Latency: one message at a time, each after the previous one arrived.
	var lat []time.Duration
	for i := range sz.Latency {
		p := phones[i%len(phones)]
		start := time.Now()
		m, err := p.SendText(ctx, account, fmt.Sprintf("latency %d", i))
		if err != nil {
			return err
		}
		if err := waitArrived(ctx, sink, []string{m.ID}, 30*time.Second); err != nil {
			return err
		}
		at := sink.at(m.ID)
		lat = append(lat, at.Sub(start))
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	res.add(figure{
		Name: "events latency", Value: float64(p99.Microseconds()) / 1000, Unit: "ms p99",
		Target: fmt.Sprintf("p99 ≤ %s", eventsLatencyTarget), Pass: p99 <= eventsLatencyTarget,
		Detail: fmt.Sprintf("%d messages one at a time, phone → fakewa → session (inbox commit) → sink: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			len(lat), msOf(p50), msOf(p99), msOf(percentile(lat, 100))),
		Extra: map[string]any{"p50Ms": msOf(p50), "p99Ms": msOf(p99), "messages": len(lat)},
	})

	// Throughput: every phone sends its share as fast as it can.
	ids, sendTook, err := sendAll(ctx, phones, account, sz.Throughput, "burst")
	if err != nil {
		return err
	}
	start := time.Now().Add(-sendTook)
	if err := waitArrived(ctx, sink, ids, 5*time.Minute); err != nil {
		return err
	}
	var last time.Time
	for _, id := range ids {
		at := sink.at(id)
		last = maxTime(last, at)
	}
	took := last.Sub(start)
	rate := float64(len(ids)) / took.Seconds()
	res.add(figure{
		Name: "events throughput", Value: rate, Unit: "events/s", Target: "reported (one connection, end to end)", Pass: true,
		Detail: fmt.Sprintf("%d messages from %d phones at once: first send → last arrival %.2f s (the phones took %.2f s to send)",
			len(ids), len(phones), took.Seconds(), sendTook.Seconds()),
		Extra: map[string]any{"messages": len(ids), "seconds": seconds(took), "sendSeconds": seconds(sendTook)},
	})

	// Pending: the sink is down while the phones send; once WhatsApp has no message left for
	// the device, every one of them is committed in the inbox, waiting.
	pid, err := s.pidOf(ctx, ns, name)
	if err != nil {
		return err
	}
	before, _, err := rssKiB(pid)
	if err != nil {
		return err
	}
	sink.down.Store(true)
	fmt.Fprintf(os.Stderr, "   sink down; sending %d messages\n", sz.Pending)
	ids, _, err = sendAll(ctx, phones, account, sz.Pending, "pending")
	if err != nil {
		return err
	}
	dev := s.fw.Device(jids[name])
	if _, err := dev.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 }); err != nil {
		return err
	}
	// A few retry rounds of every chat's head event, so the figure includes delivery at work.
	if err := ctxtime.Sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	rss, hwm, err := rssKiB(pid)
	if err != nil {
		return err
	}
	if n := sink.count(); n > sz.Latency+sz.Throughput+len(warm) {
		return fmt.Errorf("the sink was down but %d events arrived", n-sz.Latency-sz.Throughput-len(warm))
	}
	res.add(figure{
		Name: "session RSS, events pending", Value: mib(rss), Unit: "MiB", Target: fmt.Sprintf("≤ %d MiB", eventsRSSTarget),
		Pass: mib(rss) <= eventsRSSTarget,
		Detail: fmt.Sprintf("%d events pending in the inbox (sink down, %d requests refused so far): RSS %.1f MiB (peak %.1f MiB); %.1f MiB before",
			len(ids), sink.refused.Load(), mib(rss), mib(hwm), mib(before)),
		Extra: map[string]any{"pending": len(ids), "rssMiB": mib(rss), "peakMiB": mib(hwm), "beforeMiB": mib(before)},
	})

	// Drain: the sink comes back; the backlog is delivered in order per chat.
	back := time.Now()
	sink.down.Store(false)
	if err := waitArrived(ctx, sink, ids, 10*time.Minute); err != nil {
		return err
	}
	drain := time.Since(back)
	res.add(figure{
		Name: "events backlog drain", Value: float64(len(ids)) / drain.Seconds(), Unit: "events/s", Target: "reported", Pass: true,
		Detail: fmt.Sprintf("%d pending events in %d chats delivered %.2f s after the sink came back (a retry wait of up to 1 s included)",
			len(ids), len(phones), drain.Seconds()),
		Extra: map[string]any{"events": len(ids), "seconds": seconds(drain)},
	})

	// What all of that cost the API server: the status writes (status.connection and the
	// EventsDelivering condition, which changes only when a sink starts or stops failing) and
	// the Lease renewals, against the events delivered.
	window := time.Since(loadStart)
	_, _, byKind := totals(s.proxy.snapshot())
	statusWrites, leaseWrites := byKind["PATCH whatsappconnections/status"], byKind["PUT leases"]
	events := sz.Latency + sz.Throughput + sz.Pending
	res.add(figure{
		Name: "status writes under load", Value: float64(statusWrites), Unit: "writes",
		Target: "transitions only (sink down, sink up), not per event", Pass: statusWrites <= 10,
		Detail: fmt.Sprintf("%d events over %.0f s (one sink outage): %d status writes, %d Lease writes (%.0f per hour, the idle rate)",
			events, window.Seconds(), statusWrites, leaseWrites, float64(leaseWrites)/window.Hours()),
		Extra: map[string]any{"events": events, "seconds": seconds(window), "statusWrites": statusWrites, "leaseWrites": leaseWrites, "byKind": byKind},
	})
	return nil
}

// sendAll has the phones send n messages between them, each phone its share in order, all at
// once; it returns the ids and how long the sending took.
func sendAll(ctx context.Context, phones []*fakewa.Phone, to types.JID, n int, label string) ([]string, time.Duration, error) {
	ids := make([][]string, len(phones))
	start := time.Now()
	err := parallel(len(phones), len(phones), func(i int) error {
		for k := i; k < n; k += len(phones) {
			m, err := phones[i].SendText(ctx, to, fmt.Sprintf("%s %d", label, k))
			if err != nil {
				return err
			}
			ids[i] = append(ids[i], m.ID)
		}
		return nil
	})
	var all []string
	for _, v := range ids {
		all = append(all, v...)
	}
	return all, time.Since(start), err
}

// sendRetrying sends until the device's pre-keys are on the server.
func sendRetrying(ctx context.Context, p *fakewa.Phone, to types.JID, text string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := p.SendText(ctx, to, text)
		if err == nil {
			return m.ID, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("sending to %s: %w", to, err)
		}
		if err := ctxtime.Sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// waitArrived waits until the sink has every id.
func waitArrived(ctx context.Context, sink *benchSink, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	poll := 2 * time.Millisecond // the sink stamps arrivals; polling only decides when to go on
	if len(ids) > 100 {
		poll = 50 * time.Millisecond
	}
	for {
		missing := 0
		sink.mu.Lock()
		for _, id := range ids {
			if _, ok := sink.arrived[id]; !ok {
				missing++
			}
		}
		sink.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d events did not reach the sink within %s", missing, len(ids), timeout)
		}
		if err := ctxtime.Sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// msOf is d in milliseconds, to the microsecond.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
