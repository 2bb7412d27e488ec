package controllers

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

func TestResolveDestination(t *testing.T) {
	svc := func(mutate func(*whatsappv1alpha1.DestinationRef)) *whatsappv1alpha1.DestinationRef {
		r := &whatsappv1alpha1.DestinationRef{APIVersion: "v1", Kind: "Service", Name: "app"}
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	for name, tc := range map[string]struct {
		d       whatsappv1alpha1.Destination
		want    string
		wantErr bool
	}{
		"uri as is":                    {d: whatsappv1alpha1.Destination{URI: "https://hooks.example.com/wa?x=1"}, want: "https://hooks.example.com/wa?x=1"},
		"uri that is not http(s)":      {d: whatsappv1alpha1.Destination{URI: "ftp://hooks.example.com/"}, wantErr: true},
		"uri with user info":           {d: whatsappv1alpha1.Destination{URI: "https://u:p@hooks.example.com/"}, wantErr: true},
		"Service on the default port":  {d: whatsappv1alpha1.Destination{Ref: svc(nil)}, want: "http://app.shop.svc/"},
		"Service with a path and port": {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Port = 8080 }), Path: "/events/in"}, want: "http://app.shop.svc:8080/events/in"},
		"https Service on 443":         {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Scheme, r.Port = "https", 443 })}, want: "https://app.shop.svc/"},
		"https Service on 8443":        {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Scheme, r.Port = "https", 8443 })}, want: "https://app.shop.svc:8443/"},
		"Service named in its own ns":  {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Namespace = "shop" })}, want: "http://app.shop.svc/"},
		"Service in another namespace": {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Namespace = "kube-system" })}, wantErr: true},
		"a kind that is not a Service": {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.Kind = "Broker" })}, wantErr: true},
		"a Service of another group":   {d: whatsappv1alpha1.Destination{Ref: svc(func(r *whatsappv1alpha1.DestinationRef) { r.APIVersion = "serving.knative.dev/v1" })}, wantErr: true},
		"neither uri nor ref":          {d: whatsappv1alpha1.Destination{}, wantErr: true},
	} {
		got, err := resolveDestination("shop", tc.d)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q (error %v)", name, got, err, tc.want, tc.wantErr)
		}
	}
}

// The pod carries the sinks as the session's contract and the signing keys as secretKeyRefs
// (the manager reads no Secret); a sink change changes the pod's hash, so the pod is replaced.
func TestSinksReachThePodAndAChangeReplacesIt(t *testing.T) {
	r := &WhatsAppConnectionReconciler{}
	wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wa"}}
	before, err := r.desiredPod(wac)
	if err != nil {
		t.Fatal(err)
	}
	wac.Spec.Events = &whatsappv1alpha1.EventsSpec{Retention: &metav1.Duration{Duration: 72 * time.Hour}, Sinks: []whatsappv1alpha1.EventSink{{
		Name: "app", Destination: whatsappv1alpha1.Destination{Ref: &whatsappv1alpha1.DestinationRef{Kind: "Service", Name: "app"}, Path: "/in"},
		Filter:           &whatsappv1alpha1.EventFilter{Types: []whatsappv1alpha1.EventType{whatsappv1alpha1.EventMessageReceived}},
		SigningSecretRef: &whatsappv1alpha1.SigningSecretRef{Name: "hook", Keys: []string{"new", "old"}},
		Delivery: &whatsappv1alpha1.EventDelivery{MaxAge: &metav1.Duration{Duration: time.Hour},
			DeadLetterSink: &whatsappv1alpha1.Destination{URI: "https://dlq.example.com/", CACerts: ptr.To("-----BEGIN CERTIFICATE-----")}},
	}}}
	after, err := r.desiredPod(wac)
	if err != nil {
		t.Fatal(err)
	}
	if before.Annotations[podSpecHashAnnotation] == after.Annotations[podSpecHashAnnotation] {
		t.Fatal("adding a sink does not change the pod spec hash")
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range after.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	var sink sessionenv.EventSink
	if err := json.Unmarshal([]byte(env[sessionenv.EventSinkEnv(0)].Value), &sink); err != nil {
		t.Fatalf("sink env: %v", err)
	}
	want := sessionenv.EventSink{Name: "app", URL: "http://app.shop.svc/in", Types: []string{"message.received"}, Keys: 2, MaxAge: "1h0m0s",
		DeadLetter: &sessionenv.EventDestination{URL: "https://dlq.example.com/", CACerts: "-----BEGIN CERTIFICATE-----"}}
	if got, _ := json.Marshal(sink); string(got) != mustJSON(t, want) {
		t.Errorf("sink env: got %s, want %s", got, mustJSON(t, want))
	}
	if env[sessionenv.EventRetention].Value != "72h0m0s" {
		t.Errorf("retention env: %+v", env[sessionenv.EventRetention])
	}
	for j, key := range []string{"new", "old"} {
		ref := env[sessionenv.EventSinkKeyEnv(0, j)].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "hook" || ref.SecretKeyRef.Key != key || ref.SecretKeyRef.Optional != nil {
			t.Errorf("key %d: want a required secretKeyRef to hook/%s, got %+v", j, key, ref)
		}
	}
	wac.Spec.Events.Sinks[0].Filter = nil
	changed, err := r.desiredPod(wac)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Annotations[podSpecHashAnnotation] == after.Annotations[podSpecHashAnnotation] {
		t.Error("changing a sink's filter does not change the pod spec hash")
	}
}

func TestSinkSecretVerdictNamesTheSink(t *testing.T) {
	wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wa"}}
	wac.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "db"}}
	wac.Spec.Events = &whatsappv1alpha1.EventsSpec{Sinks: []whatsappv1alpha1.EventSink{{Name: "app",
		Destination: whatsappv1alpha1.Destination{URI: "http://x.example/"}, SigningSecretRef: &whatsappv1alpha1.SigningSecretRef{Name: "hook"}}}}
	for msg, want := range map[string]string{
		`secret "hook" not found`:                    whatsappv1alpha1.ReasonSecretNotFound,
		"couldn't find key secret in Secret ns/hook": whatsappv1alpha1.ReasonSecretKeyNotFound,
		`secret "db" not found`:                      whatsappv1alpha1.ReasonSecretNotFound, // the store's verdict
	} {
		v := storeSecretVerdict(wac, podWaiting(createContainerConfigError, msg))
		if v == nil || v.reason != want {
			t.Errorf("%q: got %+v, want %s", msg, v, want)
			continue
		}
		sinks := contains(v.message, "spec.events.sinks[app].signingSecretRef")
		if sinks != contains(msg, "hook") {
			t.Errorf("%q: verdict names the wrong field: %q", msg, v.message)
		}
	}
}

func TestTheControllerLeavesTheSessionsConditionAlone(t *testing.T) {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.Status.Conditions = []metav1.Condition{{Type: whatsappv1alpha1.ConditionReady}, {Type: whatsappv1alpha1.ConditionEventsDelivering}}
	p := newPass(wac)
	if len(p.status.Conditions) != 1 || p.status.Conditions[0].Type != whatsappv1alpha1.ConditionReady {
		t.Errorf("the controller carries the session's condition: %+v", p.status.Conditions)
	}
	if len(wac.Status.Conditions) != 2 {
		t.Error("newPass changed the resource it read")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kubectl whatsapp events reaches /events through the pod proxy by port number.
func TestTheEventsViewPortIsTheSessionsMetricsPort(t *testing.T) {
	if metricsPort != sessionenv.EventsViewPort {
		t.Errorf("the session's metrics port is %d, the plugin asks %d", metricsPort, sessionenv.EventsViewPort)
	}
}
