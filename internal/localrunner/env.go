package localrunner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configError is a container that cannot be given its environment. A missing Secret or
// ConfigMap may yet appear, so, like a kubelet, the runner keeps the pod Pending and tries
// again; anything else fails the pod.
type configError struct {
	msg   string
	retry bool
}

func (e *configError) Error() string { return e.msg }

// envResolver reads the objects a pod's env refers to, once per pod start.
type envResolver struct {
	r          *Runner
	pod        *corev1.Pod
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func newEnvResolver(r *Runner, pod *corev1.Pod) *envResolver {
	return &envResolver{r: r, pod: pod, secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
}

// containerEnv is the container's env as NAME=VALUE in declaration order, envFrom first, as
// the kubelet orders them (a later entry wins).
func (e *envResolver) containerEnv(ctx context.Context, c *corev1.Container) ([]string, error) {
	var out []string
	for _, src := range c.EnvFrom {
		data, err := e.envFromData(ctx, src)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			out = append(out, src.Prefix+k+"="+v)
		}
	}
	values := map[string]string{}
	for _, ev := range out {
		k, v, _ := strings.Cut(ev, "=")
		values[k] = v
	}
	for _, ev := range c.Env {
		v, ok, err := e.value(ctx, ev)
		if err != nil {
			// The kubelet's own words (pkg/kubelet/kubelet_pods.go), which is what a controller
			// reading the pod's status classifies.
			return nil, &configError{msg: err.Error(), retry: isRetry(err)}
		}
		if !ok {
			continue
		}
		if ev.ValueFrom == nil {
			v = expand(v, values)
		}
		values[ev.Name] = v
		out = append(out, ev.Name+"="+v)
	}
	return out, nil
}

// expandRef is the kubelet's $(VAR) reference to an earlier variable; $$ escapes it.
var expandRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

func expand(s string, values map[string]string) string {
	return expandRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := values[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

func (e *envResolver) value(ctx context.Context, ev corev1.EnvVar) (string, bool, error) {
	src := ev.ValueFrom
	switch {
	case src == nil:
		return ev.Value, true, nil
	case src.FieldRef != nil:
		v, err := fieldValue(e.pod, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := e.secret(ctx, ref.Name)
		if err != nil {
			return optional(ref.Optional, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return optional(ref.Optional, retryable(fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, e.pod.Namespace, ref.Name)))
		}
		return string(v), true, nil
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := e.configMap(ctx, ref.Name)
		if err != nil {
			return optional(ref.Optional, err)
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if v, ok := cm.BinaryData[ref.Key]; ok {
			return string(v), true, nil
		}
		return optional(ref.Optional, retryable(fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, e.pod.Namespace, ref.Name)))
	default:
		return "", false, fmt.Errorf("this kind of valueFrom is not supported by the local runner")
	}
}

func optional(opt *bool, err error) (string, bool, error) {
	if opt != nil && *opt {
		return "", false, nil
	}
	return "", false, err
}

type retryErr struct{ error }

func (e retryErr) Unwrap() error { return e.error }

func retryable(err error) error { return retryErr{err} }

func isRetry(err error) bool {
	var re retryErr
	return errors.As(err, &re)
}

func (e *envResolver) envFromData(ctx context.Context, src corev1.EnvFromSource) (map[string]string, error) {
	data := map[string]string{}
	switch {
	case src.SecretRef != nil:
		s, err := e.secret(ctx, src.SecretRef.Name)
		if err != nil {
			if src.SecretRef.Optional != nil && *src.SecretRef.Optional {
				return data, nil
			}
			return nil, &configError{msg: "envFrom: " + err.Error(), retry: isRetry(err)}
		}
		for k, v := range s.Data {
			data[k] = string(v)
		}
	case src.ConfigMapRef != nil:
		cm, err := e.configMap(ctx, src.ConfigMapRef.Name)
		if err != nil {
			if src.ConfigMapRef.Optional != nil && *src.ConfigMapRef.Optional {
				return data, nil
			}
			return nil, &configError{msg: "envFrom: " + err.Error(), retry: isRetry(err)}
		}
		for k, v := range cm.Data {
			data[k] = v
		}
	}
	return data, nil
}

func (e *envResolver) secret(ctx context.Context, name string) (*corev1.Secret, error) {
	if s, ok := e.secrets[name]; ok {
		return s, nil
	}
	s, err := e.r.cs.CoreV1().Secrets(e.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// The kubelet's secret manager says it so (resource "secret", singular).
		return nil, retryable(apierrors.NewNotFound(corev1.Resource("secret"), name))
	}
	if err != nil {
		return nil, retryable(fmt.Errorf("secret %s: %w", name, err))
	}
	e.secrets[name] = s
	return s, nil
}

func (e *envResolver) configMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	if cm, ok := e.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := e.r.cs.CoreV1().ConfigMaps(e.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, retryable(apierrors.NewNotFound(corev1.Resource("configmap"), name))
	}
	if err != nil {
		return nil, retryable(fmt.Errorf("configMap %s: %w", name, err))
	}
	e.configMaps[name] = cm
	return cm, nil
}

// fieldValue is the downward API for env.
func fieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	if key, ok := subscript(fieldPath, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(fieldPath, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return serviceAccount(pod), nil
	case "status.podIP", "status.hostIP":
		return loopback, nil
	case "status.podIPs", "status.hostIPs":
		return loopback, nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported by the local runner", fieldPath)
}

// subscript parses metadata.labels['key'] (or "key").
func subscript(fieldPath, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fieldPath, prefix+"[")
	if !ok || !strings.HasSuffix(rest, "]") || len(rest) < 3 {
		return "", false
	}
	rest = rest[:len(rest)-1]
	q := rest[0]
	if (q != '\'' && q != '"') || rest[len(rest)-1] != q {
		return "", false
	}
	return rest[1 : len(rest)-1], true
}

func serviceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}
