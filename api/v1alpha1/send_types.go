package v1alpha1

// SendSpec configures the connection's send API (POST /v1/messages on the Service
// NAME-session): how fast it sends, and over HTTPS.
type SendSpec struct {
	// ratePerMinute is how many messages the connection sends per minute on average. Default
	// 30: WhatsApp bans numbers that send like bulk senders (its Business API is the channel for
	// those), and 30 a minute is more than a person types. Raise it knowing that risk.
	// Changing it replaces the session pod (queued messages wait in the outbox).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=6000
	// +optional
	RatePerMinute int32 `json:"ratePerMinute,omitempty"`

	// burst is how many messages may go out at once above the average rate. Default 10.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Burst int32 `json:"burst,omitempty"`

	// tls serves the send API over HTTPS with the certificate of a Secret.
	// +optional
	TLS *SendTLS `json:"tls,omitempty"`
}

// SendTLS names the send API's certificate.
type SendTLS struct {
	// secretName is a Secret in the connection's namespace with tls.crt and tls.key (type
	// kubernetes.io/tls, as cert-manager writes it for a Certificate). The certificate should
	// name the Service: NAME-session.NAMESPACE.svc. The session picks up a renewed certificate
	// without a restart. The session pod does not start until the Secret exists.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}
