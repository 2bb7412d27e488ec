//go:build cluster

package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const operatorNS = "whatsapp-operator-system"

// connection is one WhatsAppConnection under test and what the suite learned about it.
type connection struct {
	ns, name, phone string
	sessionImage    string // spec.session.image; empty: the operator's default
	jid             string
}

func (c *connection) ref() string { return "wac/" + c.name }

func (c *connection) get(path string) (string, error) {
	return kubectl("get", "-n", c.ns, c.ref(), "-o", "jsonpath="+path)
}

// apply creates the workload namespace, restricted by Pod Security admission as a careful
// user's is, and the connection in it.
func (c *connection) apply() {
	mustKubectl("create", "namespace", c.ns)
	mustKubectl("label", "namespace", c.ns,
		"pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest")
	session := ""
	if c.sessionImage != "" {
		session = fmt.Sprintf("  session: {image: %q, imagePullPolicy: Never}\n", c.sessionImage)
	}
	_, err := kubectlIn(fmt.Sprintf(`apiVersion: whatsapp.waoperator.io/v1alpha1
kind: WhatsAppConnection
metadata: {name: %s, namespace: %s}
spec:
  deviceName: Support desk
  pairing: {method: QR}
  store: {sqlite: {size: 1Gi}}
%s`, c.name, c.ns, session), "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
}

// pairs waits for the QR in kubectl describe, checks that it decodes to the payload in status,
// lets the fake phone scan it and waits for Connected.
func (c *connection) pairs() {
	By("kubectl describe shows a QR code that decodes to status.connection.qrCode")
	Eventually(func(g Gomega) {
		out, err := kubectl("describe", "-n", c.ns, c.ref())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`Phase:\s+Pairing`))
		decoded, err := decodeDescribedQR(out, GinkgoT().TempDir())
		g.Expect(err).NotTo(HaveOccurred())
		payload, err := c.get("{.status.connection.qrCode}")
		g.Expect(err).NotTo(HaveOccurred())
		// The code may rotate between describe and get; the next poll reads both again.
		g.Expect(decoded).To(Equal(payload))
	}).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())

	By("the fake phone scans it")
	Eventually(func(g Gomega) {
		qr, err := c.get("{.status.connection.qrCode}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(qr).NotTo(BeEmpty())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		jid, err := e.fake.Phone(c.phone).ScanQR(ctx, qr)
		g.Expect(err).NotTo(HaveOccurred())
		c.jid = jid.String()
	}).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())

	c.connected()
}

func (c *connection) connected() {
	Eventually(func(g Gomega) {
		out, err := kubectl("get", "-n", c.ns, c.ref())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(c.name + `\s+Connected\s+` + regexp.QuoteMeta(c.jid)))
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
	Eventually(c.device().Stats).WithTimeout(30 * time.Second).Should(HaveField("Live", 1))
}

func (c *connection) device() *fakewa.Device {
	jid, err := types.ParseJID(c.jid)
	Expect(err).NotTo(HaveOccurred())
	return e.fake.Device(jid)
}

func (c *connection) podUID() string {
	uid, err := kubectl("get", "pod", "-n", c.ns, c.name+"-session", "-o", "jsonpath={.metadata.uid}")
	Expect(err).NotTo(HaveOccurred())
	return uid
}

// sessionContainers lists the ids of the connection's session containers on the node's
// containerd (those of pods the API server no longer has included).
func (c *connection) sessionContainers() []string {
	// One filter, its terms joined by commas: containerd ORs separate filters, and the pod's
	// sandbox (pause) container carries the pod's labels too.
	out, err := ctr("containers", "ls", "labels.\"io.kubernetes.pod.namespace\"=="+c.ns+
		",labels.\"io.kubernetes.pod.name\"=="+c.name+"-session"+
		",labels.\"io.kubernetes.container.name\"==session")
	Expect(err).NotTo(HaveOccurred(), out)
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// runningSessionTasks lists those containers whose task containerd reports RUNNING.
func (c *connection) runningSessionTasks() []string {
	ids := map[string]bool{}
	for _, id := range c.sessionContainers() {
		ids[id] = true
	}
	out, err := ctr("tasks", "ls")
	Expect(err).NotTo(HaveOccurred(), out)
	var running []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) == 3 && ids[f[0]] && f[2] == "RUNNING" {
			running = append(running, f[0])
		}
	}
	return running
}

// killSessionContainer SIGKILLs the session container's task through the node's containerd,
// as an OOM kill or a crash would end it.
func (c *connection) killSessionContainer() {
	ids := c.sessionContainers()
	Expect(ids).NotTo(BeEmpty(), "the session container on the node")
	killed := 0
	for _, id := range ids {
		if out, err := ctr("tasks", "kill", "-s", "SIGKILL", id); err == nil {
			killed++
		} else {
			GinkgoWriter.Printf("ctr tasks kill %s: %s\n", id, out)
		}
	}
	Expect(killed).To(BeNumerically(">", 0), "a running session task was killed")
}

// cleanedUp checks that nothing the controller created for the connection is left.
func (c *connection) cleanedUp() {
	Eventually(func(g Gomega) {
		_, err := kubectl("get", "-n", c.ns, c.ref())
		g.Expect(err).To(MatchError(ContainSubstring("NotFound")))
		out, err := kubectl("get", "-n", c.ns, "pods,pvc,leases,serviceaccounts,roles,rolebindings",
			"-l", whatsappv1alpha1.ConnectionLabel+"="+c.name, "-o", "name")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(strings.TrimSpace(out)).To(BeEmpty())
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
	// logoutOnDelete (the default): the device is unlinked from the phone, not just dropped.
	Expect(c.device().Stats()).To(And(HaveField("Live", 0), HaveField("Removed", true)))
}

// scrapeMetrics reads the manager's HTTPS /metrics through its Service (kube-proxy's rules),
// with a token of a ServiceAccount bound to the metrics-reader ClusterRole, until the body
// holds want (every replica serves metrics; the controllers' series appear on the one that won
// the leader election, once it started them).
func scrapeMetrics(ns, readerRole, want string) {
	mustKubectl("create", "serviceaccount", "-n", ns, "e2e-scraper")
	mustKubectl("create", "clusterrolebinding", "e2e-scraper", "--clusterrole="+readerRole,
		"--serviceaccount="+ns+":e2e-scraper")
	DeferCleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", "e2e-scraper", "--ignore-not-found") })
	token := strings.TrimSpace(mustKubectl("create", "token", "-n", ns, "e2e-scraper"))
	svc := strings.TrimSpace(mustKubectl("get", "svc", "-n", ns, "-o",
		`jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.clusterIP}{" "}{.spec.ports[0].port}{"\n"}{end}`))
	var url string
	for _, line := range strings.Split(svc, "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.Contains(f[0], "metrics") {
			url = fmt.Sprintf("https://%s:%s/metrics", f[1], f[2])
		}
	}
	Expect(url).NotTo(BeEmpty(), "a metrics Service in %s: %s", ns, svc)
	// The manager's serving certificate is self-signed (controller-runtime's default).
	// A new connection for each try: kube-proxy picks a replica per connection, and only the
	// leader's controllers have series (a kept-alive connection to the other never sees them).
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test scrape of a self-signed endpoint
		DisableKeepAlives: true,
	}}
	Eventually(func(g Gomega) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(b))
		g.Expect(string(b)).To(ContainSubstring(want))
	}).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}
