package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// StatusList prints one line per WhatsAppConnection in namespace (every namespace when
// namespace is empty, with a NAMESPACE column).
func StatusList(ctx context.Context, c client.Client, namespace string, out io.Writer) error {
	var list whatsappv1alpha1.WhatsAppConnectionList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		where := "namespace " + namespace
		if namespace == "" {
			where = "any namespace"
		}
		_, err := fmt.Fprintf(out, "No WhatsAppConnections found in %s.\n", where)
		return err
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "NAME\tPHASE\tACCOUNT\tREADY\tMESSAGE"
	if namespace == "" {
		header = "NAMESPACE\t" + header
	}
	_, _ = fmt.Fprintln(tw, header)
	for i := range list.Items {
		wac := &list.Items[i]
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", wac.Name, orDash(string(wac.Status.Phase)),
			orDash(wac.Status.Account), orDash(conditionStatus(wac, whatsappv1alpha1.ConditionReady)),
			oneLine(message(wac)))
		if namespace == "" {
			row = wac.Namespace + "\t" + row
		}
		_, _ = fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// StatusOne prints one WhatsAppConnection in detail: what a person needs to pair it or to
// understand why it is not connected, without the QR payload (see Qr).
func StatusOne(ctx context.Context, t Target, out io.Writer) error {
	wac, err := t.get(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	field := func(k, v string) {
		if v != "" {
			_, _ = fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	st := wac.Status
	field("Name", wac.Name)
	field("Namespace", wac.Namespace)
	field("Phase", orDash(string(st.Phase)))
	field("Account", st.Account)
	field("Pairing", strings.TrimSpace(string(wac.Spec.Pairing.Method)+" "+wac.Spec.Pairing.PhoneNumber))
	field("Suspended", map[bool]string{true: "yes"}[wac.Spec.Suspend])
	field("Session pod", st.SessionPod)
	if conn := st.Connection; conn != nil {
		field("Connection", string(conn.State))
		field("JID", conn.JID)
		field("Push name", conn.PushName)
		field("Platform", conn.Platform)
		field("Last connected", timeAgo(conn.LastConnectedAt))
		if conn.ReconnectAttempts > 0 {
			field("Reconnect attempts", fmt.Sprint(conn.ReconnectAttempts))
		}
		if conn.QRCode != "" {
			field("QR code", "waiting to be scanned (kubectl whatsapp qr "+wac.Name+")")
		}
		if conn.PairingCode != "" {
			field("Pairing code", conn.PairingCode)
		}
		field("Message", oneLine(conn.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Conditions) == 0 {
		return nil
	}
	_, _ = fmt.Fprintln(out, "Conditions:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range st.Conditions {
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason,
			timeAgo(&c.LastTransitionTime), oneLine(c.Message))
	}
	return tw.Flush()
}

func conditionStatus(wac *whatsappv1alpha1.WhatsAppConnection, typ string) string {
	for _, c := range wac.Status.Conditions {
		if c.Type == typ {
			return string(c.Status)
		}
	}
	return ""
}

func timeAgo(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return duration.HumanDuration(time.Since(t.Time)) + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line whatever a status message holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
