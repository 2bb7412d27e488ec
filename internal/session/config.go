package session

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/rest"

	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// Default Lease timings: the contract's (sessionenv), so the manager passes the same values.
const (
	DefaultLeaseDuration = sessionenv.DefaultLeaseDuration
	DefaultRenewDeadline = sessionenv.DefaultRenewDeadline
	DefaultRetryPeriod   = sessionenv.DefaultRetryPeriod
	// DefaultStandbyPoll is how often a session that does not hold the Lease reads it. Reads
	// only; it bounds how late a standby notices an expired Lease.
	DefaultStandbyPoll = time.Second
)

// Config is everything a Runtime needs; FromEnv fills the pod's part of it.
type Config struct {
	ConnectionName, Namespace string
	PodName, PodUID           string
	LeaseName                 string

	// REST is the API client config (the pod's ServiceAccount in a cluster).
	REST *rest.Config
	// OpenClient opens the device store and the WhatsApp client.
	OpenClient OpenClientFunc

	LeaseDuration, RenewDeadline, RetryPeriod, StandbyPoll time.Duration
	// RequestTimeout bounds one Lease request: sessionenv.LeaseRequestTimeout by default, at
	// most half the renew deadline.
	RequestTimeout time.Duration

	// QRFirstTTL and QRNextTTL are how long the first and each later QR code of a pairing
	// window is valid (whatsmeow and WhatsApp use 60 s and 20 s).
	QRFirstTTL, QRNextTTL time.Duration
	// PairingWindows bounds how many pairing windows open in a row before PairingTimeout.
	PairingWindows int
	// PairingBackoff is the pause before the n-th further window, times n.
	PairingBackoff time.Duration

	// StoreRetryBase and StoreRetryMax bound the backoff between attempts to open a device
	// store that failed: the first retry waits StoreRetryBase, each next one twice as long.
	StoreRetryBase, StoreRetryMax time.Duration

	// StoreSecretFile is the store Secret's key as a file the kubelet keeps current, and
	// StoreSecretValue the value the session started with (its env): when the file holds
	// another value, the session ends so that its pod is replaced (watchStoreSecret). The file
	// is read every StoreSecretPoll.
	StoreSecretFile, StoreSecretValue string
	StoreSecretPoll                   time.Duration

	// HealthAddr and MetricsAddr serve /healthz, /readyz and /metrics; "" or "0" disables.
	HealthAddr, MetricsAddr string
	// MoreMetrics appends families to /metrics (the event sinks'); MetricsHandlers are further
	// paths on the metrics port (/events). Both are as open as /metrics: no personal data.
	MoreMetrics     func(io.Writer)
	MetricsHandlers map[string]http.Handler
}

// StoreConfig says where the device store is.
type StoreConfig struct {
	Type        string // sessionenv.StoreSQLite or sessionenv.StorePostgres
	SQLitePath  string
	PostgresDSN string
	// PostgresDSNFile is the DSN's key as a kubelet-refreshed file (see Config.StoreSecretFile).
	PostgresDSNFile string
}

// StoreFromEnv reads the store part of the pod's environment.
func StoreFromEnv() StoreConfig {
	return StoreConfig{
		Type:            os.Getenv(sessionenv.StoreType),
		SQLitePath:      os.Getenv(sessionenv.SQLitePath),
		PostgresDSN:     os.Getenv(sessionenv.PostgresDSN),
		PostgresDSNFile: os.Getenv(sessionenv.PostgresDSNFile),
	}
}

// FromEnv reads the pod identity the controller puts in the environment.
func (c *Config) FromEnv() {
	c.ConnectionName = os.Getenv(sessionenv.ConnectionName)
	c.Namespace = os.Getenv(sessionenv.Namespace)
	c.PodName = os.Getenv(sessionenv.PodName)
	c.PodUID = os.Getenv(sessionenv.PodUID)
	c.LeaseName = os.Getenv(sessionenv.LeaseName)
}

// withDefaults fills what was left zero.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LeaseDuration, DefaultLeaseDuration)
	def(&c.RenewDeadline, DefaultRenewDeadline)
	def(&c.RetryPeriod, DefaultRetryPeriod)
	def(&c.StandbyPoll, DefaultStandbyPoll)
	// Scaled-down timings (tests) get a proportionally shorter bound.
	def(&c.RequestTimeout, min(sessionenv.LeaseRequestTimeout, c.RenewDeadline/2))
	def(&c.QRFirstTTL, 60*time.Second)
	def(&c.QRNextTTL, 20*time.Second)
	def(&c.PairingBackoff, 5*time.Second)
	def(&c.StoreRetryBase, 2*time.Second)
	def(&c.StoreRetryMax, 2*time.Minute)
	def(&c.StoreSecretPoll, 5*time.Second)
	if c.PairingWindows <= 0 {
		c.PairingWindows = 3
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	for name, v := range map[string]string{
		sessionenv.ConnectionName: c.ConnectionName, sessionenv.Namespace: c.Namespace,
		sessionenv.PodName: c.PodName, sessionenv.PodUID: c.PodUID, sessionenv.LeaseName: c.LeaseName,
	} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if c.REST == nil || c.OpenClient == nil {
		errs = append(errs, errors.New("REST config and OpenClient are required"))
	}
	// client-go's rule (the manager checks it too), said in the flags' words.
	if c.RenewDeadline >= c.LeaseDuration || c.RenewDeadline <= c.RetryPeriod*6/5 {
		errs = append(errs, fmt.Errorf("lease timings must satisfy 1.2 × retry-period (%s) < renew-deadline (%s) < lease-duration (%s)",
			c.RetryPeriod, c.RenewDeadline, c.LeaseDuration))
	}
	if c.LeaseDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease duration %s must be whole seconds: the Lease records seconds", c.LeaseDuration))
	}
	if c.RequestTimeout >= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("lease request timeout %s must be under renew-deadline %s", c.RequestTimeout, c.RenewDeadline))
	}
	if c.StandbyPoll*6/5 >= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("standby poll %s must be well under renew-deadline %s", c.StandbyPoll, c.RenewDeadline))
	}
	return errors.Join(errs...)
}
