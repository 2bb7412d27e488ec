package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// e164 is the CRD's own rule, checked here too so a typo fails before anything changes.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Pair switches the resource to phone-code pairing with phone and prints the pairing code
// once the session publishes it. With Watch it also prints each new code and returns once the
// device is connected.
func Pair(ctx context.Context, t Target, phone string, out io.Writer, o WaitOptions) error {
	if !e164.MatchString(phone) {
		return fmt.Errorf("phone number %q is not in E.164 form (+ then country code and number, no spaces), e.g. +14155550123", phone)
	}
	wac, err := t.get(ctx)
	if err != nil {
		return err
	}
	if jid, ok := connected(wac); ok {
		return fmt.Errorf("%s is already connected as %s; to link another account run kubectl whatsapp logout %s first",
			wac.Name, jid, wac.Name)
	}
	// A code already in status belongs to the previous settings unless those were these very
	// settings; only a code published after the switch may be shown.
	stale := ""
	if wac.Status.Connection != nil {
		stale = wac.Status.Connection.PairingCode
	}
	p := wac.Spec.Pairing
	if p.Method == whatsappv1alpha1.PairingMethodPhoneCode && p.PhoneNumber == phone {
		stale = ""
	} else {
		if err := patchPairing(ctx, t, phone); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(out, "%s/%s now pairs by phone code with %s; waiting for the code...\n",
			t.Namespace, t.Name, phone)
	}

	shown := ""
	return t.poll(ctx, o, "a pairing code for "+t.Namespace+"/"+t.Name,
		func(wac *whatsappv1alpha1.WhatsAppConnection) (bool, error) {
			if jid, ok := connected(wac); ok {
				_, err := fmt.Fprintf(out, "Connected as %s.\n", jid)
				return true, err
			}
			if err := halted(wac); err != nil {
				return false, err
			}
			conn := wac.Status.Connection
			if conn == nil || conn.PairingCode == "" || conn.PairingCode == stale || conn.PairingCode == shown {
				return false, nil
			}
			shown = conn.PairingCode
			printPairingCode(out, conn)
			return !o.Watch, nil
		})
}

func patchPairing(ctx context.Context, t Target, phone string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"pairing": map[string]any{
		"method": whatsappv1alpha1.PairingMethodPhoneCode, "phoneNumber": phone}}})
	if err != nil {
		return err
	}
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.Namespace, wac.Name = t.Namespace, t.Name
	return t.Client.Patch(ctx, wac, client.RawPatch(types.MergePatchType, patch))
}

func printPairingCode(out io.Writer, conn *whatsappv1alpha1.ConnectionStatus) {
	_, _ = fmt.Fprintf(out, "Pairing code: %s\n", conn.PairingCode)
	_, _ = fmt.Fprintln(out, "On the phone: WhatsApp > Settings > Linked devices > Link a device > Link with phone number instead, then enter the code.")
	if conn.PairingCodeExpiresAt != nil {
		_, _ = fmt.Fprintf(out, "Expires at %s.\n", conn.PairingCodeExpiresAt.Local().Format(time.TimeOnly))
	}
}
