package whatsapp

import (
	"fmt"

	"github.com/go-logr/logr"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// logger bridges whatsmeow's logger into the session's logr logger. whatsmeow's debug lines are
// dropped, not demoted: they dump whole protocol nodes, QR refs and key material among them.
type logger struct{ log logr.Logger }

// NewLogger returns a whatsmeow logger that writes to log.
func NewLogger(log logr.Logger) waLog.Logger { return logger{log} }

func (l logger) Errorf(msg string, args ...any) { l.log.Error(nil, fmt.Sprintf(msg, args...)) }
func (l logger) Warnf(msg string, args ...any) {
	l.log.Info(fmt.Sprintf(msg, args...), "level", "warning")
}
func (l logger) Infof(msg string, args ...any)  { l.log.V(1).Info(fmt.Sprintf(msg, args...)) }
func (l logger) Debugf(string, ...any)          {}
func (l logger) Sub(module string) waLog.Logger { return logger{l.log.WithName(module)} }
