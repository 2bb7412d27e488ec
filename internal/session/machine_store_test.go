package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// flakyStore fails the first opens with its errors, then opens cli.
type flakyStore struct {
	mu    sync.Mutex
	errs  []error
	cli   *fakeClient
	opens []time.Time
}

func (s *flakyStore) open(context.Context) (Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens = append(s.opens, time.Now())
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	return s.cli, nil
}

func (s *flakyStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.opens)
}

func startMachineOnStore(t *testing.T, store *flakyStore, base, maxDelay time.Duration) *harness {
	t.Helper()
	cfg := Config{RenewDeadline: time.Second, QRFirstTTL: time.Second, QRNextTTL: time.Second, PairingWindows: 1,
		PairingBackoff: 50 * time.Millisecond, StoreRetryBase: base, StoreRetryMax: maxDelay}
	pub := &recordingPublisher{}
	m := newMachine(cfg, pub, newMetrics(), logr.Discard())
	m.open = store.open
	cli, err := m.open(context.Background())
	if err != nil {
		m.storeErr = err
	} else {
		m.cli = cli
	}
	h := &harness{m: m, cli: store.cli, pub: pub, resources: make(chan *whatsappv1alpha1.WhatsAppConnection, 1), wac: testConnection()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx, h.resources) }()
	t.Cleanup(func() { cancel(); <-done })
	h.resources <- h.wac.DeepCopy()
	return h
}

func TestStoreErrorRetriesWithBackoffAndStartsOnceTheStoreOpens(t *testing.T) {
	g := NewWithT(t)
	down := NewStoreError(StoreUnreachable, "the Postgres device store cannot be reached", errors.New("dial tcp: refused"))
	store := &flakyStore{errs: []error{down, down, down}, cli: newFakeClient("")}
	h := startMachineOnStore(t, store, 40*time.Millisecond, 160*time.Millisecond)

	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionStoreError))
	g.Expect(h.pub.Last().Message).To(ContainSubstring("(Unreachable)"))
	g.Expect(h.pub.Last().Message).NotTo(ContainSubstring("dial tcp"), "the driver's own text is never shown")

	// Three failures, then the store opens and the session pairs as it would have at once.
	g.Eventually(store.count, wait, tick).Should(Equal(4))
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))
	g.Eventually(state(h.pub), wait, tick).ShouldNot(Equal(whatsappv1alpha1.SessionStoreError))

	// Exponential: each wait at least the one before (40, 80, 160 ms), never a hot loop.
	gaps := []time.Duration{}
	for i := 1; i < len(store.opens); i++ {
		gaps = append(gaps, store.opens[i].Sub(store.opens[i-1]))
	}
	g.Expect(gaps[0]).To(BeNumerically(">=", 40*time.Millisecond))
	g.Expect(gaps[1]).To(BeNumerically(">=", 80*time.Millisecond))
	g.Expect(gaps[2]).To(BeNumerically(">=", 160*time.Millisecond))
}

func TestStoreRetryBackoffIsCapped(t *testing.T) {
	g := NewWithT(t)
	down := NewStoreError(StoreUnreachable, "unreachable", nil)
	store := &flakyStore{errs: []error{down, down, down, down, down, down, down, down}, cli: newFakeClient("")}
	h := startMachineOnStore(t, store, 10*time.Millisecond, 30*time.Millisecond)
	g.Eventually(store.count, wait, tick).Should(Equal(9))
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))
	g.Expect(store.opens[8].Sub(store.opens[5])).To(BeNumerically("<", 3*30*time.Millisecond+500*time.Millisecond),
		"waits stop doubling at StoreRetryMax")
}

func TestReconnectRequestRetriesTheStoreAtOnce(t *testing.T) {
	g := NewWithT(t)
	down := NewStoreError(StoreAuthFailed, "refused", nil)
	store := &flakyStore{errs: []error{down, down}, cli: newFakeClient("")}
	h := startMachineOnStore(t, store, time.Hour, time.Hour)
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionStoreError))
	g.Expect(store.count()).To(Equal(1))
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: "t1"}
	})
	g.Eventually(store.count, wait, tick).Should(Equal(2))
	g.Eventually(func() string { return h.pub.Last().LastHandledReconnectAt }, wait, tick).Should(Equal("t1"))
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: "t2"}
	})
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))
}

func TestDescribeNeverQuotesTheError(t *testing.T) {
	g := NewWithT(t)
	marker := "tok-7d1c0ffee"
	for _, err := range []error{
		errors.New("cannot parse `" + marker + "`: failed to parse as keyword/value"),
		NewStoreError(StoreDSNInvalid, "the DSN is not a PostgreSQL connection string", errors.New(marker)),
		context.DeadlineExceeded,
	} {
		g.Expect(Describe(err)).NotTo(ContainSubstring(marker))
		g.Expect(Describe(err)).NotTo(BeEmpty())
	}
	g.Expect(logText(NewStoreError(StoreDSNInvalid, "fixed", errors.New(marker)))).NotTo(ContainSubstring(marker))
}
