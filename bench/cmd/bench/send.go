package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// sendCounts are the sizes of the send figure: sequential ?wait=sent requests for the latency,
// and messages queued at once for the rate.
func sendCounts(quick bool) (latency, burst int) {
	if quick {
		return 50, 100
	}
	return 300, 500
}

// sendRecipients are the fake phones the throughput part sends to (several chats, as a
// connection's traffic is; each chat is sent in order).
var sendRecipients = []string{"15559990001", "15559990002", "15559990003"}

// benchSend measures the send API of one connection end to end: the real controller, session
// process, TokenReview and SubjectAccessReview, outbox and whatsmeow, to fakewa's phones. The
// connection's rate limit is lifted (spec.send at its maximum, 100 a second) so that the figure
// is what the pipeline can do; the default of 30 a minute is a policy, not a speed.
//
// Latency: one caller POSTs ?wait=sent, one message at a time, to one phone; the time from the
// request to the answer (WhatsApp acknowledged it). Rate: burst messages POSTed by 8 callers
// without waiting, to 3 phones; messages per second from the first POST until every one is
// sent (read back from GET /v1/messages).
func benchSend(ctx context.Context, o options, bins *binaries, res *results) error {
	res.noteLoad("send")
	s, err := startSessionStack(ctx, o, bins, nil)
	if err != nil {
		return err
	}
	defer s.stop()
	const ns, name, sa = "bench-send", "wac-0000", "bench-app"
	if err := s.cp.namespace(ctx, ns); err != nil {
		return err
	}
	wac := newConnection(ns, name)
	wac.Spec.Send = &whatsappv1alpha1.SendSpec{RatePerMinute: 6000, Burst: 1000}
	if err := s.cp.c.Create(ctx, wac); err != nil {
		return err
	}
	if _, err := s.pair(ctx, ns, []string{name}, 2*time.Minute); err != nil {
		return err
	}
	token, err := grantSend(ctx, s.cp.c, ns, name, sa)
	if err != nil {
		return err
	}
	api, err := sendAPIURL(ctx, s, ns, name)
	if err != nil {
		return err
	}
	for _, p := range sendRecipients {
		s.fw.Phone(p)
	}
	c := &sendClient{url: api, token: token}
	// The first request waits for the RoleBinding to be in effect and warms the review cache.
	if err := c.waitAllowed(ctx, time.Minute); err != nil {
		return err
	}

	nLatency, nBurst := sendCounts(o.Quick)
	var took []time.Duration
	for i := range nLatency {
		start := time.Now()
		m, err := c.post(ctx, fmt.Sprintf("latency-%04d", i), sendRecipients[0], true)
		if err != nil {
			return err
		}
		if m.State != "sent" && m.State != "delivered" && m.State != "read" {
			return fmt.Errorf("latency-%04d answered in state %s", i, m.State)
		}
		took = append(took, time.Since(start))
	}
	p50, p99 := percentile(took, 50), percentile(took, 99)

	start := time.Now()
	err = parallel(nBurst, 8, func(i int) error {
		_, err := c.post(ctx, fmt.Sprintf("burst-%04d", i), sendRecipients[i%len(sendRecipients)], false)
		return err
	})
	if err != nil {
		return err
	}
	queued := time.Since(start)
	for {
		n, err := c.sentAmong(ctx, nBurst, "burst-")
		if err != nil {
			return err
		}
		if n == nBurst {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("%d of %d messages sent after 5 minutes", n, nBurst)
		}
		if err := ctxtime.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	all := time.Since(start)
	rate := float64(nBurst) / all.Seconds()
	load := res.Load["send"]
	res.add(figure{
		Name: "send API to sent", Value: p99.Seconds() * 1000, Unit: "ms p99", Target: "recorded (issue 16 sets none)", Pass: true,
		Detail: fmt.Sprintf("%d sequential POST ?wait=sent to one phone: p50 %.1f ms, p99 %.1f ms (loadavg %s)",
			nLatency, ms(p50), ms(p99), load),
		Extra: map[string]any{"p50Ms": ms(p50), "p99Ms": ms(p99), "requests": nLatency},
	})
	res.add(figure{
		Name: "send rate, one connection", Value: rate, Unit: "msg/s", Target: "recorded (rate limit lifted to 100/s)", Pass: true,
		Detail: fmt.Sprintf("%d messages to %d phones by 8 callers: queued in %.2f s, all sent in %.2f s", nBurst, len(sendRecipients),
			queued.Seconds(), all.Seconds()),
		Extra: map[string]any{"messages": nBurst, "queuedSeconds": seconds(queued), "sentSeconds": seconds(all)},
	})
	return nil
}

// grantSend makes the ServiceAccount sa able to send through the connection (the README's
// Role) and returns a token of it for the connection's audience.
func grantSend(ctx context.Context, c client.Client, ns, name, sa string) (string, error) {
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send"}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections/messages"},
			ResourceNames: []string{name}, Verbs: []string{"create", "get"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "send"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return "", err
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{sendapi.Audience(ns, name)}}}
	if err := c.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}, tr); err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

var sendAPIFlag = regexp.MustCompile(`--` + sessionenv.FlagSendAPIBindAddress + `=(127\.0\.0\.1:[0-9]+)`)

// sendAPIURL is the send API of the connection's session process: the runner gave its port a
// loopback port of its own (no Service routing on one machine).
func sendAPIURL(ctx context.Context, s *sessionStack, ns, name string) (string, error) {
	pod := &corev1.Pod{}
	if err := s.cp.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-session"}, pod); err != nil {
		return "", err
	}
	pid, err := sessionPID(s.bins.session, string(pod.UID))
	if err != nil {
		return "", err
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return "", err
	}
	m := sendAPIFlag.FindSubmatch(cmdline)
	if m == nil {
		return "", fmt.Errorf("session process %d has no send API address", pid)
	}
	return "http://" + string(m[1]) + "/v1/messages", nil
}

type sendClient struct {
	url, token string
	once       sync.Once
	http       *http.Client
}

func (c *sendClient) do(ctx context.Context, method, url, body string, out any) error {
	c.once.Do(func() {
		c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}
	})
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

func (c *sendClient) post(ctx context.Context, id, to string, wait bool) (sendapi.MessageStatus, error) {
	url := c.url
	if wait {
		url += "?wait=sent"
	}
	body, _ := json.Marshal(map[string]string{"id": id, "to": "+" + to, "text": "bench " + id})
	var m sendapi.MessageStatus
	return m, c.do(ctx, http.MethodPost, url, string(body), &m)
}

func (c *sendClient) waitAllowed(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var list sendapi.MessageList
		err := c.do(ctx, http.MethodGet, c.url, "", &list)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if err := ctxtime.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// sentAmong counts the latest n messages whose id starts with prefix and that WhatsApp
// acknowledged.
func (c *sendClient) sentAmong(ctx context.Context, n int, prefix string) (int, error) {
	var list sendapi.MessageList
	if err := c.do(ctx, http.MethodGet, c.url+"?limit="+strconv.Itoa(n), "", &list); err != nil {
		return 0, err
	}
	k := 0
	for _, m := range list.Messages {
		if strings.HasPrefix(m.ID, prefix) && (m.State == "sent" || m.State == "delivered" || m.State == "read") {
			k++
		}
	}
	return k, nil
}
