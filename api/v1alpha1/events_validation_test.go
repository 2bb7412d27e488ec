//go:build !unit

package v1alpha1_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// events wraps sinks into a spec.
func events(sinks ...map[string]any) map[string]any {
	list := make([]any, len(sinks))
	for i, s := range sinks {
		list[i] = s
	}
	return map[string]any{"events": map[string]any{"sinks": list}}
}

// sink is a valid sink with the fields of extra merged over it (nil deletes a field).
func sink(extra map[string]any) map[string]any {
	s := map[string]any{"name": "app", "uri": "https://hooks.example.com/whatsapp"}
	for k, v := range extra {
		if v == nil {
			delete(s, k)
			continue
		}
		s[k] = v
	}
	return s
}

const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

var _ = Describe("WhatsAppConnection spec.events admission", func() {
	DescribeTable("rejects a bad sink with the field path and the reason",
		func(spec map[string]any, fieldPath, gist string) {
			name := uniqueName("events")
			err := k8sClient.Create(ctx, newUnstructured(name, spec), strict)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring(fieldPath))
			Expect(err.Error()).To(ContainSubstring(gist))
			expectNotStored(name)
		},
		Entry("a uri that is not http(s)", events(sink(map[string]any{"uri": "ftp://hooks.example.com/x"})),
			"spec.events.sinks[0].uri", "absolute http:// or https:// URL"),
		Entry("a relative uri", events(sink(map[string]any{"uri": "/hooks/whatsapp"})),
			"spec.events.sinks[0].uri", "absolute http:// or https:// URL"),
		Entry("a uri with user info", events(sink(map[string]any{"uri": "https://user:pass@hooks.example.com/"})),
			"spec.events.sinks[0].uri", "no user info"),
		Entry("neither uri nor ref", events(sink(map[string]any{"uri": nil})),
			"spec.events.sinks[0]", "exactly one of uri or ref must be set"),
		Entry("both uri and ref", events(sink(map[string]any{"ref": map[string]any{"kind": "Service", "name": "app"}})),
			"spec.events.sinks[0]", "exactly one of uri or ref must be set"),
		Entry("a ref to a kind that is not addressable", events(sink(map[string]any{"uri": nil,
			"ref": map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "app"}})),
			"spec.events.sinks[0].ref.kind", "kind must be Service"),
		Entry("a ref to another API version", events(sink(map[string]any{"uri": nil,
			"ref": map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "app"}})),
			"spec.events.sinks[0].ref.apiVersion", `Unsupported value: "serving.knative.dev/v1"`),
		Entry("a path without ref", events(sink(map[string]any{"path": "/x"})),
			"spec.events.sinks[0].path", "path is only allowed with ref"),
		Entry("CACerts on an http destination", events(sink(map[string]any{"uri": "http://hooks.example.com/", "CACerts": pem})),
			"spec.events.sinks[0].CACerts", "only used for https"),
		Entry("CACerts that are not PEM", events(sink(map[string]any{"CACerts": "not a certificate"})),
			"spec.events.sinks[0].CACerts", "PEM"),
		Entry("two sinks of one name", events(sink(nil), sink(nil)),
			"spec.events.sinks[1]", "Duplicate value"),
		Entry("a sink name that is not a DNS label", events(sink(map[string]any{"name": "My_Sink"})),
			"spec.events.sinks[0].name", "should match"),
		Entry("more than 8 sinks", events(manySinks(9)...),
			"spec.events.sinks", "must have at most 8 items"),
		Entry("a filter type that does not exist", events(sink(map[string]any{"filter": map[string]any{"types": []any{"message.deleted"}}})),
			"spec.events.sinks[0].filter.types[0]", `Unsupported value: "message.deleted"`),
		Entry("a filter chat that is not a JID", events(sink(map[string]any{"filter": map[string]any{"chats": []any{"+14155550123"}}})),
			"spec.events.sinks[0].filter.chats[0]", "should match"),
		Entry("three signing keys", events(sink(map[string]any{"signingSecretRef": map[string]any{"name": "hook", "keys": []any{"a", "b", "c"}}})),
			"spec.events.sinks[0].signingSecretRef.keys", "must have at most 2 items"),
		Entry("a timeout that is not a duration", events(sink(map[string]any{"delivery": map[string]any{"timeout": "ten seconds"}})),
			"spec.events.sinks[0].delivery.timeout", "should match"),
		Entry("a timeout over 5m", events(sink(map[string]any{"delivery": map[string]any{"timeout": "6m"}})),
			"spec.events.sinks[0].delivery.timeout", "between 1s and 5m"),
		Entry("backoffDelay over backoffMax", events(sink(map[string]any{"delivery": map[string]any{"backoffDelay": "2m", "backoffMax": "1m"}})),
			"spec.events.sinks[0].delivery.backoffDelay", "must not exceed backoffMax"),
		Entry("a dead-letter sink that is not http(s)", events(sink(map[string]any{"delivery": map[string]any{
			"deadLetterSink": map[string]any{"uri": "mailto:ops@example.com"}}})),
			"spec.events.sinks[0].delivery.deadLetterSink.uri", "absolute http:// or https:// URL"),
		Entry("a retention under a minute", map[string]any{"events": map[string]any{"retention": "30s"}},
			"spec.events.retention", "between 1m and 8760h"),
	)

	It("accepts a full sink and defaults the ref's apiVersion and the signing key", func() {
		name := uniqueName("events")
		spec := events(
			sink(map[string]any{"CACerts": pem, "filter": map[string]any{"types": []any{"message.received"}, "chats": []any{"14155550123@s.whatsapp.net"}},
				"signingSecretRef": map[string]any{"name": "hook"},
				"delivery": map[string]any{"timeout": "5s", "backoffDelay": "500ms", "backoffMax": "1m", "maxAge": "1h",
					"deadLetterSink": map[string]any{"ref": map[string]any{"kind": "Service", "name": "dlq"}, "path": "/dead"}}}),
			map[string]any{"name": "svc", "ref": map[string]any{"kind": "Service", "name": "app", "port": int64(8080)}, "path": "/events"},
		)
		spec["events"].(map[string]any)["retention"] = "72h"
		Expect(k8sClient.Create(ctx, newUnstructured(name, spec), strict)).To(Succeed())
		wac := &whatsappv1alpha1.WhatsAppConnection{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, wac)).To(Succeed())
		sinks := wac.Spec.Events.Sinks
		Expect(sinks).To(HaveLen(2))
		Expect(sinks[0].SigningSecretRef.Keys).To(Equal([]string{"secret"}))
		Expect(sinks[1].Ref.APIVersion).To(Equal("v1"))
		Expect(sinks[0].Delivery.MaxAge.Duration.String()).To(Equal("1h0m0s"))
	})
})

func manySinks(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = sink(map[string]any{"name": fmt.Sprintf("s%d", i), "uri": "https://h" + strings.Repeat("x", i) + ".example.com/"})
	}
	return out
}
