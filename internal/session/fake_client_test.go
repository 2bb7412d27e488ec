package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// fakeClient stands in for whatsmeow in the pure state-machine tests: the test plays WhatsApp
// by sending events; the fake records what the machine asked of it.
type fakeClient struct {
	events chan Event
	mu     sync.Mutex
	jid    string
	calls  []string
	// deviceName is the name the last pairing would have sent.
	deviceName string
}

func newFakeClient(jid string) *fakeClient {
	return &fakeClient{events: make(chan Event, 16), jid: jid}
}

func (f *fakeClient) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeClient) count(c string) int {
	n := 0
	for _, x := range f.Calls() {
		if x == c {
			n++
		}
	}
	return n
}

func (f *fakeClient) Events() <-chan Event { return f.events }
func (f *fakeClient) PairedJID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jid
}
func (f *fakeClient) Connect(context.Context) error { f.record("connect"); return nil }
func (f *fakeClient) Disconnect()                   { f.record("disconnect") }
func (f *fakeClient) SetDeviceName(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deviceName = name
}
func (f *fakeClient) PairPhone(context.Context, string) (string, error) {
	f.record("pairphone")
	return "ABCD-EFGH", nil
}
func (f *fakeClient) Logout(context.Context) error {
	f.record("logout")
	f.mu.Lock()
	f.jid = ""
	f.mu.Unlock()
	return nil
}
func (f *fakeClient) IsLoggedIn() bool                   { return false }
func (f *fakeClient) ReleaseStore(context.Context) error { f.record("release"); return nil }
func (f *fakeClient) Close() error                       { f.record("close"); return nil }

// recordingPublisher keeps every status the machine published.
type recordingPublisher struct {
	mu  sync.Mutex
	all []whatsappv1alpha1.ConnectionStatus
}

func (p *recordingPublisher) publish(_ context.Context, st whatsappv1alpha1.ConnectionStatus) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, *st.DeepCopy())
	return nil
}

func (p *recordingPublisher) Last() whatsappv1alpha1.ConnectionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.all) == 0 {
		return whatsappv1alpha1.ConnectionStatus{}
	}
	return p.all[len(p.all)-1]
}

func (p *recordingPublisher) States() []whatsappv1alpha1.SessionState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []whatsappv1alpha1.SessionState
	for _, s := range p.all {
		out = append(out, s.State)
	}
	return out
}

// harness runs a machine over a fake client with fast pairing timings.
type harness struct {
	m         *machine
	cli       *fakeClient
	pub       *recordingPublisher
	resources chan *whatsappv1alpha1.WhatsAppConnection
	wac       *whatsappv1alpha1.WhatsAppConnection
}

func startMachine(t *testing.T, cli *fakeClient, wac *whatsappv1alpha1.WhatsAppConnection) *harness {
	t.Helper()
	cfg := Config{RenewDeadline: time.Second, QRFirstTTL: 150 * time.Millisecond, QRNextTTL: 100 * time.Millisecond,
		PairingWindows: 2, PairingBackoff: 50 * time.Millisecond}
	pub := &recordingPublisher{}
	m := newMachine(cfg, pub, newMetrics(), logr.Discard())
	m.cli = cli
	h := &harness{m: m, cli: cli, pub: pub, resources: make(chan *whatsappv1alpha1.WhatsAppConnection, 1), wac: wac}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx, h.resources) }()
	t.Cleanup(func() { cancel(); <-done })
	h.resources <- wac.DeepCopy()
	return h
}

func (h *harness) update(mutate func(*whatsappv1alpha1.WhatsAppConnection)) {
	mutate(h.wac)
	offer(h.resources, h.wac.DeepCopy())
}

func testConnection() *whatsappv1alpha1.WhatsAppConnection {
	return &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Name: "wac", Namespace: "ns"}}
}

func state(p *recordingPublisher) func() whatsappv1alpha1.SessionState {
	return func() whatsappv1alpha1.SessionState { return p.Last().State }
}

var _ = NewWithT
