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
//
// One watch from resourceVersion "0" both reads the resource and follows it: the API server
// answers it from its watch cache, starting with the resource as it has it (a synthetic ADDED
// event), then each change. A GET before the watch cost one more request per session start,
// read from etcd, while 20 sessions starting at once wait on the API server for their QR code.
// The cache may be a moment behind etcd; a version it has not shown yet arrives as an event.
func followConnection(ctx context.Context, api *apiClient, out chan *whatsappv1alpha1.WhatsAppConnection, retry time.Duration, log logr.Logger) {
	for ctx.Err() == nil {
		w, err := api.watchConnection(ctx, "0")
		if err != nil {
			log.V(1).Info("cannot watch the resource; trying again", "error", err.Error())
			_ = ctxtime.Sleep(ctx, retry)
			continue
		}
		delivered := drain(ctx, w, out)
		w.Stop()
		if !delivered {
			// A watch that ended with nothing (an error event: forbidden, expired) is not
			// opened again in a hot loop.
			_ = ctxtime.Sleep(ctx, retry)
		}
	}
}

// drain sends each version w delivers to out until w or ctx ends, and says whether it sent any.
func drain(ctx context.Context, w watch.Interface, out chan *whatsappv1alpha1.WhatsAppConnection) (delivered bool) {
	for {
		select {
		case <-ctx.Done():
			return delivered
		case ev, ok := <-w.ResultChan():
			if !ok {
				return delivered
			}
			if wac, isWAC := ev.Object.(*whatsappv1alpha1.WhatsAppConnection); isWAC && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				offer(out, wac)
				delivered = true
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
