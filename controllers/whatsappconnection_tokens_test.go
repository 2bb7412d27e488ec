//go:build !unit

package controllers

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var _ = Describe("request tokens", func() {
	It("ignores a reconnect token too long to echo, says so, and keeps writing status", func() {
		ns := newNamespace()
		long := strings.Repeat("r", 300) // longer than status.lastHandledReconnectAt may hold
		newConnection(ns, "chatty", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: long}
		})
		sessionPod(ns, "chatty")
		Eventually(phaseOf(ns, "chatty")).Should(Equal(whatsappv1alpha1.PhasePending))
		Eventually(warningEvents(ns, "chatty")).Should(ContainElement("RequestIgnored"))
		Expect(get(ns, "chatty").Status.LastHandledReconnectAt).To(BeEmpty())

		requestReconnect(ns, "chatty", "2026-01-02T15:04:05Z")
		Eventually(func() string { return get(ns, "chatty").Status.LastHandledReconnectAt }).Should(Equal("2026-01-02T15:04:05Z"))
	})
})
