package plugin_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	_ "modernc.org/sqlite"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// acknowledging stands in for WhatsApp: every send is acknowledged at once (the session and
// e2e suites send to fakewa's phones; here the subject is the plugin and the access checks).
type acknowledging struct{}

func (acknowledging) Send(context.Context, string, string, string) (time.Time, error) {
	return time.Now(), nil
}

// startSendAPI runs a session's send API for ns/name over a real outbox, reviewing callers with
// the API server as the session's ServiceAccount (bound to system:auth-delegator, as the
// controller binds it).
func startSendAPI(ns, name string, overTLS bool) string {
	GinkgoHelper()
	sa := name + "-session"
	Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})).To(Succeed())
	delegation := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":" + name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}}
	Expect(k8sClient.Create(ctx, delegation)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), delegation) })

	db, err := sql.Open("sqlite", "file:"+filepath.Join(GinkgoT().TempDir(), "d.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(db.Close)
	store, err := outbox.Open(ctx, db, "sqlite")
	Expect(err).NotTo(HaveOccurred())
	box := outbox.New(store, acknowledging{})
	box.Worker.Rate, box.Worker.Log = rate.Inf, logr.Discard()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); box.Worker.Run(runCtx) }()
	DeferCleanup(func() { stop(); <-done })
	slot := &outbox.Slot{}
	slot.Set(box)

	asSession := rest.CopyConfig(testEnv.Config)
	asSession.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	reviewer, err := sendapi.NewReviewer(asSession)
	Expect(err).NotTo(HaveOccurred())
	h := &sendapi.Handler{Outbox: slot, Log: logr.Discard(),
		State: func() whatsappv1alpha1.SessionState { return whatsappv1alpha1.SessionConnected },
		Auth:  &sendapi.Authorizer{Reviewer: reviewer, Namespace: ns, Name: name}}
	srv := httptest.NewUnstartedServer(h.Routes())
	if overTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	DeferCleanup(srv.Close)
	// What the port-forward gives: a plain loopback address, whatever the session speaks.
	return "http://" + srv.Listener.Addr().String()
}

// person is a kubectl user with the given rules in ns.
func person(ns, user string, rules ...rbacv1.PolicyRule) (client.Client, kubernetes.Interface) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules})).To(Succeed())
	Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: user}}})).To(Succeed())
	u, err := testEnv.AddUser(envtest.User{Name: user}, nil)
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(whatsappv1alpha1.AddToScheme(scheme)).To(Succeed())
	c, err := client.New(u.Config(), client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(u.Config())
	Expect(err).NotTo(HaveOccurred())
	return c, cs
}

var _ = Describe("send and messages", func() {
	It("speaks HTTPS through the port-forward to a session with spec.send.tls", func() {
		ns := newNamespace()
		newConnection(ns, "secure", whatsappv1alpha1.PairingSpec{})
		wac := &whatsappv1alpha1.WhatsAppConnection{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secure"}, wac)).To(Succeed())
		wac.Spec.Send = &whatsappv1alpha1.SendSpec{TLS: &whatsappv1alpha1.SendTLS{SecretName: "secure-api-tls"}}
		Expect(k8sClient.Update(ctx, wac)).To(Succeed())
		applyStatus(plugin.Target{Namespace: ns, Name: "secure"}, controllerManager,
			map[string]any{"phase": string(whatsappv1alpha1.PhaseConnected), "sessionPod": "secure-session-1"})
		base := startSendAPI(ns, "secure", true)
		Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: plugin.DefaultSenderServiceAccount}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group},
				Resources: []string{"whatsappconnections/messages"}, ResourceNames: []string{"secure"}, Verbs: []string{"create"}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "send"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: plugin.DefaultSenderServiceAccount, Namespace: ns}}})).To(Succeed())
		c, cs := person(ns, "trent", rbacv1.PolicyRule{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, ResourceNames: []string{plugin.DefaultSenderServiceAccount}, Verbs: []string{"create"}})
		api := plugin.SendAPI{Target: plugin.Target{Client: c, Namespace: ns, Name: "secure"}, Clientset: cs,
			Dial: func(context.Context, string, string, int) (string, func(), error) { return base, func() {}, nil }}
		var out bytes.Buffer
		Eventually(func() error {
			out.Reset()
			return plugin.Send(ctx, api, plugin.SendOptions{To: "+15551234567", Text: "hi", ID: "tls-1"}, &out)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(out.String()).To(HavePrefix("message tls-1 to 15551234567@s.whatsapp.net: "))
	})

	It("send as a ServiceAccount the person may get tokens of; the session's RBAC check decides what it may do", func() {
		ns := newNamespace()
		newConnection(ns, "shop", whatsappv1alpha1.PairingSpec{})
		applyStatus(plugin.Target{Namespace: ns, Name: "shop"}, controllerManager,
			map[string]any{"phase": string(whatsappv1alpha1.PhaseConnected), "sessionPod": "shop-session-7f"})
		base := startSendAPI(ns, "shop", false)
		var dialed []string
		dial := func(_ context.Context, namespace, pod string, port int) (string, func(), error) {
			dialed = append(dialed, namespace+"/"+pod)
			Expect(port).To(Equal(sessionenv.SendAPIPort))
			return base, func() {}, nil
		}

		By("the sender ServiceAccount with the Role the README shows, and one without it")
		for _, sa := range []string{plugin.DefaultSenderServiceAccount, "bystander"} {
			Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})).To(Succeed())
		}
		Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "send-through-shop"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group},
				Resources: []string{"whatsappconnections/messages"}, ResourceNames: []string{"shop"}, Verbs: []string{"create", "get"}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sender-sends"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "send-through-shop"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: plugin.DefaultSenderServiceAccount, Namespace: ns}}})).To(Succeed())

		By("a person who may request tokens of both ServiceAccounts, and one who may not")
		readWAC := rbacv1.PolicyRule{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections"}, Verbs: []string{"get"}}
		aliceClient, aliceCS := person(ns, "alice", readWAC, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"},
			ResourceNames: []string{plugin.DefaultSenderServiceAccount, "bystander"}, Verbs: []string{"create"}})
		malloryClient, malloryCS := person(ns, "mallory", readWAC)
		alice := plugin.SendAPI{Target: plugin.Target{Client: aliceClient, Namespace: ns, Name: "shop"}, Clientset: aliceCS, Dial: dial}

		var out bytes.Buffer
		Eventually(func() error {
			out.Reset()
			return plugin.Send(ctx, alice, plugin.SendOptions{To: "+15551234567", Text: "your order shipped", ID: "order-1", Wait: true}, &out)
		}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "once the RoleBindings are in effect")
		Expect(out.String()).To(MatchRegexp(`^message order-1 to 15551234567@s\.whatsapp\.net: sent \(WhatsApp id 3EB0[0-9A-F]{16}\)\n$`))
		Expect(dialed).To(ContainElement(ns + "/shop-session-7f"))
		first := out.String()

		out.Reset()
		Expect(plugin.Send(ctx, alice, plugin.SendOptions{To: "15551234567@s.whatsapp.net", Text: "your order shipped", ID: "order-1"}, &out)).To(Succeed())
		Expect(out.String()).To(Equal(first), "the same id is the same message")
		out.Reset()
		Expect(plugin.Send(ctx, alice, plugin.SendOptions{To: "+15557654321", Text: "second"}, &out)).To(Succeed())

		out.Reset()
		Expect(plugin.Messages(ctx, alice, "order-1", 0, &out, time.Now())).To(Succeed())
		Expect(out.String()).To(MatchRegexp(`(?m)^ID\s+TO\s+STATE\s+ATTEMPTS\s+AGE\s+SENT`))
		Expect(out.String()).To(MatchRegexp(`(?m)^order-1\s+15551234567@s\.whatsapp\.net\s+sent\s+1\s+`))
		Expect(out.String()).NotTo(ContainSubstring("your order shipped"), "no message text")
		out.Reset()
		Expect(plugin.Messages(ctx, alice, "", 20, &out, time.Now())).To(Succeed())
		Expect(out.String()).To(ContainSubstring("15557654321@s.whatsapp.net"))
		Expect(out.String()).To(MatchRegexp(`(?s)15557654321.*order-1`), "newest first")

		By("refusing what RBAC does not allow, saying which grant is missing")
		bystander := alice
		bystander.ServiceAccount = "bystander"
		err := plugin.Send(ctx, bystander, plugin.SendOptions{To: "+15551234567", Text: "hi"}, &out)
		Expect(err).To(MatchError(And(ContainSubstring("403"), ContainSubstring("create on whatsappconnections/messages with resourceNames [shop]"))))
		err = plugin.Messages(ctx, bystander, "order-1", 0, &out, time.Now())
		Expect(err).To(MatchError(ContainSubstring("403")), "without telling whether order-1 exists")

		mallory := plugin.SendAPI{Target: plugin.Target{Client: malloryClient, Namespace: ns, Name: "shop"}, Clientset: malloryCS, Dial: dial}
		dialed = nil
		err = plugin.Send(ctx, mallory, plugin.SendOptions{To: "+15551234567", Text: "hi"}, &out)
		Expect(err).To(MatchError(And(ContainSubstring("serviceaccounts/token"), ContainSubstring("forbidden"))))
		Expect(dialed).To(BeEmpty(), "nothing reached the session")

		By("a connection without a session pod")
		newConnection(ns, "idle", whatsappv1alpha1.PairingSpec{})
		idle := alice
		idle.Name = "idle"
		Expect(plugin.Send(ctx, idle, plugin.SendOptions{To: "+15551234567", Text: "hi"}, &out)).To(MatchError(ContainSubstring("has no session pod")))
	})
})
