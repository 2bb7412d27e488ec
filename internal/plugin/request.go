package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Reconnect asks the operator to clear a Conflict or Degraded halt and try once more.
func Reconnect(ctx context.Context, t Target, out io.Writer, now time.Time) error {
	if err := request(ctx, t, whatsappv1alpha1.ReconnectRequestedAtAnnotation, now); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "Reconnect of %s/%s requested; follow it with kubectl whatsapp status %s.\n",
		t.Namespace, t.Name, t.Name)
	return err
}

// Logout asks the session to log the device out, wipe its store and pair again.
func Logout(ctx context.Context, t Target, out io.Writer, now time.Time) error {
	if err := request(ctx, t, whatsappv1alpha1.LogoutRequestedAtAnnotation, now); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "Logout of %s/%s requested; pair again with kubectl whatsapp qr %s --watch.\n",
		t.Namespace, t.Name, t.Name)
	return err
}

// request sets a request annotation to a fresh token. The operator acts on a token it has not
// handled yet, so the token must differ from the last one even within one second: nanosecond
// precision (still RFC 3339) gives that.
func request(ctx context.Context, t Target, annotation string, now time.Time) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		annotation: now.UTC().Format(time.RFC3339Nano)}}})
	if err != nil {
		return err
	}
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.Namespace, wac.Name = t.Namespace, t.Name
	return t.Client.Patch(ctx, wac, client.RawPatch(types.MergePatchType, patch))
}
