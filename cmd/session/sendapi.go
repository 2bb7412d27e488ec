package main

import (
	"context"
	"flag"
	"io"
	"strconv"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// sendAPIFlags are the send API's command-line settings.
type sendAPIFlags struct {
	addr, certFile, keyFile string
	ratePerMinute, burst    int
}

func (f *sendAPIFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, sessionenv.FlagSendAPIBindAddress, ":"+strconv.Itoa(sessionenv.SendAPIPort),
		"Address of the send API (POST /v1/messages); 0 disables it.")
	fs.StringVar(&f.certFile, sessionenv.FlagSendAPITLSCertFile, "", "TLS certificate of the send API; empty serves plain HTTP.")
	fs.StringVar(&f.keyFile, sessionenv.FlagSendAPITLSKeyFile, "", "TLS key of the send API.")
	fs.IntVar(&f.ratePerMinute, sessionenv.FlagSendRatePerMinute, 0,
		"Messages sent per minute on average (spec.send.ratePerMinute); 0 is the outbox's default.")
	fs.IntVar(&f.burst, sessionenv.FlagSendBurst, 0, "Messages sent at once above the rate (spec.send.burst); 0 is the default.")
}

// options are the outbox settings of the client: its slot for the send API and its rate limit.
func (f *sendAPIFlags) options(slot *outbox.Slot) whatsapp.SendOptions {
	o := whatsapp.SendOptions{Slot: slot, Burst: f.burst}
	if f.ratePerMinute > 0 {
		o.Rate = rate.Limit(float64(f.ratePerMinute) / 60)
	}
	return o
}

// serveSendAPI starts the send API of the connection over the outbox in slot; the API server
// decides who may use it (TokenReview and SubjectAccessReview with the session's credentials).
func serveSendAPI(ctx context.Context, f sendAPIFlags, cfg session.Config, rt *session.Runtime, slot *outbox.Slot, rc *rest.Config, log logr.Logger) error {
	if f.addr == "" || f.addr == "0" {
		return nil
	}
	reviewer, err := sendapi.NewReviewer(rc)
	if err != nil {
		return err
	}
	h := &sendapi.Handler{Outbox: slot, State: rt.State, Log: log,
		Auth: &sendapi.Authorizer{Reviewer: reviewer, Namespace: cfg.Namespace, Name: cfg.ConnectionName}}
	_, err = sendapi.Serve(ctx, f.addr, h.Routes(), f.certFile, f.keyFile, log)
	return err
}

// withOutboxMetrics adds the outbox's families to /metrics, after whatever cfg already adds
// (the event sinks').
func withOutboxMetrics(cfg *session.Config, slot *outbox.Slot) {
	more := cfg.MoreMetrics
	cfg.MoreMetrics = func(w io.Writer) {
		if more != nil {
			more(w)
		}
		_ = slot.WriteMetrics(w)
	}
}
