package controllers

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// The send API of a connection is reached through the Service NAME-session on port 80 (the
// session pod's port 8090). It serves plain HTTP inside the cluster, so a NetworkPolicy admits
// that port only from pods of the connection's namespace; the health and metrics ports stay open
// as they were (kubelet probes, Prometheus in another namespace). Every caller still needs a
// token the API server accepts and a grant on whatsappconnections/messages.
//
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;delete

// sendAPIServicePort is the Service's port for the send API.
const sendAPIServicePort = 80

// sessionSelector selects a connection's session pods.
func sessionSelector(wac *whatsappv1alpha1.WhatsAppConnection) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":         "whatsapp-session",
		whatsappv1alpha1.ConnectionLabel: wac.Name,
	}
}

func desiredSessionService(wac *whatsappv1alpha1.WhatsAppConnection) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: sessionenv.SessionServiceName(wac.Name), Namespace: wac.Namespace, Labels: commonLabels(wac)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: sessionSelector(wac),
			Ports: []corev1.ServicePort{{
				Name: sessionenv.SendAPIPortName, Protocol: corev1.ProtocolTCP,
				Port: sendAPIServicePort, TargetPort: intstr.FromInt32(sessionenv.SendAPIPort),
			}},
		},
	}
}

func desiredSessionNetworkPolicy(wac *whatsappv1alpha1.WhatsAppConnection) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := func(p int32) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(p)
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &v}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: sessionName(wac), Namespace: wac.Namespace, Labels: commonLabels(wac)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: sessionSelector(wac)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				// The send API: pods of this namespace only.
				{Ports: []networkingv1.NetworkPolicyPort{port(sessionenv.SendAPIPort)},
					From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				// Health and metrics: as open as without the policy.
				{Ports: []networkingv1.NetworkPolicyPort{port(healthPort), port(metricsPort)}},
			},
		},
	}
}

// ensureSendAPIService creates the session's Service, and puts its spec back if someone changed
// it.
func (r *WhatsAppConnectionReconciler) ensureSendAPIService(ctx context.Context, p *pass) (*ctrl.Result, error) {
	svc := desiredSessionService(p.wac)
	current := &corev1.Service{}
	if res, err := r.createIfMissing(ctx, p.wac, svc, current); res != nil || err != nil {
		return res, err
	}
	if err := repairOwned(ctx, r, p.wac, current, &corev1.Service{},
		func(s *corev1.Service) bool {
			return !equality.Semantic.DeepEqual(s.Spec.Selector, svc.Spec.Selector) ||
				!equality.Semantic.DeepEqual(s.Spec.Ports, withDefaults(svc.Spec.Ports, s.Spec.Ports))
		},
		func(s *corev1.Service) { s.Spec.Selector, s.Spec.Ports = svc.Spec.Selector, svc.Spec.Ports }); err != nil {
		return nil, err
	}
	return nil, nil
}

// ensureSendAPIPolicy creates the session's NetworkPolicy, and narrows it again if someone
// widened it.
func (r *WhatsAppConnectionReconciler) ensureSendAPIPolicy(ctx context.Context, p *pass) (*ctrl.Result, error) {
	policy := desiredSessionNetworkPolicy(p.wac)
	current := &networkingv1.NetworkPolicy{}
	if res, err := r.createIfMissing(ctx, p.wac, policy, current); res != nil || err != nil {
		return res, err
	}
	if err := repairOwned(ctx, r, p.wac, current, &networkingv1.NetworkPolicy{},
		func(x *networkingv1.NetworkPolicy) bool { return !equality.Semantic.DeepEqual(x.Spec, policy.Spec) },
		func(x *networkingv1.NetworkPolicy) { x.Spec = policy.Spec }); err != nil {
		return nil, err
	}
	return nil, nil
}

// withDefaults returns want with what the API server fills in (a node port) copied from have,
// so that a Service the server defaulted compares equal to the one the controller wants.
func withDefaults(want, have []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	copy(out, want)
	for i := range out {
		if i < len(have) {
			out[i].NodePort = have[i].NodePort
			out[i].AppProtocol = have[i].AppProtocol
		}
	}
	return out
}

// sendFlags are the session's arguments for spec.send. None when it is unset, so that a
// connection without it keeps its pod (the pod spec hash) across operator upgrades.
func sendFlags(s *whatsappv1alpha1.SendSpec) []string {
	if s == nil {
		return nil
	}
	var out []string
	if s.RatePerMinute > 0 {
		out = append(out, flag(sessionenv.FlagSendRatePerMinute, strconv.Itoa(int(s.RatePerMinute))))
	}
	if s.Burst > 0 {
		out = append(out, flag(sessionenv.FlagSendBurst, strconv.Itoa(int(s.Burst))))
	}
	if s.TLS != nil {
		out = append(out, flag(sessionenv.FlagSendAPITLSCertFile, sendTLSPath+"/"+corev1.TLSCertKey),
			flag(sessionenv.FlagSendAPITLSKeyFile, sendTLSPath+"/"+corev1.TLSPrivateKeyKey))
	}
	return out
}

// sendTLSPath is where spec.send.tls's Secret is mounted in the session pod.
const sendTLSPath = "/var/run/whatsapp/send-api-tls"

// sendTLSVolume mounts spec.send.tls's Secret (its two keys only). The volume is not optional:
// a session whose Secret is missing does not start, rather than serve plain HTTP to callers
// that were promised HTTPS. The kubelet keeps the files current, and the session reloads a
// renewed certificate.
func sendTLSVolume(s *whatsappv1alpha1.SendSpec) (*corev1.Volume, *corev1.VolumeMount) {
	if s == nil || s.TLS == nil {
		return nil, nil
	}
	return &corev1.Volume{Name: "send-api-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.TLS.SecretName, DefaultMode: ptr.To[int32](0o440),
			Items: []corev1.KeyToPath{{Key: corev1.TLSCertKey, Path: corev1.TLSCertKey}, {Key: corev1.TLSPrivateKeyKey, Path: corev1.TLSPrivateKeyKey}},
		}}},
		&corev1.VolumeMount{Name: "send-api-tls", MountPath: sendTLSPath, ReadOnly: true}
}
