//go:build !unit

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var _ = Describe("Claims across namespaces", func() {
	phone := func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Pairing.PhoneNumber = "+14155550177" }

	It("by default, a claim in one namespace neither blocks nor names a resource in another", func() {
		ns1, ns2 := newNamespace(), newNamespace()
		newConnection(ns1, "older", phone)
		sessionPod(ns1, "older")
		newConnection(ns2, "younger", phone)
		sessionPod(ns2, "younger")
		Consistently(conflictReason(ns2, "younger"), 2*time.Second).Should(BeEmpty())
		Expect(podUID(ns1, "older")()).NotTo(BeEmpty())
	})

	It("with cluster-wide claims, halts the younger without naming the other namespace or resource", func() {
		mine := otherManager("cluster-wide-claims", func(m *managerSetup) { m.Options.ClusterWideClaims = true })
		ns1, ns2 := newNamespace(), newNamespace()
		newConnection(ns1, "tenant-a-secret-name", phone, mine)
		sessionPod(ns1, "tenant-a-secret-name")
		newConnection(ns2, "younger", phone, mine)

		Eventually(conflictReason(ns2, "younger")).Should(Equal(whatsappv1alpha1.ReasonDuplicatePhoneNumber))
		msg := condition(ns2, "younger", whatsappv1alpha1.ConditionConflict)().Message
		Expect(msg).To(ContainSubstring("another namespace"))
		Expect(msg).NotTo(Or(ContainSubstring(ns1), ContainSubstring("tenant-a-secret-name")))
		Consistently(podUID(ns2, "younger"), 2*time.Second).Should(BeEmpty())
	})
})
