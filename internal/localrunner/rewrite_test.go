package localrunner

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var _ = Describe("rewriting", func() {
	ports := portMap{byNumber: map[int32]int32{8081: 40001, 8080: 40000}, byName: map[string]int32{"health": 8081}}

	DescribeTable("port arguments",
		func(arg, want string) { Expect(ports.rewriteArg(arg)).To(Equal(want)) },
		Entry("empty host", "--health-probe-bind-address=:8081", "--health-probe-bind-address=127.0.0.1:40001"),
		Entry("any host", "--metrics-bind-address=0.0.0.0:8080", "--metrics-bind-address=127.0.0.1:40000"),
		Entry("IPv6 host", "--x=[::]:8080", "--x=127.0.0.1:40000"),
		Entry("undeclared port", "--x=:9090", "--x=:9090"),
		Entry("not a flag", ":8081", ":8081"),
		Entry("a URL", "--url=http://h:8081", "--url=http://h:8081"),
		Entry("a duration", "--lease-duration=15s", "--lease-duration=15s"),
		Entry("disabled", "--metrics-bind-address=0", "--metrics-bind-address=0"),
	)

	It("resolves probe ports by name and number", func() {
		Expect(ports.resolve(intstr.FromString("health"))).To(Equal(int32(40001)))
		Expect(ports.resolve(intstr.FromInt32(8080))).To(Equal(int32(40000)))
		Expect(ports.resolve(intstr.FromInt32(7000))).To(Equal(int32(7000)))
		_, err := ports.resolve(intstr.FromString("nope"))
		Expect(err).To(HaveOccurred())
	})

	mounts := []mount{{containerPath: "/var/lib/whatsapp/keys", localPath: "/w/keys"}, {containerPath: "/var/lib/whatsapp", localPath: "/w/store"}}
	DescribeTable("mount paths",
		func(value, want string) { Expect(rewritePath(mounts, value)).To(Equal(want)) },
		Entry("a file on the mount", "/var/lib/whatsapp/device.db", "/w/store/device.db"),
		Entry("the mount itself", "/var/lib/whatsapp", "/w/store"),
		Entry("a nested mount wins", "/var/lib/whatsapp/keys/k", "/w/keys/k"),
		Entry("a flag's value", "--db=/var/lib/whatsapp/device.db", "--db=/w/store/device.db"),
		Entry("a sibling with the same prefix", "/var/lib/whatsapp2/x", "/var/lib/whatsapp2/x"),
		Entry("something else", "sqlite", "sqlite"),
	)

	DescribeTable("downward API",
		func(path, want string) {
			pod := &corev1.Pod{}
			pod.Labels = map[string]string{"a/b": "L"}
			pod.Annotations = map[string]string{"n": "A"}
			Expect(fieldValue(pod, path)).To(Equal(want))
		},
		Entry("label", "metadata.labels['a/b']", "L"),
		Entry("annotation", `metadata.annotations["n"]`, "A"),
		Entry("missing label", "metadata.labels['x']", ""),
		Entry("default service account", "spec.serviceAccountName", "default"),
	)

	It("refuses a field it cannot resolve instead of guessing", func() {
		_, err := fieldValue(&corev1.Pod{}, "status.phase")
		Expect(err).To(MatchError(ContainSubstring("not supported")))
	})
})
