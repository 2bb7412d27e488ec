//go:build !unit

package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// token asks the API server for a token of ServiceAccount sa in ns for audience.
func token(ns, sa, audience string) string {
	GinkgoHelper()
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
	Expect(admin.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}, tr)).To(Succeed())
	return tr.Status.Token
}

type apiReply struct {
	status int
	body   map[string]any
}

func call(method, url, bearer, body string) apiReply {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	out := apiReply{status: resp.StatusCode}
	Expect(json.Unmarshal(raw, &out.body)).To(Succeed(), "%s", raw)
	return out
}

var _ = Describe("send API of a session against the API server and fakewa", func() {
	It("sends for a ServiceAccount granted create on its whatsappconnections/messages, in order and once per phone, and refuses everyone else", func() {
		c := newConnection()
		ns := c.namespace

		By("granting the session system:auth-delegator, as the controller does")
		grantAuthDelegation(ctx, ns, c.name, c.lease)

		By("running the session with its send API, as cmd/session does")
		slot := &outbox.Slot{}
		s := c.start("wac-session-a", session.StoreConfig{}, func(sc *session.Config) {
			sc.OpenClient = whatsapp.Opener{Store: session.StoreConfig{Type: "sqlite", SQLitePath: c.storePath},
				Configure: srv.ConfigureClient, Owner: whatsapp.StoreOwner{Namespace: ns, Name: c.name},
				// Far above the default (one message per 2 s), so that the test is quick.
				Send: whatsapp.SendOptions{Slot: slot, Rate: rate.Limit(50), Burst: 10}}.Open
		})
		pair(c, s)
		asSession := rest.CopyConfig(cfg)
		asSession.Impersonate = rest.ImpersonationConfig{UserName: c.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
		reviewer, err := sendapi.NewReviewer(asSession)
		Expect(err).NotTo(HaveOccurred())
		h := &sendapi.Handler{Outbox: slot, State: s.rt.State, Log: logf.Log.WithName("send-api"),
			Auth: &sendapi.Authorizer{Reviewer: reviewer, Namespace: ns, Name: c.name}}
		addr, err := sendapi.Serve(ctx, "127.0.0.1:0", h.Routes(), "", "", logf.Log)
		Expect(err).NotTo(HaveOccurred())
		api := "http://" + addr.String() + "/v1/messages"

		By("an application's ServiceAccount with a Role naming this connection")
		appMaySend(ctx, ns, c.name)
		audience := sendapi.Audience(ns, c.name)
		app := token(ns, "app", audience)

		By("sending 10 messages to each of 3 phones")
		const perPhone = 10
		phones := []*fakewa.Phone{srv.Phone(nextPhone()), srv.Phone(nextPhone()), srv.Phone(nextPhone())}
		var ids []string
		for i := range perPhone {
			for _, p := range phones {
				id := fmt.Sprintf("%s-%02d", p.Number(), i)
				body, _ := json.Marshal(map[string]string{"to": "+" + p.Number(), "text": "message " + id, "id": id})
				var r apiReply
				Eventually(func() int { r = call("POST", api, app, string(body)); return r.status }, timeout, poll).
					Should(Equal(http.StatusAccepted), "the first send waits for the RoleBinding to be effective: %v", r.body)
				Expect(r.body).To(HaveKeyWithValue("state", "queued"))
				ids = append(ids, id)
			}
		}
		for _, p := range phones {
			got, err := p.WaitReceived(ctx, func(r []fakewa.ReceivedMessage) bool { return len(r) >= perPhone })
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(HaveLen(perPhone), "nothing twice")
			for i, m := range got {
				Expect(m.Text).To(Equal(fmt.Sprintf("message %s-%02d", p.Number(), i)), "in order")
				Expect(m.Copies).To(Equal(1))
			}
		}
		for _, id := range ids {
			Eventually(func() any { return call("GET", api+"/"+id, app, "").body["state"] }, timeout, poll).Should(Equal("delivered"), id)
		}
		phones[0].MarkRead()
		Eventually(func() any { return call("GET", api+"/"+ids[0], app, "").body["state"] }, timeout, poll).Should(Equal("read"))

		By("refusing everyone else, without telling whether a message exists")
		other := token(ns, "other", audience)
		foreign := token(ns, "app", sendapi.Audience(ns, "another-connection"))
		apiServerAudience := token(ns, "app", "https://kubernetes.default.svc")
		send := `{"to":"+15550000001","text":"hi"}`
		for _, r := range []struct {
			what, method, url, bearer, body string
			status                          int
		}{
			{"no token", "POST", api, "", send, http.StatusUnauthorized},
			{"a token for another connection", "POST", api, foreign, send, http.StatusUnauthorized},
			{"a token for the API server", "POST", api, apiServerAudience, send, http.StatusUnauthorized},
			{"not a token", "POST", api, "abc.def.ghi", send, http.StatusUnauthorized},
			{"a ServiceAccount without the Role", "POST", api, other, send, http.StatusForbidden},
			{"no token, existing id", "GET", api + "/" + ids[0], "", "", http.StatusUnauthorized},
			{"without the Role, existing id", "GET", api + "/" + ids[0], other, "", http.StatusForbidden},
			{"without the Role, unknown id", "GET", api + "/nope", other, "", http.StatusForbidden},
			{"wrong audience, unknown id", "GET", api + "/nope", foreign, "", http.StatusUnauthorized},
			{"with the Role, unknown id", "GET", api + "/nope", app, "", http.StatusNotFound},
		} {
			Expect(call(r.method, r.url, r.bearer, r.body).status).To(Equal(r.status), r.what)
		}
		Consistently(func() int { return len(phones[0].Received()) }, time.Second, poll).Should(Equal(perPhone))
	})

	It("refuses every caller with a token until the session may review tokens (the controller binds that after it starts the pod)", func() {
		c := newConnection()
		ns := c.namespace
		asSession := rest.CopyConfig(cfg)
		asSession.Impersonate = rest.ImpersonationConfig{UserName: c.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
		reviewer, err := sendapi.NewReviewer(asSession)
		Expect(err).NotTo(HaveOccurred())
		h := &sendapi.Handler{Outbox: &outbox.Slot{}, State: func() whatsappv1alpha1.SessionState { return whatsappv1alpha1.SessionPairing },
			Log: logf.Log.WithName("send-api"), Auth: &sendapi.Authorizer{Reviewer: reviewer, Namespace: ns, Name: c.name}}
		addr, err := sendapi.Serve(ctx, "127.0.0.1:0", h.Routes(), "", "", logf.Log)
		Expect(err).NotTo(HaveOccurred())
		api := "http://" + addr.String() + "/v1/messages"

		appMaySend(ctx, ns, c.name)
		audience := sendapi.Audience(ns, c.name)
		app, other := token(ns, "app", audience), token(ns, "other", audience)
		send := `{"to":"+15550000001","text":"hi"}`

		By("without system:auth-delegator: 503 for everyone, the allowed caller too, and nothing queued")
		for _, r := range []struct {
			what, method, url, bearer, body string
		}{
			{"with the Role, send", "POST", api, app, send},
			{"with the Role, read", "GET", api + "/nope", app, ""},
			{"without the Role, send", "POST", api, other, send},
			{"without the Role, list", "GET", api, other, ""},
		} {
			Consistently(func() int { return call(r.method, r.url, r.bearer, r.body).status }, time.Second, 200*time.Millisecond).
				Should(Equal(http.StatusServiceUnavailable), r.what)
		}
		Expect(call("POST", api, "", send).status).To(Equal(http.StatusUnauthorized), "no token: refused without asking")

		By("once the binding exists, the reviews decide")
		grantAuthDelegation(ctx, ns, c.name, c.lease)
		Eventually(func() int { return call("GET", api+"/nope", app, "").status }, timeout, poll).
			Should(Equal(http.StatusConflict), "allowed, and told that no store is open here")
		Expect(call("POST", api, other, send).status).To(Equal(http.StatusForbidden))
	})
})

// appMaySend makes the ServiceAccounts "app" and "other" in ns and lets "app" alone send through
// the connection name, with the Role the README shows.
func appMaySend(ctx context.Context, ns, name string) {
	GinkgoHelper()
	for _, sa := range []string{"app", "other"} {
		Expect(admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})).To(Succeed())
	}
	Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send-through-wac"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group},
			Resources: []string{"whatsappconnections/messages"}, ResourceNames: []string{name}, Verbs: []string{"create", "get"}}}})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-sends"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "send-through-wac"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}}})).To(Succeed())
}

// grantAuthDelegation binds system:auth-delegator to the session's ServiceAccount under the name
// the controller gives that binding, until the spec ends.
func grantAuthDelegation(ctx context.Context, ns, name, serviceAccount string) {
	GinkgoHelper()
	delegation := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":" + name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: ns}}}
	Expect(admin.Create(ctx, delegation)).To(Succeed())
	DeferCleanup(func(ctx context.Context) { _ = admin.Delete(ctx, delegation) })
}
