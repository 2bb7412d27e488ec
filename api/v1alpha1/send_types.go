package v1alpha1

// SendSpec configures what the connection's send API (POST /v1/messages on the Service
// NAME-session) sends and how fast.
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
}
