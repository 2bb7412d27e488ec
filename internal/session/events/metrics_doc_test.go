package events_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
)

// The README's table of event metrics is the list a user builds dashboards and alerts from: it
// names every family the session exports, with its type, and nothing it does not export.
func TestEveryEventMetricIsDocumentedInTheREADME(t *testing.T) {
	g := NewWithT(t)
	readme, err := os.ReadFile("../../../README.md")
	g.Expect(err).NotTo(HaveOccurred())
	documented := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| `(whatsapp_session_events_[a-z_]+)` \\| (gauge|counter) \\|")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = m[2]
	}

	box, cursors := openInbox(t)
	d := &events.Deliverer{Sink: events.Sink{Name: "app", URL: "http://127.0.0.1:1"}, Source: box, Cursors: cursors}
	col := &events.Collector{Deliverers: func() []*events.Deliverer { return []*events.Deliverer{d} }, Inbox: box}
	var b strings.Builder
	g.Expect(col.WriteText(&b)).To(Succeed())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(b.String()))
	g.Expect(err).NotTo(HaveOccurred())
	exported := map[string]string{}
	for name, f := range families {
		exported[name] = strings.ToLower(f.GetType().String())
		for _, m := range f.GetMetric() {
			labels := []string{}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			g.Expect(labels).To(Equal([]string{"sink"}), "%s: the sink is the only label", name)
		}
	}
	g.Expect(exported).To(HaveLen(7))
	g.Expect(documented).To(Equal(exported), "README rows vs exported families")
	for _, name := range []string{"whatsapp_session_events_backlog", "whatsapp_session_events_oldest_pending_age_seconds",
		"whatsapp_session_events_delivered_total", "whatsapp_session_events_retries_total", "whatsapp_session_events_dead_lettered_total"} {
		g.Expect(exported).To(HaveKey(name), "the issue's metrics: backlog, oldest pending age, deliveries, retries, dead letters")
	}
}
