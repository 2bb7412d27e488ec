package whatsapp

import (
	"fmt"

	"github.com/go-logr/logr"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// logger bridges whatsmeow's logger into the session's logr logger. whatsmeow's debug lines are
// dropped, not demoted: they dump whole protocol nodes, QR refs and key material among them.
type logger struct{ log logr.Logger }

// NewLogger returns a whatsmeow logger that writes to log.
func NewLogger(log logr.Logger) waLog.Logger { return logger{log} }

func (l logger) Errorf(msg string, args ...any) { l.log.Error(nil, fmt.Sprintf(msg, redact(args)...)) }
func (l logger) Warnf(msg string, args ...any) {
	l.log.Info(fmt.Sprintf(msg, redact(args)...), "level", "warning")
}
func (l logger) Infof(msg string, args ...any)  { l.log.V(1).Info(fmt.Sprintf(msg, redact(args)...)) }
func (l logger) Debugf(string, ...any)          {}
func (l logger) Sub(module string) waLog.Logger { return logger{l.log.WithName(module)} }

// redact replaces the database driver's errors among whatsmeow's log arguments by their class:
// their text may quote the DSN's user, host or database.
func redact(args []any) []any {
	for i, a := range args {
		if err, ok := a.(error); ok && isStoreError(err) {
			out := append([]any(nil), args...)
			for j := i; j < len(out); j++ {
				if err, ok := out[j].(error); ok && isStoreError(err) {
					out[j] = session.Describe(safeError(err))
				}
			}
			return out
		}
	}
	return args
}
