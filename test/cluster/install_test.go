//go:build cluster

package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// dist/install.yaml as `make build-installer IMG=...` renders it (in a copy of config/, so the
// repository's kustomization keeps its image), applied with kubectl; the connection picks the
// test session image through spec.session.image, as a user's custom image would be.
var _ = Describe("installed from dist/install.yaml", Ordered, func() {
	c := &connection{ns: "wa-kustomize", name: "sales", phone: "+15550003333", sessionImage: sessionImage}

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		Expect(exec.Command("cp", "-r", filepath.Join(e.root, "config"), dir).Run()).To(Succeed())
		run(filepath.Join(dir, "config", "manager"), e.kustomize, "edit", "set", "image", "controller="+operatorImage)
		install := run(filepath.Join(dir, "config"), e.kustomize, "build", "default")
		path := filepath.Join(dir, "install.yaml")
		Expect(os.WriteFile(path, []byte(install), 0o644)).To(Succeed())

		mustKubectl("apply", "--server-side", "--force-conflicts", "-f", path)
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", c.ns, "--ignore-not-found", "--wait=false")
			_, _ = kubectl("delete", "-f", path, "--ignore-not-found", "--wait=false")
			// Deleting the CRD takes its instances with it; the Helm spec, if it comes next,
			// must not find the CRD still terminating (Helm skips a CRD that exists).
			gone("namespace", c.ns)
			gone("namespace", operatorNS)
			gone("crd", crdName)
		})
		Eventually(kubectl).WithArguments("rollout", "status", "-n", operatorNS, "deployment", "--timeout=10s").
			WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(ContainSubstring("successfully rolled out"))
	})

	It("pairs, connects and cleans up", func() {
		c.apply()
		c.pairs()
		mustKubectl("delete", "-n", c.ns, c.ref(), "--wait=false")
		c.cleanedUp()
	})
})
