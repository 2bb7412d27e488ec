package events

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// RecentSource lists the inbox's latest events without content.
type RecentSource interface {
	Recent(ctx context.Context, limit int) ([]inbox.Summary, error)
}

// View is what `kubectl whatsapp events` reads from a session (GET /events on its metrics
// port, through the API server's pod proxy): each sink's state and the latest events, with
// the sinks still owing each one. No content, no sender, and chats masked to their last four
// digits: the endpoint is as open as /metrics.
type View struct {
	Sinks  []SinkView  `json:"sinks"`
	Events []EventView `json:"events"`
}

// SinkView is one sink's state.
type SinkView struct {
	Name         string `json:"name"`
	Failing      bool   `json:"failing"`
	Error        string `json:"error,omitempty"`
	Cursor       int64  `json:"cursor"`
	Delivered    int64  `json:"delivered"`
	Retries      int64  `json:"retries"`
	GivenUp      int64  `json:"givenUp"`
	DeadLettered int64  `json:"deadLettered"`
}

// EventView is one event's metadata.
type EventView struct {
	Seq        int64     `json:"seq"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Chat       string    `json:"chat,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Pending names the sinks whose cursor has not passed the event.
	Pending []string `json:"pending,omitempty"`
}

// maxViewEvents bounds ?limit.
const maxViewEvents = 500

// ViewHandler serves the View of the deliverers and the inbox current() returns (nil while no
// client is open).
func ViewHandler(current func() ([]*Deliverer, RecentSource)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deliverers, box := current()
		if box == nil {
			http.Error(w, "the session holds no open device store (not leading, or the store is unavailable)", http.StatusServiceUnavailable)
			return
		}
		limit := 50
		if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
			limit = min(v, maxViewEvents)
		}
		v := View{Sinks: []SinkView{}, Events: []EventView{}}
		for _, d := range deliverers {
			st := d.Stats()
			failing, class := d.Health()
			v.Sinks = append(v.Sinks, SinkView{Name: d.Sink.Name, Failing: failing, Error: class, Cursor: st.Cursor,
				Delivered: st.Delivered, Retries: st.Retries, GivenUp: st.GaveUp, DeadLettered: st.DeadLettered})
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		recent, err := box.Recent(ctx, limit)
		if err != nil {
			http.Error(w, "cannot read the inbox", http.StatusInternalServerError)
			return
		}
		for _, e := range recent {
			ev := EventView{Seq: e.Seq, ID: e.ID, Type: e.Type, Chat: MaskChat(e.Chat), ReceivedAt: e.ReceivedAt}
			for _, s := range v.Sinks {
				if e.Seq > s.Cursor {
					ev.Pending = append(ev.Pending, s.Name)
				}
			}
			v.Events = append(v.Events, ev)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
}

// MaskChat keeps a JID's server and the last four characters of its user: enough to tell
// chats apart, not enough to read a phone number.
func MaskChat(jid string) string {
	user, server, ok := strings.Cut(jid, "@")
	if !ok {
		return ""
	}
	if len(user) > 4 {
		user = "…" + user[len(user)-4:]
	}
	return user + "@" + server
}
