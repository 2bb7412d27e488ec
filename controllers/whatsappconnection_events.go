package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// spec.events reaches the session pod as env (sessionenv.EventSink): the sinks with their
// destinations resolved, and the signing keys as secretKeyRefs that the kubelet fills. The
// manager reads neither the Secrets nor the Services. Keys are env, not a Secret volume, on
// purpose: for a missing Secret volume the kubelet leaves the container Waiting with reason
// ContainerCreating and says why only in FailedMount events (MountVolume.SetUp failed ...
// secret "NAME" not found), which the manager does not read; a missing env Secret or key is
// CreateContainerConfigError with the Secret's name in the container status, classified below. A change of the sinks changes the pod
// spec, and so its hash: the pod is replaced, and each sink resumes from its cursor in the
// device store.

// invalidNamespace is the fixed text for a ref to another namespace (admission refuses it; a
// cluster without the admission policy still never sends there).
const invalidNamespace = "ref.namespace is not the resource's namespace"

// resolveDestination turns a destination into an absolute URL: uri as is, a Service ref into
// scheme://NAME.NAMESPACE.svc[:port]/path. Only Services are resolved, and only in ns; the
// Service itself is not read (an address that does not answer is a delivery error the session
// reports). The error is a fixed text.
func resolveDestination(ns string, d whatsappv1alpha1.Destination) (string, error) {
	if d.URI != "" {
		u, err := url.Parse(d.URI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return "", errors.New("uri is not an absolute http(s) URL")
		}
		return d.URI, nil
	}
	ref := d.Ref
	if ref == nil {
		return "", errors.New("neither uri nor ref is set")
	}
	if ref.Kind != "Service" || (ref.APIVersion != "" && ref.APIVersion != "v1") {
		return "", errors.New("ref is not a v1 Service")
	}
	if ref.Namespace != "" && ref.Namespace != ns {
		return "", errors.New(invalidNamespace)
	}
	scheme := "http"
	if ref.Scheme == "https" {
		scheme = "https"
	}
	host := ref.Name + "." + ns + ".svc"
	defaultPort := map[string]int32{"http": 80, "https": 443}[scheme]
	if ref.Port != 0 && ref.Port != defaultPort {
		host += ":" + strconv.Itoa(int(ref.Port))
	}
	path := d.Path
	if path == "" {
		path = "/"
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: path}).String(), nil
}

// eventsEnv renders spec.events for the session container.
func eventsEnv(wac *whatsappv1alpha1.WhatsAppConnection) ([]corev1.EnvVar, error) {
	ev := wac.Spec.Events
	if ev == nil {
		return nil, nil
	}
	var env []corev1.EnvVar
	if ev.Retention != nil {
		env = append(env, corev1.EnvVar{Name: sessionenv.EventRetention, Value: ev.Retention.Duration.String()})
	}
	for i, s := range ev.Sinks {
		out := sessionenv.EventSink{Name: s.Name, CACerts: ptrValue(s.CACerts)}
		if u, err := resolveDestination(wac.Namespace, s.Destination); err != nil {
			out.Invalid = err.Error()
		} else {
			out.URL = u
		}
		if f := s.Filter; f != nil {
			for _, t := range f.Types {
				out.Types = append(out.Types, string(t))
			}
			out.Chats = f.Chats
		}
		if d := s.Delivery; d != nil {
			out.Timeout, out.BackoffDelay, out.BackoffMax, out.MaxAge = durationText(d.Timeout), durationText(d.BackoffDelay), durationText(d.BackoffMax), durationText(d.MaxAge)
			if dl := d.DeadLetterSink; dl != nil {
				out.DeadLetter = &sessionenv.EventDestination{CACerts: ptrValue(dl.CACerts)}
				if u, err := resolveDestination(wac.Namespace, *dl); err != nil {
					out.DeadLetter.Invalid = err.Error()
				} else {
					out.DeadLetter.URL = u
				}
			}
		}
		var keys []corev1.EnvVar
		if ref := s.SigningSecretRef; ref != nil {
			names := ref.Keys
			if len(names) == 0 {
				names = []string{"secret"}
			}
			for j, key := range names {
				keys = append(keys, corev1.EnvVar{Name: sessionenv.EventSinkKeyEnv(i, j), ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: key},
				}})
			}
			out.Keys = len(keys)
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		env = append(env, corev1.EnvVar{Name: sessionenv.EventSinkEnv(i), Value: string(raw)})
		env = append(env, keys...)
	}
	return env, nil
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func durationText(d *metav1.Duration) string {
	if d == nil {
		return ""
	}
	return d.Duration.String()
}

// kubeletSecretName finds the Secret a kubelet's env error names: `secret "NAME" not found`
// (its secret manager) or `couldn't find key K in Secret NS/NAME` (makeEnvironmentVariables).
var kubeletSecretName = regexp.MustCompile(`secret "([^"]+)" not found|in Secret [^/\s]+/(\S+)`)

// sinkSecretVerdict classifies a session container stuck in CreateContainerConfigError because
// of a sink's signing Secret; nil when the message is about another Secret. As for the store
// Secret, only names from the resource's own spec appear in the verdict.
func sinkSecretVerdict(wac *whatsappv1alpha1.WhatsAppConnection, msg string) *verdict {
	if wac.Spec.Events == nil {
		return nil
	}
	m := kubeletSecretName.FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	name := m[1] + m[2]
	if pg := wac.Spec.Store.Postgres; pg != nil && pg.SecretRef.Name == name {
		return nil // the store's, classified by storeSecretVerdict
	}
	for _, s := range wac.Spec.Events.Sinks {
		ref := s.SigningSecretRef
		if ref == nil || ref.Name != name {
			continue
		}
		field := fmt.Sprintf("spec.events.sinks[%s].signingSecretRef", s.Name)
		if secretKeyMissing(msg) {
			return &verdict{whatsappv1alpha1.ReasonSecretKeyNotFound, fmt.Sprintf(
				"Secret %s/%s lacks a key named in %s.keys; the session starts when it is added", wac.Namespace, name, field)}
		}
		return &verdict{whatsappv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %s/%s named by %s does not exist; the session starts when it is created", wac.Namespace, name, field)}
	}
	return nil
}

// sessionConditions are condition types the session writes (its own field manager); the
// controller neither carries nor applies them, so that it never takes them over.
var sessionConditions = []string{whatsappv1alpha1.ConditionEventsDelivering}

// withoutSessionConditions drops the session's conditions from conds.
func withoutSessionConditions(conds []metav1.Condition) []metav1.Condition {
	out := conds[:0:0]
	for _, c := range conds {
		if !isSessionCondition(c.Type) {
			out = append(out, c)
		}
	}
	return out
}

func isSessionCondition(t string) bool {
	for _, s := range sessionConditions {
		if strings.EqualFold(s, t) {
			return true
		}
	}
	return false
}
