package localrunner

import (
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var _ = Describe("the pod's kubeconfig", func() {
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
	}
	server := func(r *Runner, p *corev1.Pod) string {
		path, err := r.writeKubeconfig(p)
		Expect(err).NotTo(HaveOccurred())
		kc, err := clientcmd.LoadFromFile(path)
		Expect(err).NotTo(HaveOccurred())
		return kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server
	}

	It("points at APIServerFor's URL for the pods it names and at the runner's otherwise", func() {
		r, err := New(&rest.Config{Host: "https://127.0.0.1:6443"}, Options{
			WorkDir: GinkgoT().TempDir(),
			APIServerFor: func(p *corev1.Pod) string {
				if p.Name == "proxied" {
					return "https://127.0.0.1:7000"
				}
				return ""
			},
		})
		Expect(err).NotTo(HaveOccurred())
		for _, p := range []*corev1.Pod{pod("proxied"), pod("direct")} {
			Expect(os.MkdirAll(r.podDir(p), 0o700)).To(Succeed())
		}
		Expect(server(r, pod("proxied"))).To(Equal("https://127.0.0.1:7000"))
		Expect(server(r, pod("direct"))).To(Equal("https://127.0.0.1:6443"))
	})
})
