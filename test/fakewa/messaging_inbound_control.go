package fakewa

import (
	"net/http"

	"go.mau.fi/whatsmeow/types"
)

// inboundRoutes adds the device → phone part of the control API:
//
//	GET  /phones/{number}/received            what the phone received from linked devices
//	GET  /phones/{number}/received/stats      what it could not decrypt
//	POST /phones/{number}/read {"ids":[…]}    the phone reads them (all unread when ids is empty)
func (s *Server) inboundRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /phones/{number}/received", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Phone(r.PathValue("number")).Received())
	})
	mux.HandleFunc("GET /phones/{number}/received/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Phone(r.PathValue("number")).InboxStats())
	})
	mux.HandleFunc("POST /phones/{number}/read", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			IDs []types.MessageID `json:"ids"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		n := s.Phone(r.PathValue("number")).MarkRead(req.IDs...)
		writeJSON(w, http.StatusOK, map[string]int{"read": n})
	})
}
