package fakewa

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// ConnInfo describes one open websocket.
type ConnInfo struct {
	ID     uint64 `json:"id"`
	Kind   string `json:"kind"` // "handshake", "registration" or "login"
	Device string `json:"device,omitempty"`
	Live   bool   `json:"live"`
}

// Connections lists the open websockets.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnInfo, 0, len(s.conns))
	for _, c := range s.conns {
		info := ConnInfo{ID: c.id, Kind: "handshake", Live: c.live}
		switch {
		case c.reg != nil:
			info.Kind = "registration"
		case c.device != nil:
			info.Kind = "login"
			info.Device = c.device.jid.String()
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ConnInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ControlHandler serves the JSON control API used by the fakewa command:
//
//	GET    /stats                           server totals
//	GET    /devices                         devices (no timelines)
//	GET    /devices/{jid}                   one device with its timeline
//	GET    /connections                     open websockets
//	POST   /scan          {"phone","qr"}    the phone scans a QR payload
//	POST   /pair-code     {"phone","code"}  the phone enters a pairing code
//	POST   /devices/{jid}/stream-error {"code":503}
//	POST   /devices/{jid}/drop              bare TCP drop of live connections
//	POST   /devices/{jid}/fail-logins {"reason":405,"code":0,"expireSeconds":0,"times":0}
//	DELETE /devices/{jid}/fail-logins       logins succeed again
//	DELETE /devices/{jid}                   unlink: 401 device_removed
//
// and the messaging routes (messaging_control.go).
//
// It has no authentication: serve it on loopback only.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Devices()) })
	mux.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Connections()) })
	mux.HandleFunc("GET /devices/{jid}", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Stats())
	}))
	mux.HandleFunc("POST /scan", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, QR string }
		if !readJSON(w, r, &req) {
			return
		}
		s.respondPairing(w, r, func(ctx context.Context) (types.JID, error) { return s.Phone(req.Phone).ScanQR(ctx, req.QR) })
	})
	mux.HandleFunc("POST /pair-code", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, Code string }
		if !readJSON(w, r, &req) {
			return
		}
		s.respondPairing(w, r, func(ctx context.Context) (types.JID, error) { return s.Phone(req.Phone).EnterCode(ctx, req.Code) })
	})
	mux.HandleFunc("POST /devices/{jid}/stream-error", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		var req struct{ Code int }
		if !readJSON(w, r, &req) {
			return
		}
		n, err := d.SendStreamError(req.Code)
		respondCount(w, n, err)
	}))
	mux.HandleFunc("POST /devices/{jid}/drop", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		n, err := d.DropConnections()
		respondCount(w, n, err)
	}))
	mux.HandleFunc("POST /devices/{jid}/fail-logins", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		var req struct {
			Reason, Code, ExpireSeconds, Times int
			Message                            string
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Reason == 0 {
			writeError(w, http.StatusBadRequest, errors.New("reason is required"))
			return
		}
		d.FailLogins(LoginFailure{Reason: req.Reason, Code: req.Code, Expire: time.Duration(req.ExpireSeconds) * time.Second, Message: req.Message}, req.Times)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("DELETE /devices/{jid}/fail-logins", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		d.ClearLoginFailures()
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("DELETE /devices/{jid}", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		if err := d.Remove(); err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.messagingRoutes(mux)
	s.inboundRoutes(mux)
	return mux
}

func (s *Server) withDevice(h func(*Device, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		jid, err := types.ParseJID(r.PathValue("jid"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		d := s.Device(jid)
		if !d.Stats().Known {
			writeError(w, http.StatusNotFound, ErrUnknownDevice)
			return
		}
		h(d, w, r)
	}
}

func (s *Server) respondPairing(w http.ResponseWriter, r *http.Request, pair func(context.Context) (types.JID, error)) {
	jid, err := pair(r.Context())
	if err != nil {
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, ErrMalformedQR), errors.Is(err, ErrWrongCode):
			status = http.StatusBadRequest
		case errors.Is(err, ErrUnknownRef), errors.Is(err, ErrNoPendingCode):
			status = http.StatusNotFound
		case errors.Is(err, ErrRefExpired):
			status = http.StatusGone
		case errors.Is(err, ErrPairingBusy):
			status = http.StatusConflict
		}
		writeError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"jid": jid.String()})
}

func respondCount(w http.ResponseWriter, n int, err error) {
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"connections": n})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
