package whatsapp

import (
	"strconv"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// translate maps the whatsmeow events the state machine cares about to its own; nil for the rest.
func translate(cli *whatsmeow.Client, evt any) session.Event {
	switch e := evt.(type) {
	case *events.QR:
		return session.QRCodes{Codes: append([]string(nil), e.Codes...)}
	case *events.PairSuccess:
		return session.PairSuccess{JID: e.ID.String(), Platform: e.Platform}
	case *events.PairError:
		return session.PairError{Err: safeError(e.Error)}
	case *events.Connected:
		ev := session.Connected{PushName: cli.Store.PushName, Platform: cli.Store.Platform}
		if cli.Store.ID != nil {
			ev.JID = cli.Store.ID.String()
		}
		return ev
	case *events.Disconnected:
		return session.Disconnected{}
	case *events.StreamReplaced:
		return session.StreamReplaced{}
	case *events.LoggedOut:
		return session.LoggedOut{Reason: e.Reason.String()}
	case *events.ClientOutdated:
		return session.ClientOutdated{}
	case *events.TemporaryBan:
		return session.TemporaryBan{Code: strconv.Itoa(int(e.Code)), Expire: e.Expire}
	case *events.ConnectFailure:
		return session.ConnectFailure{Code: strconv.Itoa(int(e.Reason)), Message: e.Message}
	case *events.CATRefreshError:
		return session.ConnectFailure{Code: "cat-refresh", Message: e.Error.Error()}
	}
	return nil
}
