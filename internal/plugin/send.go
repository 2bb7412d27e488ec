package plugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// DefaultSenderServiceAccount is the ServiceAccount whose token the send and messages commands
// request when --service-account is not given.
const DefaultSenderServiceAccount = "whatsapp-sender"

// SessionDialer opens a way to port of a session pod for one command and returns the base URL
// to reach it and a function that closes it.
type SessionDialer func(ctx context.Context, namespace, pod string, port int) (baseURL string, stop func(), err error)

// SendAPI reaches a connection's send API as a ServiceAccount: the caller's credentials
// request a short-lived token of that ServiceAccount for the connection's audience
// (serviceaccounts/token, create), and the session reviews that token with the API server as
// it reviews any caller's. So RBAC decides twice: whether the person may act as the
// ServiceAccount, and whether the ServiceAccount may send through this connection; nothing
// here lets anyone do what those grants do not already allow with kubectl and curl.
type SendAPI struct {
	Target
	Clientset      kubernetes.Interface
	ServiceAccount string
	Dial           SessionDialer
}

// tokenLifetime is the shortest a TokenRequest may ask for: the token lives for one command.
const tokenLifetime = 10 * time.Minute

// call makes one request to the session's send API and decodes the answer into out.
func (a SendAPI) call(ctx context.Context, method, path string, body any, out any) error {
	wac, err := a.get(ctx)
	if err != nil {
		return err
	}
	pod := wac.Status.SessionPod
	if pod == "" {
		return fmt.Errorf("%s/%s has no session pod (phase %s): nothing can send or read messages now",
			a.Namespace, a.Name, orDash(string(wac.Status.Phase)))
	}
	sa := a.ServiceAccount
	if sa == "" {
		sa = DefaultSenderServiceAccount
	}
	seconds := int64(tokenLifetime.Seconds())
	tr, err := a.Clientset.CoreV1().ServiceAccounts(a.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{sendapi.Audience(a.Namespace, a.Name)}, ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token of ServiceAccount %s/%s (needs create on serviceaccounts/token for it; --service-account names another): %w",
			a.Namespace, sa, err)
	}
	base, stop, err := a.Dial(ctx, a.Namespace, pod, sessionenv.SendAPIPort)
	if err != nil {
		return err
	}
	defer stop()
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(raw)
	}
	httpClient := http.DefaultClient
	if wac.Spec.Send != nil && wac.Spec.Send.TLS != nil {
		// The session serves HTTPS (spec.send.tls). The tunnel already ends in the pod the API
		// server named (port-forward runs through the API server's and the kubelet's
		// authenticated connections into the pod's own network), so the certificate, issued for
		// the Service's name by a CA this machine need not know, is not what identifies it.
		base = strings.Replace(base, "http://", "https://", 1)
		httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, //nolint:gosec // see above: the port-forward identifies the pod
		}}}
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tr.Status.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("the send API of session pod %s: %w", pod, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
			Field string `json:"field"`
			Phase string `json:"phase"`
		}
		_ = json.Unmarshal(raw, &e)
		msg := e.Error
		if msg == "" {
			msg = resp.Status
		}
		switch {
		case e.Field != "":
			msg += " (" + e.Field + ")"
		case e.Phase != "":
			msg += " (phase " + e.Phase + ")"
		}
		if resp.StatusCode == http.StatusForbidden {
			verb := "get"
			if method == http.MethodPost {
				verb = "create"
			}
			msg += fmt.Sprintf("; ServiceAccount %s needs a Role granting %s on whatsappconnections/messages with resourceNames [%s]",
				sa, verb, a.Name)
		}
		return fmt.Errorf("%s/%s: %d %s", a.Namespace, a.Name, resp.StatusCode, msg)
	}
	return json.Unmarshal(raw, out)
}

// SendOptions are a message to send.
type SendOptions struct {
	To, Text, ID string
	// Wait answers once WhatsApp acknowledged the message (?wait=sent, at most 30 s).
	Wait bool
}

// Send queues one message and prints its id and state.
func Send(ctx context.Context, a SendAPI, o SendOptions, out io.Writer) error {
	path := "/v1/messages"
	if o.Wait {
		path += "?wait=sent"
	}
	var m sendapi.MessageStatus
	if err := a.call(ctx, http.MethodPost, path, map[string]string{"to": o.To, "text": o.Text, "id": o.ID}, &m); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "message %s to %s: %s (WhatsApp id %s)\n", m.ID, m.To, m.State, m.WhatsAppID)
	return err
}

// Messages prints one message's state with its times, or the latest limit messages.
func Messages(ctx context.Context, a SendAPI, id string, limit int, out io.Writer, now time.Time) error {
	var list sendapi.MessageList
	if id != "" {
		var m sendapi.MessageStatus
		if err := a.call(ctx, http.MethodGet, "/v1/messages/"+id, nil, &m); err != nil {
			return err
		}
		list.Messages = []sendapi.MessageStatus{m}
	} else if err := a.call(ctx, http.MethodGet, "/v1/messages?limit="+strconv.Itoa(limit), nil, &list); err != nil {
		return err
	}
	if len(list.Messages) == 0 {
		_, err := fmt.Fprintln(out, "No messages.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tTO\tSTATE\tATTEMPTS\tAGE\tSENT\tDELIVERED\tREAD\tREASON")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, m := range list.Messages {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.To, m.State, m.Attempts,
			duration.HumanDuration(now.Sub(m.CreatedAt)), at(m.SentAt), at(m.DeliveredAt), at(m.ReadAt), orDash(m.Reason))
	}
	return tw.Flush()
}

func (e *cmdEnv) sendAPI(name, serviceAccount string) (SendAPI, error) {
	t, err := e.target(name)
	if err != nil {
		return SendAPI{}, err
	}
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return SendAPI{}, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return SendAPI{}, err
	}
	return SendAPI{Target: t, Clientset: cs, ServiceAccount: serviceAccount, Dial: portForwardDialer(cfg)}, nil
}

const sendAPIAccess = "It acts as a ServiceAccount (--service-account, default " + DefaultSenderServiceAccount + "): it requests a 10-minute\n" +
	"token of it for the connection's audience (you need create on serviceaccounts/token for it) and reaches the\n" +
	"session pod by port-forward (create on pods/portforward); the session then checks that ServiceAccount's\n" +
	"grant on whatsappconnections/messages (create to send, get to read), as for any caller."

func sendCommand(e *cmdEnv) *cobra.Command {
	var o SendOptions
	var sa string
	cmd := &cobra.Command{
		Use:   "send NAME --to +E164 --text TEXT [--id ID] [--wait]",
		Short: "Send a text message through a connection's send API",
		Long:  "Queues a message in the connection's outbox (POST /v1/messages) and prints its state.\n\n" + sendAPIAccess,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := e.sendAPI(args[0], sa)
			if err != nil {
				return err
			}
			return Send(cmd.Context(), a, o, e.streams.Out)
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", `the recipient: +E.164 ("+15551234567") or a user JID`)
	cmd.Flags().StringVar(&o.Text, "text", "", "the message text")
	cmd.Flags().StringVar(&o.ID, "id", "", "your id of the message: sending the same id again is the same message (default: one is made up)")
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "wait (up to 30 s) until WhatsApp acknowledged the message")
	cmd.Flags().StringVar(&sa, "service-account", DefaultSenderServiceAccount, "the ServiceAccount to send as")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("text")
	return cmd
}

func messagesCommand(e *cmdEnv) *cobra.Command {
	var sa string
	var limit int
	cmd := &cobra.Command{
		Use:   "messages NAME [ID]",
		Short: "Show the state of a message sent through a connection, or of the latest ones",
		Long:  "Reads GET /v1/messages[/ID] of the connection's send API (no message text is shown).\n\n" + sendAPIAccess,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := e.sendAPI(args[0], sa)
			if err != nil {
				return err
			}
			id := ""
			if len(args) == 2 {
				id = args[1]
			}
			return Messages(cmd.Context(), a, id, limit, e.streams.Out, time.Now())
		},
	}
	cmd.Flags().StringVar(&sa, "service-account", DefaultSenderServiceAccount, "the ServiceAccount to read as")
	cmd.Flags().IntVar(&limit, "limit", sendapi.DefaultListLimit, "how many of the latest messages to show (at most 500)")
	return cmd
}
