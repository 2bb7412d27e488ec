// Package controllers holds the WhatsAppConnection reconciler.
package controllers

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

const (
	// finalizer lets the controller log the device out and remove the session before the
	// resource goes.
	finalizer = "whatsapp.waoperator.io/session-cleanup"
	// fieldManager is the controller's server-side apply identity for status.
	fieldManager = "whatsapp-operator"
)

// WhatsAppConnectionReconciler runs exactly one session pod per WhatsAppConnection.
type WhatsAppConnectionReconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read could cost correctness.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock

	// Session configures the pods the controller creates.
	Session SessionConfig
	// CrashBackoff is how long a session pod that exited soon after starting stays before it is
	// replaced; it doubles with each such exit in a row, up to CrashBackoffMax.
	CrashBackoff, CrashBackoffMax time.Duration
	// LostNodeRecovery force-deletes and replaces a session pod whose node is not Ready once its
	// Lease has not been renewed for a Lease duration (needs get/list/watch on Nodes).
	LostNodeRecovery bool
	// LogoutTimeout bounds how long deletion waits for the session to log out.
	LogoutTimeout time.Duration
	// MaxConcurrentReconciles is how many resources are reconciled at once.
	MaxConcurrentReconciles int

	givenUp givenUpWarnings // whatsappconnection_events.go
	// StateMetrics is where SetupWithManager registers the conditions and phase collector; nil:
	// nowhere.
	StateMetrics prometheus.Registerer
	// ClusterWideClaims makes a phone number or device claimed in one namespace unavailable in
	// every other. Off, two namespaces (two tenants) never see or block each other.
	ClusterWideClaims bool

	// leases remembers each session Lease as last seen and since when, by this clock.
	leases leaseObserver
	// bindingsCached: the manager's cache holds (and watches) the session ClusterRoleBindings it
	// made (cacheOwnBindings); otherwise ensureAuthDelegation reads them from the API server.
	bindingsCached bool
}

// Options configure a reconciler beyond what its manager provides.
type Options struct {
	Session                 SessionConfig
	LogoutTimeout           time.Duration
	CrashBackoff            time.Duration
	CrashBackoffMax         time.Duration
	LostNodeRecovery        bool
	MaxConcurrentReconciles int
	ClusterWideClaims       bool
	// StateMetrics, when set, gets the collector of every resource's condition and phase series
	// (cmd/manager: controller-runtime's metrics.Registry, which /metrics serves). One manager per
	// registry: a second manager in the same process leaves it nil.
	StateMetrics prometheus.Registerer
}

// DefaultOptions are the manager's flag defaults.
func DefaultOptions() Options {
	return Options{
		Session: SessionConfig{
			// Measured (docs/benchmarks.md): a connected idle session's RSS is ~33 MiB, two
			// thirds of it the static binary's file-backed pages.
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			LeaseDuration: sessionenv.DefaultLeaseDuration,
			RenewDeadline: sessionenv.DefaultRenewDeadline,
			RetryPeriod:   sessionenv.DefaultRetryPeriod,
		},
		LogoutTimeout: 60 * time.Second,
		// A kubelet's CrashLoopBackOff: 10 s, doubling, at most 5 min.
		CrashBackoff:     10 * time.Second,
		CrashBackoffMax:  5 * time.Minute,
		LostNodeRecovery: true,
		// Two: a pass is a chain of round trips, and with more at once many new resources are
		// each half made when the API server has the CPU for only some of them. Of 20 applied at
		// once, four workers had 16 started and 14 pods made when the 10th QR code showed; two
		// bring the codes 0.1-0.25 s sooner (p50), with 7-24 % less CPU before them; the
		// controller took no longer over 500 at once (docs/benchmarks.md, "Sixth round").
		MaxConcurrentReconciles: 2,
	}
}

// NewReconciler makes a reconciler that uses the manager's client, cache, scheme and event
// recorder; call SetupWithManager to start it with the manager.
func NewReconciler(mgr ctrl.Manager, o Options) *WhatsAppConnectionReconciler {
	return &WhatsAppConnectionReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder("whatsapp-operator"),
		Clock:                   clock.RealClock{},
		Session:                 o.Session,
		LogoutTimeout:           o.LogoutTimeout,
		CrashBackoff:            o.CrashBackoff,
		CrashBackoffMax:         o.CrashBackoffMax,
		LostNodeRecovery:        o.LostNodeRecovery,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		ClusterWideClaims:       o.ClusterWideClaims,
		StateMetrics:            o.StateMetrics,
	}
}

// CacheOptions are the cache settings the reconciler is built for; namespaces, when given,
// limit the manager to them (--watch-namespaces, with Roles instead of ClusterRoles).
//
// Of the kinds the controller creates, the cache holds only objects labelled as a session's
// (ownedSelector): the manager keeps no copy of the cluster's other pods, Leases or RBAC
// objects. An object with an expected name but without that label is found when creating ours
// fails (see alreadyExists). Of each it keeps only what the controller reads back
// (ownedTransforms, whatsappconnection_cache.go).
//
// It never reads managedFields, and server-side apply makes them a large part of every cached
// object (the WhatsAppConnection carries two managers' status fields), so the cache drops them.
// Nodes (watched for lost-node recovery) keep only their conditions.
func CacheOptions(namespaces ...string) cache.Options {
	stripManagedFields := cache.TransformStripManagedFields()
	opts := cache.Options{
		DefaultTransform: stripManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Transform: func(obj any) (any, error) {
				if node, ok := obj.(*corev1.Node); ok {
					node.Spec = corev1.NodeSpec{}
					node.Status = corev1.NodeStatus{Conditions: node.Status.Conditions}
				}
				return stripManagedFields(obj)
			}},
		},
	}
	for obj, transform := range ownedTransforms() {
		opts.ByObject[obj] = cache.ByObject{Label: ownedSelector, Transform: transform}
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// ownedSelector matches the objects the controller creates: each carries the connection label.
var ownedSelector = labels.NewSelector().Add(mustRequirement(whatsappv1alpha1.ConnectionLabel, selection.Exists))

func mustRequirement(key string, op selection.Operator, values ...string) labels.Requirement {
	req, err := labels.NewRequirement(key, op, values)
	if err != nil {
		panic(err)
	}
	return *req
}

// SessionConfig is the manager-wide configuration of session pods.
type SessionConfig struct {
	// Image of the session container when the resource does not set one.
	Image string
	// Resources of the session container when the resource does not set spec.session.resources.
	Resources corev1.ResourceRequirements
	// LeaseDuration, RenewDeadline and RetryPeriod are the session's leader-election timings.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// +kubebuilder:rbac:groups=whatsapp.waoperator.io,resources=whatsappconnections,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=whatsapp.waoperator.io,resources=whatsappconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=whatsapp.waoperator.io,resources=whatsappconnections/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims;serviceaccounts,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile loads the resource and hands it to the deletion path or to reconcile, then writes
// the controller's part of the status.
func (r *WhatsAppConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	if err := r.Get(ctx, req.NamespacedName, wac); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !wac.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(wac, finalizer) {
		// On its way out, done with: counting it would bring back the series just forgotten.
		forgetMetrics(wac.Namespace, wac.Name)
		r.forgetGivenUp(wac.UID)
		return ctrl.Result{}, nil
	}
	reconcilePasses.WithLabelValues(wac.Namespace, wac.Name).Inc()

	if !wac.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, wac)
	}
	if controllerutil.AddFinalizer(wac, finalizer) {
		// The update returns the stored object, so the pass goes on with it rather than waiting
		// for a second trip through the queue.
		if err := r.Update(ctx, wac); err != nil {
			return ctrl.Result{}, err
		}
	}

	pass := newPass(wac)
	result, err := r.reconcile(ctx, pass)
	r.warnGivenUp(pass)
	if pass.statusNext {
		return result, err
	}
	if wait := r.awaitFirstReport(pass); wait > 0 && err == nil {
		return sooner(result, wait), nil
	}
	if applyErr := r.applyStatus(ctx, pass); applyErr != nil && err == nil {
		err = applyErr
	}
	return result, err
}

// reconcile is the controller's sequence of decisions. Each step either lets the pass go on
// (nil, nil) or ends it with a result or an error.
func (r *WhatsAppConnectionReconciler) reconcile(ctx context.Context, p *pass) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	pod, err := r.currentPod(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	p.pod = pod

	steps := []struct {
		name string
		run  func(context.Context, *pass) (*ctrl.Result, error)
	}{
		{"resume a halt a person asked to lift", r.resumeIfRequested},
		{"stay halted", r.stayHalted},
		{"refuse objects this resource does not control", r.checkOwnership},
		{"refuse a phone number or device another resource claims", r.checkDuplicates},
		{"refuse a Lease held by someone else", r.checkLeaseHolder},
		{"halt on what the session reports", r.haltOnSessionReport},
		{"suspend", r.suspendIfAsked},
		{"session RBAC", r.ensureRBAC},
		// Before the pod: a session pod never runs without the policy that limits who reaches
		// its send API.
		{"send API NetworkPolicy", r.ensureSendAPIPolicy},
		{"device store", r.ensureStore},
		{"Lease", r.ensureLease},
		{"session pod", r.ensurePod},
		// After the pod, which needs neither to start (time to QR waits for every write before
		// the pod): the Service only routes to the send API, and until the binding exists the
		// session cannot review a caller's token, so its send API refuses every request (503).
		{"send API Service", r.ensureSendAPIService},
		{"send API access reviews", r.ensureAuthDelegation},
	}
	for _, step := range steps {
		res, err := step.run(ctx, p)
		if foreign := (*notOwnedError)(nil); errors.As(err, &foreign) {
			p.conflict = foreign.verdict()
			r.summarize(p)
			return ctrl.Result{RequeueAfter: notOwnedRecheck}, nil
		}
		if err != nil {
			log.V(1).Info("step failed", "step", step.name, "error", err.Error())
			return ctrl.Result{}, err
		}
		if res != nil {
			log.V(1).Info("pass ends", "step", step.name, "requeueAfter", res.RequeueAfter)
			r.summarize(p)
			return p.withRecheck(*res), nil
		}
	}
	r.summarize(p)
	return p.withRecheck(ctrl.Result{}), nil
}

// withRecheck is res, requeued by the pass's recheckAfter at the latest.
func (p *pass) withRecheck(res ctrl.Result) ctrl.Result {
	if p.recheckAfter <= 0 {
		return res
	}
	return sooner(res, p.recheckAfter)
}

// currentPod returns the session pod this resource controls, or nil. A pod of that name that
// is not ours is never touched; checkOwnership reports it.
func (r *WhatsAppConnectionReconciler) currentPod(ctx context.Context, p *pass) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := r.Get(ctx, client.ObjectKey{Namespace: p.wac.Namespace, Name: sessionName(p.wac)}, pod)
	if err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(pod, p.wac) {
		return nil, nil
	}
	return pod, nil
}

// stop ends a pass with no requeue: a watch brings the resource back when something changes.
func stop() (*ctrl.Result, error) { return &ctrl.Result{}, nil }

// cacheLag is how soon a pass looks again after the API server said an object exists that the
// cache has not shown yet. The object's own create event is not relied on: creates of objects the
// controller owns are filtered out (see ownCreate).
const cacheLag = time.Second

// stopFor ends a pass and looks again after d.
func stopFor(d time.Duration) (*ctrl.Result, error) { return &ctrl.Result{RequeueAfter: d}, nil }

func (r *WhatsAppConnectionReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}
