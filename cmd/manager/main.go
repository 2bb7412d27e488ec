// Command manager runs the whatsapp-operator controller manager.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/waoperator/whatsapp-operator/controllers"
)

// defaultSessionImage is used when neither --session-image, SESSION_IMAGE nor the manager's own
// pod tells which image runs sessions.
const defaultSessionImage = "ghcr.io/waoperator/whatsapp-operator:latest"

func main() {
	var (
		metricsAddr     string
		secureMetrics   bool
		watchNamespaces string
		o               = controllers.ManagerOptions{Reconciler: controllers.DefaultOptions()}
		r, session      = &o.Reconciler, &o.Reconciler.Session
		defaults        = controllers.DefaultOptions()
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP with --metrics-secure=false). 0 disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, with authentication and authorization by the API server.")
	flag.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&o.PprofBindAddress, "pprof-bind-address", "",
		"Address Go's /debug/pprof endpoints bind to, e.g. 127.0.0.1:6060 (no authentication: loopback or port-forward only). Empty disables them.")
	flag.BoolVar(&o.LeaderElection, "leader-elect", false,
		"Elect a leader among manager replicas, so that one reconciles at a time. On in the shipped manifests.")
	flag.IntVar(&r.MaxConcurrentReconciles, "max-concurrent-reconciles", defaults.MaxConcurrentReconciles, "How many WhatsAppConnections are reconciled at once.")
	flag.DurationVar(&r.LogoutTimeout, "logout-timeout", defaults.LogoutTimeout,
		"How long deleting a WhatsAppConnection waits for its session to log the device out before it goes anyway.")
	flag.DurationVar(&r.CrashBackoff, "session-crash-backoff", defaults.CrashBackoff,
		"How long a session pod that exited within 30 s of starting stays before it is replaced; doubles with each such exit in a row.")
	flag.DurationVar(&r.CrashBackoffMax, "session-crash-backoff-max", defaults.CrashBackoffMax,
		"The longest the crash backoff grows to.")
	flag.BoolVar(&r.LostNodeRecovery, "lost-node-recovery", defaults.LostNodeRecovery,
		"Force-delete and replace a session pod whose node is not Ready once its Lease has not been renewed for a Lease duration. "+
			"Needs get/list/watch on Nodes; a ReadWriteOnce store volume may stay attached to the lost node.")
	flag.StringVar(&session.Image, "session-image", os.Getenv("SESSION_IMAGE"),
		"Image of session pods when a resource does not set spec.session.image. Default: $SESSION_IMAGE, else the manager's own image.")
	flag.DurationVar(&session.LeaseDuration, "session-lease-duration", defaults.Session.LeaseDuration,
		"How long a session's Lease lasts without renewal; the longest a dead session blocks its replacement.")
	flag.DurationVar(&session.RenewDeadline, "session-renew-deadline", defaults.Session.RenewDeadline,
		"How long a session keeps trying to renew its Lease before it drops its WhatsApp connection.")
	flag.DurationVar(&session.RetryPeriod, "session-retry-period", defaults.Session.RetryPeriod,
		"How often a session renews its Lease (one API write each).")
	flag.Var(quantityFlag{session.Resources.Requests, corev1.ResourceCPU}, "session-cpu-request",
		"CPU request of session pods that do not set spec.session.resources.")
	flag.Var(quantityFlag{session.Resources.Requests, corev1.ResourceMemory}, "session-memory-request",
		"Memory request of session pods that do not set spec.session.resources.")
	flag.Var(quantityFlag{session.Resources.Limits, corev1.ResourceMemory}, "session-memory-limit",
		"Memory limit of session pods that do not set spec.session.resources.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces the manager watches and acts in; empty: every namespace. With it the manager needs Roles in those namespaces only (config/namespaced, chart value watchNamespaces).")
	flag.BoolVar(&r.ClusterWideClaims, "cluster-wide-claims", false,
		"Refuse a phone number or device claimed by a WhatsAppConnection in any watched namespace, not only in the resource's own. "+
			"Messages never name the other namespace's objects.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	o.Namespaces = splitNamespaces(watchNamespaces)
	o.Metrics = metricsOptions(metricsAddr, secureMetrics)
	// Conditions and phase of every resource, from the cache: no monitoring agent needs to read
	// WhatsAppConnections (and with them the QR codes).
	r.StateMetrics = metrics.Registry
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// metricsOptions serve /metrics on addr, over HTTPS with the API server's authentication and
// authorization when secure.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	m := metricsserver.Options{
		BindAddress:   addr,
		SecureServing: secure,
		// HTTP/2 is off: it has had rapid-reset and stream-cancellation CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secure {
		m.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return m
}

// run starts the manager o describes; an empty session image becomes the manager's own.
func run(ctx context.Context, o controllers.ManagerOptions) error {
	session := &o.Reconciler.Session
	// client-go's elector refuses renew-deadline <= 1.2 × retry-period (its jitter); check here so
	// a bad flag stops the manager instead of every session pod.
	if session.RenewDeadline >= session.LeaseDuration || float64(session.RenewDeadline) <= 1.2*float64(session.RetryPeriod) {
		return errors.New("session timings must satisfy 1.2 × retry-period < renew-deadline < lease-duration")
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes configuration (kubeconfig or in-cluster): %w", err)
	}
	if session.Image == "" {
		reader, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
		if err != nil {
			return err
		}
		session.Image = ownImage(ctx, reader)
	}
	ctrl.Log.WithName("setup").Info("session pods", "image", session.Image, "leaseDuration", session.LeaseDuration,
		"watchNamespaces", o.Namespaces, "clusterWideClaims", o.Reconciler.ClusterWideClaims)
	mgr, err := controllers.NewManager(ctx, cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// ownImage is the image of the manager's own pod (POD_NAME and POD_NAMESPACE from the downward
// API), so that sessions run the same build as the operator.
func ownImage(ctx context.Context, reader client.Reader) string {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		return defaultSessionImage
	}
	pod := &corev1.Pod{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil || len(pod.Spec.Containers) == 0 {
		return defaultSessionImage
	}
	return pod.Spec.Containers[0].Image
}

// quantityFlag sets one entry of a ResourceList from a flag such as --session-memory-limit=256Mi.
type quantityFlag struct {
	list corev1.ResourceList
	name corev1.ResourceName
}

func (f quantityFlag) String() string {
	if f.list == nil {
		return ""
	}
	q := f.list[f.name]
	return q.String()
}

func (f quantityFlag) Set(v string) error {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return err
	}
	f.list[f.name] = q
	return nil
}

// splitNamespaces parses --watch-namespaces: comma-separated, blanks dropped.
func splitNamespaces(v string) []string {
	var out []string
	for _, ns := range strings.Split(v, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}
