// Package sendapi is the session's HTTP API for sending messages: POST /v1/messages queues a
// message in the outbox of the connection, GET /v1/messages/{id} reads its state. Callers
// authenticate with a ServiceAccount token for the connection's audience, and the API server
// decides what they may do (Authorizer).
package sendapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"go.mau.fi/whatsmeow/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// Limits of a request.
const (
	// MaxTextLength is WhatsApp's limit for one text message, in characters.
	MaxTextLength = 65536
	// MaxBodyBytes bounds a request body: the longest text, JSON-escaped, fits.
	MaxBodyBytes = 512 << 10
	// MaxIDLength bounds a caller id.
	MaxIDLength = 128
	// MaxWait bounds ?wait=sent.
	MaxWait = 30 * time.Second
)

// Handler serves the send API of one connection.
type Handler struct {
	// Outbox holds the open client's outbox (nil while the session does not hold the Lease).
	Outbox *outbox.Slot
	// State is the session's state (Runtime.State).
	State func() whatsappv1alpha1.SessionState
	Auth  *Authorizer
	Log   logr.Logger
	// Wait bounds ?wait=sent (default MaxWait).
	Wait time.Duration
}

// Routes returns the API's mux.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", h.send)
	mux.HandleFunc("GET /v1/messages/{id}", h.get)
	mux.HandleFunc("GET /v1/messages", h.list)
	return mux
}

// MessageStatus is what the API answers about a message.
type MessageStatus struct {
	ID          string       `json:"id"`
	WhatsAppID  string       `json:"whatsappId"`
	To          string       `json:"to"`
	State       outbox.State `json:"state"`
	Attempts    int          `json:"attempts"`
	Reason      string       `json:"reason,omitempty"`
	CreatedAt   time.Time    `json:"createdAt"`
	SentAt      *time.Time   `json:"sentAt,omitempty"`
	DeliveredAt *time.Time   `json:"deliveredAt,omitempty"`
	ReadAt      *time.Time   `json:"readAt,omitempty"`
	FailedAt    *time.Time   `json:"failedAt,omitempty"`
}

func statusOf(m outbox.Message) MessageStatus {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return MessageStatus{ID: m.ID, WhatsAppID: m.WAID, To: m.To, State: m.State, Attempts: m.Attempts, Reason: m.Reason,
		CreatedAt: m.CreatedAt.UTC(), SentAt: opt(m.SentAt), DeliveredAt: opt(m.DeliveredAt), ReadAt: opt(m.ReadAt),
		FailedAt: opt(m.FailedAt)}
}

// sendRequest is the body of POST /v1/messages.
type sendRequest struct {
	To   string `json:"to"`
	Text string `json:"text"`
	ID   string `json:"id,omitempty"`
}

var (
	e164     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	callerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	// userJID is a person's chat: a phone number or a LID, without a device part.
	userJID = regexp.MustCompile(`^([1-9][0-9]{6,14}@s\.whatsapp\.net|[1-9][0-9]{0,19}@lid)$`)
)

// sendable states: paired, and connected or on the way back (messages wait in the outbox).
func sendable(s whatsappv1alpha1.SessionState) bool {
	return s == whatsappv1alpha1.SessionConnected || s == whatsappv1alpha1.SessionDisconnected ||
		s == whatsappv1alpha1.SessionConnecting
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r, "create") {
		return
	}
	var req sendRequest
	if msg, ok := decodeStrict(w, r, &req); !ok {
		writeError(w, http.StatusBadRequest, msg, nil)
		return
	}
	to, msg := recipient(req.To)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg, map[string]any{"field": "to"})
		return
	}
	if msg := checkText(req.Text); msg != "" {
		writeError(w, http.StatusBadRequest, msg, map[string]any{"field": "text"})
		return
	}
	if req.ID != "" && (len(req.ID) > MaxIDLength || !callerID.MatchString(req.ID)) {
		writeError(w, http.StatusBadRequest, "id must be 1-128 characters of letters, digits and . _ : - (starting with a letter or digit)",
			map[string]any{"field": "id"})
		return
	}
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "sent" {
		writeError(w, http.StatusBadRequest, `wait must be "sent"`, map[string]any{"field": "wait"})
		return
	}
	state := h.State()
	box := h.Outbox.Get()
	if box == nil || !sendable(state) {
		writeError(w, http.StatusConflict, "the connection cannot send now", map[string]any{"phase": string(state)})
		return
	}
	m, created, err := box.Submit(r.Context(), outbox.Request{ID: req.ID, To: to, Text: req.Text})
	switch {
	case errors.Is(err, outbox.ErrConflict):
		writeError(w, http.StatusConflict, "the id is already used by a message with another recipient or text", map[string]any{"field": "id"})
		return
	case errors.Is(err, outbox.ErrFull):
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "the outbox is full; try again later", nil)
		return
	case err != nil:
		h.Log.Error(err, "queueing a message failed")
		writeError(w, http.StatusServiceUnavailable, "the outbox is not available", nil)
		return
	}
	status := http.StatusAccepted
	if wait == "sent" {
		bound := h.Wait
		if bound <= 0 {
			bound = MaxWait
		}
		ctx, cancel := context.WithTimeout(r.Context(), bound)
		m, err = box.Wait(ctx, m.ID, func(m outbox.Message) bool { return m.State != outbox.Queued && m.State != outbox.Sending })
		cancel()
		if err == nil {
			status = http.StatusOK
		} else if r.Context().Err() != nil {
			return
		}
	} else if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, statusOf(m))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r, "get") {
		return
	}
	box := h.Outbox.Get()
	if box == nil {
		writeError(w, http.StatusConflict, "the connection's store is not open here", map[string]any{"phase": string(h.State())})
		return
	}
	m, err := box.Store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		writeError(w, http.StatusNotFound, "no message with this id", nil)
	case err != nil:
		h.Log.Error(err, "reading the outbox failed")
		writeError(w, http.StatusServiceUnavailable, "the outbox is not available", nil)
	default:
		writeJSON(w, http.StatusOK, statusOf(m))
	}
}

// Bounds of GET /v1/messages.
const (
	DefaultListLimit = 20
	MaxListLimit     = 500
)

// MessageList is the answer of GET /v1/messages: the latest messages, newest first.
type MessageList struct {
	Messages []MessageStatus `json:"messages"`
}

// list answers the latest messages (?limit=N, default 20, at most 500); reading them is "get"
// on whatsappconnections/messages, as reading one is.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r, "get") {
		return
	}
	limit := DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be a number from 1 to 500", map[string]any{"field": "limit"})
			return
		}
		limit = n
	}
	box := h.Outbox.Get()
	if box == nil {
		writeError(w, http.StatusConflict, "the connection's store is not open here", map[string]any{"phase": string(h.State())})
		return
	}
	rows, err := box.Store.Recent(r.Context(), limit)
	if err != nil {
		h.Log.Error(err, "reading the outbox failed")
		writeError(w, http.StatusServiceUnavailable, "the outbox is not available", nil)
		return
	}
	out := MessageList{Messages: make([]MessageStatus, 0, len(rows))}
	for _, m := range rows {
		out.Messages = append(out.Messages, statusOf(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// authorize answers 401/403 (or 503 when the API server cannot be asked) and returns false
// unless the request's token may do verb. It runs before anything looks at the request's
// content, so a refused caller learns nothing about which messages exist.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, verb string) bool {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == r.Header.Get("Authorization") {
		token = "" // not a bearer token
	}
	d, err := h.Auth.Check(r.Context(), strings.TrimSpace(token), verb)
	if err != nil {
		h.Log.Error(err, "checking a caller's access failed")
		writeError(w, http.StatusServiceUnavailable, "cannot check access now", nil)
		return false
	}
	switch d {
	case Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="whatsapp-session"`)
		writeError(w, http.StatusUnauthorized, "a ServiceAccount token for this connection's audience is required", nil)
		return false
	case Forbidden:
		writeError(w, http.StatusForbidden, "not allowed to "+verb+" whatsappconnections/messages of this connection", nil)
		return false
	}
	return true
}

// decodeStrict reads exactly one JSON object with known fields from a bounded body.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) (string, bool) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "the body is larger than 512 KiB", false
		}
		return "the body must be one JSON object with to, text and optionally id: " + err.Error(), false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "the body must be one JSON object, with nothing after it", false
	}
	return "", true
}

// recipient turns "+E.164" or a user JID into the JID the outbox sends to.
func recipient(to string) (string, string) {
	const want = `to must be a phone number in E.164 form ("+15551234567") or a user JID ("15551234567@s.whatsapp.net")`
	if to == "" {
		return "", "to is required: " + want
	}
	if strings.HasPrefix(to, "+") {
		if !e164.MatchString(to) {
			return "", want
		}
		return types.NewJID(to[1:], types.DefaultUserServer).String(), ""
	}
	if !userJID.MatchString(to) {
		return "", want
	}
	return to, ""
}

func checkText(text string) string {
	switch {
	case strings.TrimSpace(text) == "":
		return "text is required and must not be blank"
	case !utf8.ValidString(text):
		return "text must be UTF-8"
	case utf8.RuneCountInString(text) > MaxTextLength:
		return "text is longer than WhatsApp's limit of 65536 characters"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg, ...details}. Messages never echo the request's content.
func writeError(w http.ResponseWriter, status int, msg string, details map[string]any) {
	body := map[string]any{"error": msg}
	for k, v := range details {
		body[k] = v
	}
	writeJSON(w, status, body)
}
