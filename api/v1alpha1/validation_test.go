//go:build !unit

/*
Copyright 2026 The whatsapp-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1_test

import (
	"fmt"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var nameSeq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

// newUnstructured builds the object as kubectl would send it from YAML. The typed structs
// cannot express every invalid input (omitempty drops "" and 0, and unknown fields do not
// exist in Go), so the table goes through unstructured.
func newUnstructured(name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": whatsappv1alpha1.GroupVersion.String(),
		"kind":       "WhatsAppConnection",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
	}}
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

// strict is what kubectl apply sends by default: unknown fields are an error naming their
// path instead of being pruned silently.
var strict = client.FieldValidation(metav1.FieldValidationStrict)

func expectNotStored(name string) {
	err := k8sClient.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name},
		&whatsappv1alpha1.WhatsAppConnection{})
	Expect(apierrors.IsNotFound(err)).To(BeTrue(), "rejected object %q must not be stored, got %v", name, err)
}

func nodeSelector(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("example.com/label-%d", i)] = "x"
	}
	return m
}

var _ = Describe("WhatsAppConnection admission", func() {
	DescribeTable("rejects an invalid spec with the field path and the reason",
		func(name string, spec map[string]any, fieldPath string, gist string) {
			if name == "" {
				name = uniqueName("invalid")
			}
			err := k8sClient.Create(ctx, newUnstructured(name, spec), strict)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)).To(BeTrue(),
				"want an Invalid or BadRequest admission error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(fieldPath))
			Expect(err.Error()).To(ContainSubstring(gist))
			expectNotStored(name)
		},
		Entry("PhoneCode without phoneNumber", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode"}},
			"spec.pairing.phoneNumber", "phoneNumber is required when method is PhoneCode"),
		Entry("PhoneCode with an empty phoneNumber", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": ""}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("phoneNumber without the leading +", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": "14155550123"}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("phoneNumber with letters", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": "+1415555CALL"}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("phoneNumber with spaces", "",
			map[string]any{"pairing": map[string]any{"phoneNumber": "+1 415 555 0123"}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("phoneNumber too short", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": "+12345"}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("phoneNumber too long (16 digits)", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": "+1234567890123456"}},
			"spec.pairing.phoneNumber", "may not be more than 16"),
		Entry("phoneNumber with a leading zero country code", "",
			map[string]any{"pairing": map[string]any{"method": "PhoneCode", "phoneNumber": "+04155550123"}},
			"spec.pairing.phoneNumber", "E.164"),
		Entry("pairing method not in the enum", "",
			map[string]any{"pairing": map[string]any{"method": "SMS"}},
			"spec.pairing.method", `Unsupported value: "SMS"`),
		Entry("empty deviceName", "",
			map[string]any{"deviceName": ""},
			"spec.deviceName", "at least 1 chars long"),
		Entry("deviceName longer than 64", "",
			map[string]any{"deviceName": strings.Repeat("d", 65)},
			"spec.deviceName", "may not be more than 64"),
		Entry("store with both sqlite and postgres", "",
			map[string]any{"store": map[string]any{
				"sqlite":   map[string]any{},
				"postgres": map[string]any{"secretRef": map[string]any{"name": "wa-dsn"}},
			}},
			"spec.store", "exactly one of sqlite or postgres must be set"),
		Entry("store with neither sqlite nor postgres", "",
			map[string]any{"store": map[string]any{}},
			"spec.store", "exactly one of sqlite or postgres must be set"),
		Entry("postgres with an empty secret name", "",
			map[string]any{"store": map[string]any{"postgres": map[string]any{"secretRef": map[string]any{"name": ""}}}},
			"spec.store.postgres.secretRef.name", "at least 1 chars long"),
		Entry("postgres with an invalid secret name", "",
			map[string]any{"store": map[string]any{"postgres": map[string]any{"secretRef": map[string]any{"name": "Bad_Secret"}}}},
			"spec.store.postgres.secretRef.name", "should match"),
		Entry("postgres without a secretRef", "",
			map[string]any{"store": map[string]any{"postgres": map[string]any{}}},
			"spec.store.postgres.secretRef", "Required value"),
		Entry("reconnect.maxAttempts 0", "",
			map[string]any{"reconnect": map[string]any{"maxAttempts": int64(0)}},
			"spec.reconnect.maxAttempts", "greater than or equal to 1"),
		Entry("reconnect.maxAttempts negative", "",
			map[string]any{"reconnect": map[string]any{"maxAttempts": int64(-1)}},
			"spec.reconnect.maxAttempts", "greater than or equal to 1"),
		Entry("reconnect.maxAttempts 101", "",
			map[string]any{"reconnect": map[string]any{"maxAttempts": int64(101)}},
			"spec.reconnect.maxAttempts", "less than or equal to 100"),
		Entry("name longer than 55 characters", strings.Repeat("n", 56),
			map[string]any{},
			"metadata.name", "at most 55 characters"),
		Entry("session.imagePullPolicy not in the enum", "",
			map[string]any{"session": map[string]any{"imagePullPolicy": "Sometimes"}},
			"spec.session.imagePullPolicy", `Unsupported value: "Sometimes"`),
		Entry("session.command (the program is not configurable)", "",
			map[string]any{"session": map[string]any{"command": []any{"/bin/sh"}}},
			"spec.session.command", "unknown field"),
		Entry("session.args (the arguments are not configurable)", "",
			map[string]any{"session": map[string]any{"args": []any{"--endpoint=wss://evil.example"}}},
			"spec.session.args", "unknown field"),
		Entry("session.env (the environment is not configurable)", "",
			map[string]any{"session": map[string]any{"env": []any{map[string]any{"name": "WA_ENDPOINT", "value": "x"}}}},
			"spec.session.env", "unknown field"),
		Entry("more than 32 nodeSelector entries", "",
			map[string]any{"session": map[string]any{"nodeSelector": nodeSelector(33)}},
			"spec.session.nodeSelector", "must have at most 32 items"),
	)

	It("rejects changing the store after creation", func() {
		name := uniqueName("immutable-store")
		Expect(k8sClient.Create(ctx, newUnstructured(name, map[string]any{}), strict)).To(Succeed())

		key := types.NamespacedName{Namespace: namespace, Name: name}
		wac := &whatsappv1alpha1.WhatsAppConnection{}
		Expect(k8sClient.Get(ctx, key, wac)).To(Succeed())
		Expect(wac.Spec.Store.SQLite).NotTo(BeNil())

		wac.Spec.Store = whatsappv1alpha1.StoreSpec{Postgres: &whatsappv1alpha1.PostgresStore{
			SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "wa-dsn", Key: "dsn"},
		}}
		err := k8sClient.Update(ctx, wac)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.store"))
		Expect(err.Error()).To(ContainSubstring("store is immutable"))

		// Growing the claim is still a store change: keys would not move, but the rule keeps
		// the store one decision made at creation.
		Expect(k8sClient.Get(ctx, key, wac)).To(Succeed())
		wac.Spec.Store.SQLite.Size = resource.MustParse("2Gi")
		err = k8sClient.Update(ctx, wac)
		Expect(err).To(MatchError(ContainSubstring("store is immutable")))

		// The rule must not block other edits.
		Expect(k8sClient.Get(ctx, key, wac)).To(Succeed())
		wac.Spec.DeviceName = "renamed"
		wac.Spec.Suspend = true
		Expect(k8sClient.Update(ctx, wac)).To(Succeed())

		Eventually(func(g Gomega) {
			got := &whatsappv1alpha1.WhatsAppConnection{}
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			g.Expect(got.Spec.DeviceName).To(Equal("renamed"))
			g.Expect(got.Spec.Store.SQLite).NotTo(BeNil())
			g.Expect(got.Spec.Store.Postgres).To(BeNil())
		}).Should(Succeed())
	})

	expectDefaults := func(got *whatsappv1alpha1.WhatsAppConnection) {
		Expect(got.Spec.Pairing.Method).To(Equal(whatsappv1alpha1.PairingMethodQR))
		Expect(got.Spec.Pairing.PhoneNumber).To(BeEmpty())
		Expect(got.Spec.DeviceName).To(Equal("whatsapp-operator"))
		Expect(got.Spec.Store.Postgres).To(BeNil())
		Expect(got.Spec.Store.SQLite).NotTo(BeNil())
		Expect(got.Spec.Store.SQLite.Size.Cmp(resource.MustParse("1Gi"))).To(Equal(0),
			"size %s", got.Spec.Store.SQLite.Size.String())
		Expect(got.Spec.Reconnect.MaxAttempts).To(Equal(int32(3)))
		Expect(got.Spec.LogoutOnDelete).To(Equal(ptr.To(true)))
		Expect(got.Spec.Suspend).To(BeFalse())
	}

	It("applies the defaults to spec: {} sent as YAML would be", func() {
		name := uniqueName("defaults-yaml")
		Expect(k8sClient.Create(ctx, newUnstructured(name, map[string]any{}), strict)).To(Succeed())

		got := &whatsappv1alpha1.WhatsAppConnection{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, got)).To(Succeed())
		expectDefaults(got)
	})

	It("applies the defaults to an empty spec sent from Go", func() {
		// The controller and its tests build typed objects: a zero StoreSpec or SQLiteStore must
		// not reach the server as store: {} or size: "0".
		wac := &whatsappv1alpha1.WhatsAppConnection{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("defaults-go"), Namespace: namespace},
		}
		Expect(k8sClient.Create(ctx, wac, strict)).To(Succeed())
		expectDefaults(wac)

		sqliteOnly := &whatsappv1alpha1.WhatsAppConnection{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("defaults-go-sqlite"), Namespace: namespace},
			Spec: whatsappv1alpha1.WhatsAppConnectionSpec{
				Store: whatsappv1alpha1.StoreSpec{SQLite: &whatsappv1alpha1.SQLiteStore{}},
			},
		}
		Expect(k8sClient.Create(ctx, sqliteOnly, strict)).To(Succeed())
		expectDefaults(sqliteOnly)
	})

	It("accepts a PhoneCode connection stored in postgres", func() {
		name := uniqueName("phonecode-postgres")
		spec := map[string]any{
			"pairing":    map[string]any{"method": "PhoneCode", "phoneNumber": "+14155550123"},
			"deviceName": "Support desk",
			"store": map[string]any{"postgres": map[string]any{
				"secretRef": map[string]any{"name": "wa-support.dsn"},
			}},
			"reconnect":      map[string]any{"maxAttempts": int64(5)},
			"logoutOnDelete": false,
			"session": map[string]any{
				"imagePullPolicy":   "IfNotPresent",
				"nodeSelector":      nodeSelector(32),
				"priorityClassName": "whatsapp",
			},
		}
		Expect(k8sClient.Create(ctx, newUnstructured(name, spec), strict)).To(Succeed())

		got := &whatsappv1alpha1.WhatsAppConnection{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, got)).To(Succeed())
		Expect(got.Spec.Pairing.Method).To(Equal(whatsappv1alpha1.PairingMethodPhoneCode))
		Expect(got.Spec.Pairing.PhoneNumber).To(Equal("+14155550123"))
		Expect(got.Spec.Store.SQLite).To(BeNil())
		Expect(got.Spec.Store.Postgres).NotTo(BeNil())
		Expect(got.Spec.Store.Postgres.SecretRef.Name).To(Equal("wa-support.dsn"))
		Expect(got.Spec.Store.Postgres.SecretRef.Key).To(Equal("dsn"), "secretRef.key defaults to dsn")
		Expect(got.Spec.Reconnect.MaxAttempts).To(Equal(int32(5)))
		Expect(got.Spec.LogoutOnDelete).To(Equal(ptr.To(false)))
		Expect(got.Spec.Session.NodeSelector).To(HaveLen(32))
	})

	It("accepts a name of exactly 55 characters", func() {
		name := strings.Repeat("a", 55)
		Expect(k8sClient.Create(ctx, newUnstructured(name, map[string]any{}), strict)).To(Succeed())
	})
})
