package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
)

// sharedLease is memLease for a test that changes it while Hold runs: one request at a time,
// and it can stop answering, as a stalled API server does.
type sharedLease struct {
	mu   sync.Mutex
	m    memLease
	down bool
}

var errDown = errors.New("the API server does not answer")

func (s *sharedLease) GetLease(ctx context.Context) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	return s.m.GetLease(ctx)
}

func (s *sharedLease) UpdateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	return s.m.UpdateLease(ctx, l)
}

func (s *sharedLease) do(fn func(m *memLease)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.m)
}

func (s *sharedLease) holder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ptr.Deref(s.m.lease.Spec.HolderIdentity, "")
}

func (s *sharedLease) updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.updates
}

// held is an elector at fast timings that has acquired a free Lease, with a client behind its
// fence; closed reports when the fence closed the client.
type held struct {
	e           *Elector
	api         *sharedLease
	closed      chan struct{}
	mu          sync.Mutex
	transitions []string
}

// Renew deadlines for acquired: a test that ends the hold some other way gets one that a loaded
// machine (a goroutine not run for 0.4 s at load 20) cannot reach first.
const (
	shortRenewDeadline = 400 * time.Millisecond
	longRenewDeadline  = 20 * time.Second
)

func acquired(t *testing.T, renewDeadline time.Duration) *held {
	t.Helper()
	h := &held{api: &sharedLease{}, closed: make(chan struct{})}
	h.api.m.heldBy("", time.Now())
	timings := Timings{Duration: renewDeadline + 600*time.Millisecond, RenewDeadline: renewDeadline, RetryPeriod: 50 * time.Millisecond,
		StandbyPoll: 10 * time.Millisecond, RequestTimeout: 20 * time.Millisecond}
	fence := NewFence(timings.RenewDeadline)
	h.e = NewElector(h.api, Options{Identity: "me", Timings: timings, Fence: fence, Log: logr.Discard(),
		Transitions: func(tr string) { h.mu.Lock(); h.transitions = append(h.transitions, tr); h.mu.Unlock() }})
	if !h.e.Acquire(context.Background()) {
		t.Fatal("Acquire gave up on a free Lease")
	}
	fence.Guard(func() { close(h.closed) })
	return h
}

// hold runs Hold with work that runs until its context ends, as the session's does.
func (h *held) hold(ctx context.Context) <-chan error {
	out := make(chan error, 1)
	go func() {
		out <- h.e.Hold(ctx, func(ctx context.Context) error {
			ctx, stop := context.WithCancelCause(ctx)
			go h.e.fence.Watchdog(ctx, stop, logr.Discard())
			<-ctx.Done()
			if cause := context.Cause(ctx); errors.Is(cause, ErrRenewDeadline) {
				return cause
			}
			return nil
		})
	}()
	return out
}

func (h *held) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.transitions...)
}

func TestHoldRenewsThenEndsWithErrLostAndLeavesTheNewHoldersLeaseAlone(t *testing.T) {
	g := NewWithT(t)
	h := acquired(t, longRenewDeadline)
	done := h.hold(context.Background())
	g.Eventually(h.api.updates).Should(BeNumerically(">=", 4), "renewed every RetryPeriod")
	g.Expect(h.e.fence.Holding()).To(BeTrue())

	h.api.do(func(m *memLease) { m.heldBy("other", time.Now()) })
	var err error
	g.Eventually(done).Should(Receive(&err))
	g.Expect(err).To(MatchError(ErrLost))
	g.Expect(h.closed).To(BeClosed(), "the client is closed")
	g.Expect(h.api.holder()).To(Equal("other"), "a Lease someone else took is not released")
	g.Expect(h.seen()).To(Equal([]string{Acquired, Lost}))
}

func TestHoldReleasesTheLeaseAfterClosingTheClientOnShutdown(t *testing.T) {
	g := NewWithT(t)
	h := acquired(t, longRenewDeadline)
	ctx, cancel := context.WithCancel(context.Background())
	done := h.hold(ctx)
	g.Eventually(h.api.updates).Should(BeNumerically(">=", 2))

	cancel() // SIGTERM
	var err error
	g.Eventually(done).Should(Receive(&err))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.closed).To(BeClosed())
	g.Expect(h.api.holder()).To(BeEmpty(), "released for a successor")
	g.Expect(h.seen()).To(Equal([]string{Acquired}), "a shutdown is no loss")
}

func TestHoldDropsTheClientWhenNoRenewalSucceedsWithinTheRenewDeadline(t *testing.T) {
	g := NewWithT(t)
	h := acquired(t, shortRenewDeadline)
	done := h.hold(context.Background())
	g.Eventually(h.api.updates).Should(BeNumerically(">=", 2))

	h.api.mu.Lock()
	h.api.down = true
	h.api.mu.Unlock()
	var err error
	g.Eventually(done).Should(Receive(&err))
	g.Expect(err).To(MatchError(ErrRenewDeadline))
	g.Expect(h.closed).To(BeClosed())
	g.Expect(h.e.fence.Lapsed(time.Now())).To(BeTrue(), "never to write the Lease again")
	g.Expect(h.api.holder()).To(Equal("me"), "the Lease expires on its own for the others")
}
