package sessionenv

// The send API of a session pod (internal/session/sendapi), reached through the connection's
// Service NAME-session.
const (
	// SendAPIPort is the container port of the send API, and SendAPIPortName its name (the
	// Service's target port and the NetworkPolicy's port).
	SendAPIPort     = 8090
	SendAPIPortName = "api"
	// FlagSendAPIBindAddress is the send API's address ("0" disables it).
	FlagSendAPIBindAddress = "send-api-bind-address"
	// FlagSendAPITLSCertFile and FlagSendAPITLSKeyFile, when set, make the send API serve HTTPS
	// with this key pair (a kubernetes.io/tls Secret mounted as files; reloaded when it changes).
	FlagSendAPITLSCertFile = "send-api-tls-cert-file"
	FlagSendAPITLSKeyFile  = "send-api-tls-key-file"
	// FlagSendRatePerMinute and FlagSendBurst limit the outbox's sends (spec.send).
	FlagSendRatePerMinute = "send-rate-per-minute"
	FlagSendBurst         = "send-burst"
)

// SessionServiceName is the Service in front of a connection's session pods.
func SessionServiceName(connection string) string { return connection + "-session" }
