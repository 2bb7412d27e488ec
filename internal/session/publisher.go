package session

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/equality"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// FieldManager owns status.connection; the controller's own manager owns the rest of status.
const FieldManager = "whatsapp-session"

// publisher writes status.connection, and nothing else, with server-side apply.
type publisher interface {
	publish(ctx context.Context, st whatsappv1alpha1.ConnectionStatus) error
}

var errNotHolding = errors.New("not holding the Lease: status not written")

type statusPublisher struct {
	api    *apiClient
	holder whatsappv1alpha1.Holder
	fence  fence
	last   *whatsappv1alpha1.ConnectionStatus
}

// publish applies the whole status.connection: fields left empty are given up, and so cleared
// (a stale QR code does not outlive its window). An unchanged status is not written again.
func (p *statusPublisher) publish(ctx context.Context, st whatsappv1alpha1.ConnectionStatus) error {
	if !p.fence.holding() {
		return errNotHolding
	}
	st.Holder = &p.holder
	if p.last != nil && equality.Semantic.DeepEqual(*p.last, st) {
		return nil
	}
	if err := p.api.applyStatus(ctx, sessionStatus{Connection: &st}, FieldManager); err != nil {
		return err
	}
	p.last = st.DeepCopy()
	return nil
}
