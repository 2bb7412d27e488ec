//go:build !unit

package session_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/testutil"
)

// A Secret's value never reaches a person: whatever the Secret holds (a token where the DSN
// belongs, a DSN whose user, password and database are secret), the status, the events, the
// controller's and the session's log lines and both metrics endpoints show a class and a fixed
// text. The test plays the kubelet: it resolves the session pod's env from the Secret, as a
// kubelet does, and runs the session with it.
var _ = Describe("a Secret's value in no status, event, log line or metric", func() {
	DescribeTable("the store's Secret holds a marker",
		func(value func(marker string) string, class string) {
			const marker = "mArKeR5e3c7e7"
			ns := "secret-" + fmt.Sprint(nsSeq.Add(1))
			Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			controllerLogs, sessionLogs := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
			startController(ns, zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, controllerLogs)), zap.UseDevMode(true)))

			Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pg"},
				StringData: map[string]string{"dsn": value(marker)}})).To(Succeed())
			wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
			wac.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "pg", Key: "dsn"}}
			Expect(admin.Create(ctx, wac)).To(Succeed())
			pod := &corev1.Pod{}
			Eventually(func() error { return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, pod) }, timeout, poll).Should(Succeed())

			By("playing the kubelet: the DSN comes from the pod's env secretKeyRef")
			dsn := envFromSecret(pod, "WA_POSTGRES_DSN")
			Expect(dsn).To(ContainSubstring(marker), "the test injects what the Secret holds")

			metricsAddr := freeAddr()
			c := &connection{name: "shop", namespace: ns, lease: "shop-session", user: "system:serviceaccount:" + ns + ":shop-session", logs: sessionLogs}
			c.start(pod.Name, session.StoreConfig{Type: "postgres", PostgresDSN: dsn}, func(sc *session.Config) {
				sc.PodUID = string(pod.UID)
				sc.MetricsAddr = metricsAddr
				sc.StoreRetryBase, sc.StoreRetryMax = 200*time.Millisecond, 400*time.Millisecond
			})

			By("StoreError with its class, Degraded, and a Warning event; the store retried")
			Eventually(func(g Gomega) {
				w := c.get()
				g.Expect(w.Status.Connection).NotTo(BeNil())
				g.Expect(w.Status.Connection.State).To(Equal(whatsappv1alpha1.SessionStoreError))
				g.Expect(w.Status.Connection.FailureCode).To(Equal(class))
				g.Expect(w.Status.Phase).To(Equal(whatsappv1alpha1.PhaseDegraded))
			}, timeout, poll).Should(Succeed())
			Eventually(func() string { return scrape(metricsAddr) }, timeout, poll).Should(MatchRegexp(`whatsapp_session_store_open_failures_total [2-9]`))
			Eventually(func() string { return eventsOf(ns) }, timeout, poll).Should(ContainSubstring(whatsappv1alpha1.ReasonStoreError))

			By("the marker is nowhere a person looks")
			raw, err := json.Marshal(c.get())
			Expect(err).NotTo(HaveOccurred())
			Expect(string(raw)).NotTo(ContainSubstring(marker), "status")
			Expect(eventsOf(ns)).NotTo(ContainSubstring(marker), "events")
			Expect(sessionLogs.String()).To(ContainSubstring("cannot open the device store"), "the session's log was captured")
			Expect(sessionLogs.String()).NotTo(ContainSubstring(marker), "session log")
			Expect(controllerLogs.String()).NotTo(BeEmpty(), "the controller's log was captured")
			Expect(controllerLogs.String()).NotTo(ContainSubstring(marker), "controller log")
			Expect(scrape(metricsAddr)).NotTo(ContainSubstring(marker), "session metrics")
			Expect(gatherControllerMetrics()).NotTo(ContainSubstring(marker), "controller metrics")
		},
		Entry("a token where the DSN belongs (the driver's parse error quotes it)",
			func(m string) string { return "ghp_" + m + "Zq9" }, session.StoreDSNInvalid),
		Entry("a DSN whose user, password and database are the marker",
			func(m string) string {
				return "postgres://" + m + "user:" + m + "pw@127.0.0.1:1/" + m + "db?sslmode=disable&connect_timeout=2"
			}, session.StoreUnreachable),
	)
})

// envFromSecret resolves one env var of the session container from its Secret, as a kubelet does.
func envFromSecret(pod *corev1.Pod, name string) string {
	GinkgoHelper()
	for _, ev := range pod.Spec.Containers[0].Env {
		if ev.Name != name || ev.ValueFrom == nil || ev.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := ev.ValueFrom.SecretKeyRef
		s := &corev1.Secret{}
		Expect(admin.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, s)).To(Succeed())
		return string(s.Data[ref.Key])
	}
	Fail("no secretKeyRef env " + name)
	return ""
}

func scrape(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// eventsOf is every event of the namespace, both APIs, as JSON.
func eventsOf(ns string) string {
	GinkgoHelper()
	var b strings.Builder
	core := &corev1.EventList{}
	Expect(admin.List(ctx, core, client.InNamespace(ns))).To(Succeed())
	modern := &eventsv1.EventList{}
	Expect(admin.List(ctx, modern, client.InNamespace(ns))).To(Succeed())
	for _, l := range []any{core, modern} {
		raw, err := json.Marshal(l)
		Expect(err).NotTo(HaveOccurred())
		b.Write(raw)
	}
	return b.String()
}

// gatherControllerMetrics renders controller-runtime's registry (the reconciler's metrics).
func gatherControllerMetrics() string {
	GinkgoHelper()
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var b bytes.Buffer
	for _, f := range families {
		_, err := expfmt.MetricFamilyToText(&b, f)
		Expect(err).NotTo(HaveOccurred())
	}
	return b.String()
}
