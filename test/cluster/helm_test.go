//go:build cluster

package cluster

import (
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The life of one connection on a real node, with the operator installed by its Helm chart.
var _ = Describe("installed with the Helm chart", Ordered, func() {
	c := &connection{ns: "wa-helm", name: "support", phone: "+15550002222"}
	var before struct{ logins, pairings int }

	BeforeAll(func() {
		repo, tag, _ := strings.Cut(operatorImage, ":")
		run(e.root, e.helm, "install", "wao", filepath.Join("charts", "whatsapp-operator"),
			"-n", operatorNS, "--create-namespace",
			"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
			"--set", "session.image="+sessionImage)
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", c.ns, "--ignore-not-found", "--wait=false")
			run(e.root, e.helm, "uninstall", "wao", "-n", operatorNS, "--wait")
			_, _ = kubectl("delete", "namespace", operatorNS, "--ignore-not-found", "--wait=false")
			gone("namespace", c.ns)
			gone("namespace", operatorNS)
		})
		Eventually(kubectl).WithArguments("rollout", "status", "-n", operatorNS, "deployment", "--timeout=10s").
			WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(ContainSubstring("successfully rolled out"))
	})

	It("serves the manager's metrics to a scraper with the metrics-reader role", func() {
		role := strings.TrimSpace(mustKubectl("get", "clusterrole", "-l", "app.kubernetes.io/instance=wao", "-o", "name"))
		var reader string
		for _, r := range strings.Fields(role) {
			if strings.HasSuffix(r, "-metrics-reader") {
				reader = strings.TrimPrefix(r, "clusterrole.rbac.authorization.k8s.io/")
			}
		}
		Expect(reader).NotTo(BeEmpty(), "the chart's metrics-reader ClusterRole among %q", role)
		// The controllers' series: the manager that serves them is the one that reconciles.
		scrapeMetrics(operatorNS, reader, `controller_runtime_reconcile_total{controller="whatsappconnection"`)
	})

	It("pairs through the QR in kubectl describe and connects in a restricted namespace", func() {
		c.apply()
		c.pairs()
		// The session ran under the restricted profile the namespace enforces, on a real
		// volume: the claim is bound to one of the node's local PersistentVolumes.
		Expect(kubectl("get", "pvc", "-n", c.ns, c.name+"-store", "-o", "jsonpath={.status.phase}")).To(Equal("Bound"))
	})

	It("shows the session's output in kubectl logs", func() {
		Eventually(kubectl).WithArguments("logs", "-n", c.ns, c.name+"-session").
			WithTimeout(30 * time.Second).Should(ContainSubstring(c.name))
	})

	It("resolves a Service by name from the session pod, through the cluster DNS", func() {
		// The manager's metrics Service, as an event sink's or a peer's Service would be named.
		svc := strings.TrimSpace(mustKubectl("get", "svc", "-n", operatorNS, "-l", "app.kubernetes.io/instance=wao",
			"-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.clusterIP}{"\n"}{end}`))
		name, ip, _ := strings.Cut(strings.Split(svc, "\n")[0], " ")
		Expect(ip).To(MatchRegexp(`^10\.213\.128\.\d+$`), "a ClusterIP Service of the chart: %q", svc)
		// The pod's own resolver and /etc/resolv.conf, as the kubelet wrote them: the full name,
		// and a short one through the search list.
		for _, host := range []string{name + "." + operatorNS + ".svc.cluster.local", name + "." + operatorNS} {
			Expect(kubectl("exec", "-n", c.ns, c.name+"-session", "-c", "session", "--", "/resolve", host)).
				To(Equal(ip+"\n"), "resolving %s in the session pod", host)
		}
	})

	It("takes messages from a pod by the send API's Service name, with a projected token, and refuses a ServiceAccount without the Role", func() {
		sendsFromAPod(c)
	})

	It("sends with kubectl whatsapp as a person through a real port-forward, and refuses one without pods/portforward", func() {
		sendsWithThePlugin(c)
	})

	It("reconnects a killed session container without a new QR", func() {
		st := c.device().Stats()
		before.logins, before.pairings = st.Logins, st.PairingWindows
		oldUID := c.podUID()
		c.killSessionContainer()
		Eventually(c.device().Stats).WithTimeout(time.Minute).Should(HaveField("Logins", BeNumerically(">", before.logins)))
		c.connected()
		Expect(c.device().Stats()).To(HaveField("PairingWindows", before.pairings), "no new QR was shown")
		Expect(c.get("{.status.connection.qrCode}")).To(BeEmpty())
		GinkgoWriter.Printf("session pod %s replaced by %s\n", oldUID, c.podUID())
	})

	It("drops WhatsApp when its node loses the control plane, and comes back without a new QR", func() {
		nodeLoss(c)
	})

	It("cleans up everything when the connection is deleted", func() {
		mustKubectl("delete", "-n", c.ns, c.ref(), "--wait=false")
		c.cleanedUp()
	})
})
