// Package session is the runtime inside a session pod: it holds the connection's Lease, drives
// one WhatsApp client through pairing, login and its terminal states, and reports what it sees
// in status.connection. It talks to WhatsApp only through the Client seam (client.go); the
// whatsmeow implementation lives in the whatsapp sub-package. See README.md.
package session
