package plugin_test

import (
	"bytes"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
)

// The commands as kubectl runs them: kubectl's flags pick the cluster and the namespace.
var _ = Describe("kubectl whatsapp", func() {
	exec := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := plugin.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append(args, "--kubeconfig", kubeconfig, "--poll-interval", "50ms"))
		err := cmd.ExecuteContext(ctx)
		return out.String() + errOut.String(), err
	}

	It("runs each command in the namespace given by --namespace", func() {
		ns := newNamespace()
		t := newConnection(ns, "support", whatsappv1alpha1.PairingSpec{})

		out, err := exec("status", "--namespace", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`(?m)^support +- +- +- *$`))

		_, err = exec("reconnect", "support", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(get(t).Annotations).To(HaveKey(whatsappv1alpha1.ReconnectRequestedAtAnnotation))

		_, err = exec("logout", "support", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(get(t).Annotations).To(HaveKey(whatsappv1alpha1.LogoutRequestedAtAnnotation))

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, QRCode: "2@x", QRCodeTerminal: "\n[drawing]"})
		out, err = exec("qr", "support", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("[drawing]"))

		out, err = exec("status", "support", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("kubectl whatsapp qr support"))

		out, err = exec("pair", "support", "-n", ns, "--phone", "+14155550123", "--timeout", "200ms")
		Expect(err).To(MatchError(ContainSubstring("timed out")))
		Expect(out).To(ContainSubstring("now pairs by phone code with +14155550123"))
	})

	It("requires --phone for pair and a name for qr", func() {
		_, err := exec("pair", "support")
		Expect(err).To(MatchError(ContainSubstring(`"phone" not set`)))
		_, err = exec("qr")
		Expect(err).To(MatchError(ContainSubstring("accepts 1 arg")))
	})

	It("fails on an unknown --context", func() {
		_, err := exec("status", "--context", "nowhere")
		Expect(err).To(MatchError(ContainSubstring("nowhere")))
	})
})
