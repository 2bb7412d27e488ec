package session

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/watch"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// followConnection sends the resource to out each time it changes, newest only (out holds one).
func followConnection(ctx context.Context, api *apiClient, out chan *whatsappv1alpha1.WhatsAppConnection, retry time.Duration, log logr.Logger) {
	for ctx.Err() == nil {
		wac, err := api.getConnection(ctx)
		if err != nil {
			log.V(1).Info("cannot read the resource; trying again", "error", err.Error())
			_ = ctxtime.Sleep(ctx, retry)
			continue
		}
		offer(out, wac)
		w, err := api.watchConnection(ctx, wac.ResourceVersion)
		if err != nil {
			log.V(1).Info("cannot watch the resource; trying again", "error", err.Error())
			_ = ctxtime.Sleep(ctx, retry)
			continue
		}
		drain(ctx, w, out)
		w.Stop()
	}
}

func drain(ctx context.Context, w watch.Interface, out chan *whatsappv1alpha1.WhatsAppConnection) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			if wac, isWAC := ev.Object.(*whatsappv1alpha1.WhatsAppConnection); isWAC && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				offer(out, wac)
			}
		}
	}
}

// offer replaces whatever is waiting in out: only the newest version matters.
func offer[T any](out chan T, v T) {
	for {
		select {
		case out <- v:
			return
		default:
			select {
			case <-out:
			default:
			}
		}
	}
}
