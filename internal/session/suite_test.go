//go:build !unit

package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// The suite runs session runtimes in-process against a real kube-apiserver (envtest), each with
// the identity and Role the controller gives a session pod, and the real whatsmeow client
// against test/fakewa. Timings are the defaults scaled down by five.
//
// Every file of the suite (package session_test) says //go:build !unit: make test-unit builds
// with -tags unit, so the machine's unit tests (package session) link neither envtest nor the
// controller. A new file of the suite needs the same line.
const (
	scale         = 5
	leaseDuration = session.DefaultLeaseDuration / scale
	renewDeadline = session.DefaultRenewDeadline / scale
	retryPeriod   = session.DefaultRetryPeriod / scale
	standbyPoll   = 200 * time.Millisecond
	qrFirstTTL    = 2 * time.Second
	qrNextTTL     = time.Second
	// failoverTarget: a standby takes a dead leader's Lease once it has seen it unchanged for a
	// Lease duration on its own clock, plus at most one read interval; 2 s of slack, scaled.
	failoverTarget = (session.DefaultLeaseDuration + 2*time.Second) / scale
)

var (
	testEnv *envtest.Environment
	admin   client.Client
	cfg     *rest.Config
	scheme  = runtime.NewScheme()
	srv     *fakewa.Server
	ctx     context.Context
	cancel  context.CancelFunc
	nsSeq   atomic.Int64
)

func TestSession(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Session Suite")
}

var _ = BeforeSuite(func() {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))
	ctx, cancel = context.WithCancel(context.Background())
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	admin, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	srv, err = fakewa.Start(fakewa.Options{QRRefs: 3, FirstRefTTL: qrFirstTTL, NextRefTTL: qrNextTTL})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if srv != nil {
		_ = srv.Close()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// connection is one WhatsAppConnection with what the controller would have made for it: the
// Lease, and a ServiceAccount bound to the session Role.
type connection struct {
	name, namespace, lease string
	storePath              string
	user                   string
	// logs, when set, receives the session runtime's log output (debug level and up).
	logs io.Writer
}

func newConnection(mutate ...func(*whatsappv1alpha1.WhatsAppConnection)) *connection {
	ns := fmt.Sprintf("session-%d", nsSeq.Add(1))
	c := &connection{name: "wac", namespace: ns, lease: "wac-session",
		storePath: filepath.Join(GinkgoT().TempDir(), "device.db"),
		user:      "system:serviceaccount:" + ns + ":wac-session"}
	Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: ns}}
	wac.Spec.Store.SQLite = &whatsappv1alpha1.SQLiteStore{}
	for _, m := range mutate {
		m(wac)
	}
	Expect(admin.Create(ctx, wac)).To(Succeed())
	Expect(admin.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: c.lease, Namespace: ns}})).To(Succeed())

	// The rules of controllers/whatsappconnection_rbac.go (sessionRules).
	group := whatsappv1alpha1.GroupVersion.Group
	Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: c.lease, Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{group}, Resources: []string{"whatsappconnections"}, ResourceNames: []string{c.name}, Verbs: []string{"get", "watch"}},
		{APIGroups: []string{group}, Resources: []string{"whatsappconnections/status"}, ResourceNames: []string{c.name}, Verbs: []string{"patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{c.lease}, Verbs: []string{"get", "update"}},
	}})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: c.lease, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: c.lease},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: c.lease, Namespace: ns}},
	})).To(Succeed())
	return c
}

func (c *connection) get() *whatsappv1alpha1.WhatsAppConnection {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	Expect(admin.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.name}, wac)).To(Succeed())
	return wac
}

// status is status.connection, or an empty one.
func (c *connection) status() whatsappv1alpha1.ConnectionStatus {
	if conn := c.get().Status.Connection; conn != nil {
		return *conn
	}
	return whatsappv1alpha1.ConnectionStatus{}
}

func (c *connection) leaseHolder() string {
	l := &coordinationv1.Lease{}
	Expect(admin.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.lease}, l)).To(Succeed())
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func (c *connection) annotate(key, value string) {
	wac := c.get()
	patch := client.MergeFrom(wac.DeepCopy())
	if wac.Annotations == nil {
		wac.Annotations = map[string]string{}
	}
	wac.Annotations[key] = value
	Expect(admin.Patch(ctx, wac, patch)).To(Succeed())
}

// apiLink is a session's API connection: it counts Lease writes and status patches, and a test
// can cut it (every request fails, as when a node loses the API server).
type apiLink struct {
	cut          atomic.Bool
	leaseWrites  atomic.Int64
	statusWrites atomic.Int64

	mu   sync.Mutex
	sent []string // every request: "METHOD resource[/subresource]", "WATCH resource" for a watch
}

// requests are the requests sent so far, in order.
func (l *apiLink) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sent)
}

type linkTransport struct {
	link *apiLink
	next http.RoundTripper
}

func (t linkTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.link.cut.Load() {
		return nil, errors.New("test: API traffic cut")
	}
	// /apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]
	what := req.Method
	if req.URL.Query().Get("watch") == "true" {
		what = "WATCH"
	}
	if parts := strings.Split(req.URL.Path, "/"); len(parts) >= 7 {
		what += " " + parts[6]
		if len(parts) >= 9 {
			what += "/" + strings.Join(parts[8:], "/")
		}
	}
	t.link.mu.Lock()
	t.link.sent = append(t.link.sent, what)
	t.link.mu.Unlock()
	switch {
	case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/leases/"):
		t.link.leaseWrites.Add(1)
	case req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, "/status"):
		t.link.statusWrites.Add(1)
	}
	return t.next.RoundTrip(req)
}

// runningSession is one session runtime, as one session pod would run it.
type runningSession struct {
	rt       *session.Runtime
	pod, uid string
	link     *apiLink
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
}

func (s *runningSession) holder() *whatsappv1alpha1.Holder {
	return &whatsappv1alpha1.Holder{Pod: s.pod, UID: s.uid}
}

// identity is the session's Lease holder identity: its pod name and UID.
func (s *runningSession) identity() string { return sessionenv.LeaseIdentity(s.pod, s.uid) }

func (s *runningSession) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop is SIGTERM.
func (s *runningSession) stop() error {
	s.cancel()
	<-s.done
	return s.err
}

func (c *connection) start(pod string, store session.StoreConfig, tweaks ...func(*session.Config)) *runningSession {
	s := &runningSession{pod: pod, uid: fmt.Sprintf("%s-uid-%d", pod, nsSeq.Add(1)), link: &apiLink{}, done: make(chan struct{})}
	rc := rest.CopyConfig(cfg)
	rc.Impersonate = rest.ImpersonationConfig{UserName: c.user, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	rc.WrapTransport = func(next http.RoundTripper) http.RoundTripper { return linkTransport{s.link, next} }
	if store.Type == "" {
		store = session.StoreConfig{Type: "sqlite", SQLitePath: c.storePath}
	}
	log := logf.Log.WithName(pod)
	if c.logs != nil {
		log = zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, c.logs)), zap.UseDevMode(true)).WithName(pod)
	}
	sc := session.Config{
		ConnectionName: c.name, Namespace: c.namespace, PodName: pod, PodUID: s.uid, LeaseName: c.lease,
		REST: rc,
		OpenClient: whatsapp.Opener{Store: store, Configure: srv.ConfigureClient,
			Owner: whatsapp.StoreOwner{Namespace: c.namespace, Name: c.name}}.Open,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, StandbyPoll: standbyPoll,
		QRFirstTTL: qrFirstTTL, QRNextTTL: qrNextTTL, PairingBackoff: 200 * time.Millisecond,
	}
	for _, tweak := range tweaks {
		tweak(&sc)
	}
	rt, err := session.New(sc, log)
	Expect(err).NotTo(HaveOccurred())
	s.rt = rt
	runCtx, cancelRun := context.WithCancel(ctx)
	s.cancel = cancelRun
	go func() {
		defer GinkgoRecover()
		defer close(s.done)
		s.err = rt.Run(runCtx)
	}()
	DeferCleanup(func() { s.cancel(); <-s.done })
	return s
}

var _ = logr.Discard
