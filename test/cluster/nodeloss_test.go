//go:build cluster

package cluster

import (
	"os/exec"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// nodeLoss cuts the node off the control plane as a network partition does: the kubelet stops
// (the node turns NotReady) and the session pod's packets to the API server are dropped, while
// its WhatsApp connection (through the relay on the node) stays up. The session cannot renew
// its Lease, so it must drop WhatsApp before the Lease can expire for a successor: the fake
// server's live count for the device falls to 0 while the session process still runs. When
// the node comes back the session is replaced and logs in with its stored keys: no new QR.
func nodeLoss(c *connection) {
	podIP, err := kubectl("get", "pod", "-n", c.ns, c.name+"-session", "-o", "jsonpath={.status.podIP}")
	Expect(err).NotTo(HaveOccurred())
	Expect(podIP).NotTo(BeEmpty())
	pairings := c.device().Stats().PairingWindows

	rule := []string{"INPUT", "-s", podIP, "-d", e.nodeIP, "-p", "tcp", "--dport", "26443",
		"-m", "comment", "--comment", "waoperator-partition", "-j", "DROP"}
	run(e.root, "iptables", append([]string{"-I"}, rule...)...)
	healed := false
	heal := func() {
		if healed {
			return
		}
		healed = true
		_ = exec.Command("iptables", append([]string{"-D"}, rule...)...).Run()
		run(e.root, "hack/cluster.sh", "kubelet-start")
	}
	DeferCleanup(heal)
	run(e.root, "hack/cluster.sh", "kubelet-stop")
	lost := time.Now()

	By("the node turns NotReady")
	Eventually(kubectl).WithArguments("get", "node", e.nodeName, "-o",
		`jsonpath={.status.conditions[?(@.type=="Ready")].status}`).
		WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).ShouldNot(Equal("True"))
	GinkgoWriter.Printf("node NotReady after %s\n", time.Since(lost).Round(time.Second))

	By("the session drops WhatsApp once it cannot renew its Lease")
	Eventually(c.device().Stats).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).
		Should(HaveField("Live", 0))
	GinkgoWriter.Printf("WhatsApp dropped %s after the partition\n", time.Since(lost).Round(time.Second))
	// It stays dropped: nothing on the lost node reconnects while it cannot prove it leads.
	Consistently(c.device().Stats).WithTimeout(10 * time.Second).WithPolling(time.Second).
		Should(HaveField("Live", 0))
	lease, _ := kubectl("get", "lease", "-n", c.ns, c.name+"-session", "-o",
		"jsonpath={.spec.holderIdentity} {.spec.renewTime}")
	pods, _ := kubectl("get", "pods", "-n", c.ns, "-o", "wide")
	GinkgoWriter.Printf("while partitioned: lease %s\n%s\n", lease, pods)

	By("the node comes back; the session is back without a new QR")
	heal()
	c.connected()
	Expect(c.device().Stats()).To(HaveField("PairingWindows", pairings))
	Expect(c.device().Stats()).To(HaveField("MaxLive", 1), "never two live connections for the device")
}
