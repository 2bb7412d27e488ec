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
// server's live count for the device falls to 0 while the session's container still runs.
// Then the controller's lost-node handling (--lost-node-recovery, on by default): the node is
// not Ready and the Lease went unrenewed for a Lease duration, so it releases the Lease,
// force-deletes the stranded pod and says why (a SessionNodeLost event); the successor waits
// for a schedulable node. When the node comes back the kubelet ends the old container, the
// successor runs and logs in with the stored keys: no new QR, never two live connections.
func nodeLoss(c *connection) {
	podIP, err := kubectl("get", "pod", "-n", c.ns, c.name+"-session", "-o", "jsonpath={.status.podIP}")
	Expect(err).NotTo(HaveOccurred())
	Expect(podIP).NotTo(BeEmpty())
	oldUID := c.podUID()
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

	By("the session drops WhatsApp once it cannot renew its Lease, while its container still runs")
	Eventually(c.device().Stats).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).
		Should(HaveField("Live", 0))
	GinkgoWriter.Printf("WhatsApp dropped %s after the partition\n", time.Since(lost).Round(time.Second))
	Expect(c.runningSessionTasks()).NotTo(BeEmpty(), "the fenced session's container runs on (the fence is the session's own)")
	// The order that makes it safe: the session let go of WhatsApp while the Lease still named it,
	// before anyone could take the Lease over.
	Expect(kubectl("get", "lease", "-n", c.ns, c.name+"-session", "-o", "jsonpath={.spec.holderIdentity}")).
		To(HaveSuffix("_"+oldUID), "the Lease still names the fenced session when WhatsApp is dropped")
	// It stays dropped: nothing on the lost node reconnects while it cannot prove it leads.
	Consistently(c.device().Stats).WithTimeout(10 * time.Second).WithPolling(time.Second).
		Should(HaveField("Live", 0))

	By("the controller releases the Lease and force-deletes the stranded pod")
	Eventually(kubectl).WithArguments("get", "events", "-n", c.ns, "--field-selector", "reason=SessionNodeLost",
		"-o", "jsonpath={.items[*].message}").WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).
		Should(ContainSubstring("node " + e.nodeName + " is not Ready"))
	GinkgoWriter.Printf("SessionNodeLost %s after the partition\n", time.Since(lost).Round(time.Second))
	Eventually(func() (string, error) {
		return kubectl("get", "pod", "-n", c.ns, c.name+"-session", "--ignore-not-found", "-o", "jsonpath={.metadata.uid}")
	}).WithTimeout(time.Minute).WithPolling(time.Second).ShouldNot(Equal(oldUID), "the stranded pod is gone from the API")
	Expect(kubectl("get", "lease", "-n", c.ns, c.name+"-session", "-o", "jsonpath={.spec.holderIdentity}")).
		NotTo(ContainSubstring(oldUID), "the stranded pod's Lease was released")
	Expect(c.device().Stats()).To(HaveField("Live", 0), "nothing reconnected while the node is away")
	pods, _ := kubectl("get", "pods", "-n", c.ns, "-o", "wide")
	GinkgoWriter.Printf("while partitioned, after recovery:\n%s\n", pods)

	By("the node comes back; the successor connects without a new QR")
	heal()
	c.connected()
	Expect(c.podUID()).NotTo(Equal(oldUID))
	Expect(c.device().Stats()).To(HaveField("PairingWindows", pairings))
	Expect(c.device().Stats()).To(HaveField("MaxLive", 1), "never two live connections for the device")
	// The kubelet, back, ended the stranded container it no longer had a pod for.
	Eventually(c.runningSessionTasks).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(HaveLen(1))
}
