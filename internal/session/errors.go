package session

import (
	"context"
	"errors"
	"net"

	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// StoreError is a device store that cannot be opened or used. What a person sees of it, in
// status, events, logs and metrics, is a class and a fixed text: a driver's error may quote the
// DSN it was given (pgx's parse error quotes a Secret that holds a token instead of a DSN), and
// the DSN holds a password. The driver's error is kept for errors.Is and errors.As only.
type StoreError struct {
	// Class is what went wrong, one of the Store* classes.
	Class string
	// Text is a fixed sentence for a person; it may name the SQLite path (the operator's
	// choice), never anything from the DSN.
	Text string
	err  error
}

// Store error classes.
const (
	StoreNotConfigured     = "NotConfigured"
	StoreDSNInvalid        = "DSNInvalid"
	StoreUnreachable       = "Unreachable"
	StoreTimeout           = "Timeout"
	StoreTLS               = "TLSFailed"
	StoreAuthFailed        = "AuthenticationFailed"
	StoreDatabaseNotFound  = "DatabaseNotFound"
	StorePermissionDenied  = "PermissionDenied"
	StoreNoSpace           = "NoSpace"
	StoreBusy              = "Busy"
	StoreCorrupt           = "Corrupt"
	StoreSchemaUpgrade     = "SchemaUpgradeFailed"
	StoreUnavailable       = "Unavailable"
	StoreOwnedElsewhere    = sessionenv.StoreClassOwnedElsewhere
	StoreHoldsOtherDevices = "HoldsOtherDevices"
)

// NewStoreError wraps err (which is never printed) in a class and a fixed text.
func NewStoreError(class, text string, err error) *StoreError {
	return &StoreError{Class: class, Text: text, err: err}
}

func (e *StoreError) Error() string { return e.Text + " (" + e.Class + ")" }
func (e *StoreError) Unwrap() error { return e.err }

// Describe is what may be shown of an error from the client or the store: a StoreError's class
// and text, or a fixed text for the kind of failure. Nothing of err's own message is kept, so
// nothing it quotes (a DSN, a server's reply) reaches a person.
func Describe(err error) string {
	var se *StoreError
	var netErr net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, ErrClientClosed):
		return "the client is closed"
	case errors.As(err, &netErr):
		return "a network error"
	default:
		return "an error in the WhatsApp client"
	}
}

// logText is what the log says of err: a StoreError's class and text (a driver's message may
// quote the DSN), anything else in full, for the person debugging.
func logText(err error) string {
	var se *StoreError
	if errors.As(err, &se) {
		return se.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
