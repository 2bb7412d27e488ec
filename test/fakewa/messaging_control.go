package fakewa

import (
	"errors"
	"net/http"

	"go.mau.fi/whatsmeow/types"
)

// messagingRoutes adds the messaging part of the control API:
//
//	POST /phones/{number}/messages {"to","text"}          the phone sends a text
//	POST /phones/{number}/messages {"to","undecryptable":true}
//	GET  /phones/{number}/messages                        what it sent, with receipts
//	GET  /devices/{jid}/mailbox                           a device's message counters
func (s *Server) messagingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /phones/{number}/messages", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To            string `json:"to"`
			Text          string `json:"text"`
			Undecryptable bool   `json:"undecryptable"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		to, err := types.ParseJID(req.To)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		p := s.Phone(r.PathValue("number"))
		var sent SentMessage
		if req.Undecryptable {
			sent, err = p.SendUndecryptable(r.Context(), to)
		} else {
			sent, err = p.SendText(r.Context(), to, req.Text)
		}
		if err != nil {
			status := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrBadJID), errors.Is(err, ErrOwnAccount):
				status = http.StatusBadRequest
			case errors.Is(err, ErrNoRecipient):
				status = http.StatusNotFound
			case errors.Is(err, ErrNoPreKeys):
				status = http.StatusConflict
			}
			writeError(w, status, err)
			return
		}
		writeJSON(w, http.StatusAccepted, sent)
	})
	mux.HandleFunc("GET /phones/{number}/messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Phone(r.PathValue("number")).Sent())
	})
	mux.HandleFunc("GET /devices/{jid}/mailbox", s.withDevice(func(d *Device, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Mailbox())
	}))
}
