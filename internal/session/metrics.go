package session

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// metrics are per Runtime, so that several runtimes can live in one test process.
//
// They are written in the Prometheus text format (0.0.4) by hand: six counters and gauges do
// not need client_golang, which with its protobuf model, expfmt and procfs was ~1.5 MB of the
// session binary, and a session's memory is mostly its binary's pages (docs/benchmarks.md).
type metrics struct {
	families         []*family
	connected        *value
	state            *vec
	reconnects       *value
	qrCodes          *value
	leaseTransitions *vec
	leaseWrites      *value
	storeFailures    *value
}

var allStates = []whatsappv1alpha1.SessionState{
	whatsappv1alpha1.SessionStarting, whatsappv1alpha1.SessionWaitingForLease, whatsappv1alpha1.SessionPairing,
	whatsappv1alpha1.SessionConnecting, whatsappv1alpha1.SessionConnected, whatsappv1alpha1.SessionDisconnected,
	whatsappv1alpha1.SessionReplaced, whatsappv1alpha1.SessionLoggedOut, whatsappv1alpha1.SessionClientOutdated,
	whatsappv1alpha1.SessionTemporaryBan, whatsappv1alpha1.SessionConnectFailure, whatsappv1alpha1.SessionPairingTimeout,
	whatsappv1alpha1.SessionStoreError,
}

func newMetrics() *metrics {
	m := &metrics{}
	m.connected = m.add("whatsapp_session_connected", "gauge", "1 while the session is logged in to WhatsApp.", "").single()
	m.state = m.add("whatsapp_session_state", "gauge", "1 for the session's current state, 0 for the others.", "state").vec()
	m.reconnects = m.add("whatsapp_session_reconnects_total", "counter", "Failed automatic reconnect attempts.", "").single()
	m.qrCodes = m.add("whatsapp_session_qr_codes_total", "counter", "QR codes published for pairing.", "").single()
	m.leaseTransitions = m.add("whatsapp_session_lease_transitions_total", "counter", "Lease acquisitions and losses.", "transition").vec()
	m.leaseWrites = m.add("whatsapp_session_lease_writes_total", "counter", "Lease writes (create, renew, release) sent to the API server.", "").single()
	m.storeFailures = m.add("whatsapp_session_store_open_failures_total", "counter", "Failed attempts to open the device store.", "").single()
	m.setState(whatsappv1alpha1.SessionStarting)
	return m
}

func (m *metrics) setState(s whatsappv1alpha1.SessionState) {
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(string(st)).Set(v)
	}
	if s == whatsappv1alpha1.SessionConnected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

func (m *metrics) add(name, typ, help, label string) *family {
	f := &family{name: name, typ: typ, help: help, label: label, values: map[string]*value{}}
	m.families = append(m.families, f)
	return f
}

// ServeHTTP writes every family, sorted by name, each series sorted by label value, as
// client_golang's registry does.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, m.text())
}

func (m *metrics) text() string {
	fams := slices.Clone(m.families)
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for _, f := range fams {
		f.write(&b)
	}
	return b.String()
}

// family is one metric name: a single series (label "") or one series per value of label.
type family struct {
	name, typ, help, label string
	mu                     sync.Mutex
	values                 map[string]*value
}

func (f *family) single() *value { return f.get("") }
func (f *family) vec() *vec      { return &vec{f} }

func (f *family) get(labelValue string) *value {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.values[labelValue]
	if v == nil {
		v = &value{}
		f.values[labelValue] = v
	}
	return v
}

func (f *family) write(b *strings.Builder) {
	f.mu.Lock()
	keys := make([]string, 0, len(f.values))
	for k := range f.values {
		keys = append(keys, k)
	}
	f.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
	for _, k := range keys {
		b.WriteString(f.name)
		if f.label != "" {
			fmt.Fprintf(b, "{%s=%q}", f.label, k) // label values are the session's own constants
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(f.get(k).load(), 'g', -1, 64))
		b.WriteByte('\n')
	}
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// vec is a family with a label.
type vec struct{ f *family }

func (v *vec) WithLabelValues(labelValue string) *value { return v.f.get(labelValue) }

// value is a counter or gauge: a float64 in an atomic word.
type value struct{ bits atomic.Uint64 }

func (v *value) Inc()          { v.add(1) }
func (v *value) Set(x float64) { v.bits.Store(math.Float64bits(x)) }
func (v *value) load() float64 { return math.Float64frombits(v.bits.Load()) }

func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}
