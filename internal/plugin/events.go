package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// ProxyGet fetches path from port of a pod through the API server's pod proxy
// (GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH): the caller needs get on pods/proxy
// in that namespace, so only those may look who could reach the pod anyway.
type ProxyGet func(ctx context.Context, namespace, pod, port, path string, params map[string]string) ([]byte, error)

// Events prints each sink's state and the session's latest events (no content; chats masked),
// read from the current session pod.
func Events(ctx context.Context, t Target, get ProxyGet, out io.Writer, limit int, now time.Time) error {
	wac, err := t.get(ctx)
	if err != nil {
		return err
	}
	pod := wac.Status.SessionPod
	if pod == "" {
		return fmt.Errorf("%s/%s has no session pod (phase %s); its events are kept in the device store until one runs",
			t.Namespace, t.Name, orDash(string(wac.Status.Phase)))
	}
	raw, err := get(ctx, t.Namespace, pod, strconv.Itoa(sessionenv.EventsViewPort), "events", map[string]string{"limit": strconv.Itoa(limit)})
	if err != nil {
		return fmt.Errorf("reading the events of session pod %s through the API server's pod proxy (needs get on pods/proxy): %w", pod, err)
	}
	var v events.View
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("session pod %s answered something that is not its events view: %w", pod, err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(v.Sinks) == 0 {
		_, _ = fmt.Fprintln(tw, "No sinks (spec.events.sinks): events are kept in the inbox for the retention window.")
	} else {
		_, _ = fmt.Fprintln(tw, "SINK\tSTATE\tDELIVERED\tRETRIES\tGIVEN-UP\tDEAD-LETTERED\tCURSOR")
		for _, s := range v.Sinks {
			state := "delivering"
			if s.Failing {
				state = "failing: " + s.Error
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Name, state, s.Delivered, s.Retries, s.GivenUp, s.DeadLettered, s.Cursor)
		}
	}
	_, _ = fmt.Fprintln(tw)
	if len(v.Events) == 0 {
		_, _ = fmt.Fprintln(tw, "No events in the inbox.")
		return tw.Flush()
	}
	_, _ = fmt.Fprintln(tw, "SEQ\tTYPE\tCHAT\tAGE\tPENDING\tID")
	for _, e := range v.Events {
		_, _ = fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Type, orDash(e.Chat),
			duration.HumanDuration(now.Sub(e.ReceivedAt)), orDash(strings.Join(e.Pending, ",")), e.ID)
	}
	return tw.Flush()
}

func eventsCommand(e *cmdEnv) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "events NAME",
		Short: "Show the event sinks' state and the latest events of a connection (no message content)",
		Long: "Reads GET /events of the session pod through the API server's pod proxy, which needs get on\n" +
			"pods/proxy in the namespace. Message content is never shown; chats show their last four digits.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.target(args[0])
			if err != nil {
				return err
			}
			cfg, err := e.flags.ToRESTConfig()
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			get := func(ctx context.Context, ns, pod, port, path string, params map[string]string) ([]byte, error) {
				return cs.CoreV1().Pods(ns).ProxyGet("http", pod, port, path, params).DoRaw(ctx)
			}
			return Events(cmd.Context(), t, get, e.streams.Out, limit, time.Now())
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many of the latest events to show (at most 500)")
	return cmd
}
