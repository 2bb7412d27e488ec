// Package plugin implements kubectl-whatsapp: the commands a person uses to pair, inspect and
// steer WhatsAppConnections. Every command is a function of a client and an io.Writer, so the
// tests drive them against a real API server without a terminal.
package plugin

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// DefaultPollInterval is how often waiting commands read the resource. A QR code lives for
// tens of seconds, so a second is quick enough and cheap for the API server.
const DefaultPollInterval = time.Second

// Target names one WhatsAppConnection.
type Target struct {
	Client    client.Client
	Namespace string
	Name      string
}

func (t Target) key() client.ObjectKey {
	return client.ObjectKey{Namespace: t.Namespace, Name: t.Name}
}

func (t Target) get(ctx context.Context) (*whatsappv1alpha1.WhatsAppConnection, error) {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	if err := t.Client.Get(ctx, t.key(), wac); err != nil {
		return nil, err
	}
	return wac, nil
}

// poll reads the resource every o.PollInterval and hands it to step until step is done or
// fails, o.Timeout passes, or ctx ends. The timeout is kept out of ctx on purpose: a request
// cut short by a deadline fails with the client's own error (its rate limiter even refuses
// early), and the person should instead learn what was awaited.
func (t Target) poll(ctx context.Context, o WaitOptions, what string,
	step func(*whatsappv1alpha1.WhatsAppConnection) (bool, error)) error {
	interval := o.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		timer := time.NewTimer(o.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		wac, err := t.get(ctx)
		if err != nil {
			return err
		}
		done, err := step(wac)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("timed out after %s waiting for %s", o.Timeout, what)
		case <-ticker.C:
		}
	}
}

// connected reports whether the session has logged in, and as whom.
func connected(wac *whatsappv1alpha1.WhatsAppConnection) (string, bool) {
	conn := wac.Status.Connection
	if wac.Status.Phase != whatsappv1alpha1.PhaseConnected &&
		(conn == nil || conn.State != whatsappv1alpha1.SessionConnected) {
		return "", false
	}
	if conn != nil && conn.JID != "" {
		return conn.JID, true
	}
	return wac.Status.Account, true
}

// halted reports a halt that waiting cannot end: only a person's action resumes it. A halt that
// lifts by itself (a ban that ends, another account's phone while the right one may still scan)
// is waited out.
func halted(wac *whatsappv1alpha1.WhatsAppConnection) error {
	if c := wac.Status.WaitingForPerson(); c != nil {
		return fmt.Errorf("%s/%s is halted by %s (%s): %s (fix the cause, then: kubectl whatsapp reconnect %s)",
			wac.Namespace, wac.Name, c.Type, c.Reason, message(wac), wac.Name)
	}
	return nil
}

// message is the most specific human-readable explanation the status holds.
func message(wac *whatsappv1alpha1.WhatsAppConnection) string {
	for _, t := range []string{whatsappv1alpha1.ConditionConflict, whatsappv1alpha1.ConditionDegraded} {
		for _, c := range wac.Status.Conditions {
			if c.Type == t && c.Status == "True" && c.Message != "" {
				return c.Message
			}
		}
	}
	for _, c := range wac.Status.Conditions {
		if c.Type == whatsappv1alpha1.ConditionReady && c.Message != "" {
			return c.Message
		}
	}
	if wac.Status.Connection != nil {
		return wac.Status.Connection.Message
	}
	return ""
}
