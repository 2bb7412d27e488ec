package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

const (
	// podSpecHashAnnotation records the hash of the pod spec the controller rendered; a different
	// hash for the current spec means the pod must be replaced.
	podSpecHashAnnotation = "whatsapp.waoperator.io/pod-spec-hash"

	sessionContainer = "session"
	healthPort       = 8081
	metricsPort      = 8080
	storeMountPath   = "/var/lib/whatsapp"
	// storeSecretPath holds the store Secret's DSN key as a file the kubelet keeps current.
	storeSecretPath = "/var/run/whatsapp/store-secret"
	// sessionUID is distroless's nonroot user; fsGroup makes the store volume writable by it.
	sessionUID int64 = 65532
	// minHealthyRun: a session pod that ran at least this long before it exited is replaced at
	// once; one that ran less waits the crash backoff, which doubles with each such exit in a row
	// (after connectedFreeExits of them when the session had logged in).
	minHealthyRun = 30 * time.Second
	// podRejectedRetry is how long the controller waits before it offers a refused pod again.
	podRejectedRetry = time.Minute
)

// ensurePod keeps exactly one session pod. It never creates a pod while one exists, terminating
// ones included (the fixed name makes the API server refuse it anyway); it replaces a pod that
// exited or whose spec is out of date by deleting it and waiting until it is gone.
//
// A pod whose session container the kubelet reports terminated holds nothing any more: its
// Lease is released at once (naming that pod, over the version read) and the pod is deleted
// without a grace period, so a crash costs a pod start, not a Lease duration.
func (r *WhatsAppConnectionReconciler) ensurePod(ctx context.Context, p *pass) (*ctrl.Result, error) {
	desired, err := r.desiredPod(p.wac)
	if err != nil {
		return nil, err
	}
	if pod := p.pod; pod != nil {
		exited := sessionExited(pod)
		exits := 0
		if exited {
			if exits, err = r.recordExit(ctx, p, pod); err != nil {
				return nil, err
			}
		}
		switch {
		case !pod.DeletionTimestamp.IsZero():
			p.waiting = &verdict{whatsappv1alpha1.ReasonWaitingForPod, fmt.Sprintf("waiting for the old session pod %s to be gone", pod.Name)}
			if exited {
				// Nothing is left to stop: do not wait for the kubelet to confirm.
				return stop2(r.deleteExited(ctx, pod))
			}
			// On a lost node nobody would ever confirm it.
			if res, err := r.replaceUnresponsive(ctx, p); res != nil || err != nil {
				return res, err
			}
			return stop()
		case exited:
			if wait := r.crashBackoff(pod, exits, loggedIn(p.wac, pod)); wait > 0 {
				p.waiting = &verdict{whatsappv1alpha1.ReasonPodCrashed, fmt.Sprintf(
					"session pod %s exited soon after it started (%s, %d in a row); replacing it in %s", pod.Name, exitSummary(pod), exits, wait.Round(time.Second))}
				return stopFor(wait)
			}
			r.warn(p.wac, "SessionPodExited", "Replace", fmt.Sprintf("session pod %s exited (%s); replacing it", pod.Name, exitSummary(pod)))
			if err := r.deleteExited(ctx, pod); err != nil {
				return nil, err
			}
			p.pod = nil
			p.waiting = &verdict{whatsappv1alpha1.ReasonWaitingForPod, fmt.Sprintf("waiting for the old session pod %s to be gone", pod.Name)}
			return stop()
		case pod.Annotations[podSpecHashAnnotation] != desired.Annotations[podSpecHashAnnotation]:
			return r.deletePodAndWait(ctx, p, "SessionPodOutdated", fmt.Sprintf("the session pod spec changed; replacing %s", pod.Name))
		}
		if v := storeSecretVerdict(p.wac, pod); v != nil {
			p.waiting = v
		}
		return r.replaceUnresponsive(ctx, p)
	}

	// A predecessor that did not release its Lease (a force-deleted pod on a partitioned node)
	// is not waited for here: the new session takes that Lease only once it is released or it
	// has seen it unchanged for a Lease duration on its own clock.
	if err := controllerutil.SetControllerReference(p.wac, desired, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, desired); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// The cache is behind, or the name is taken by a pod the cache does not hold.
			return r.alreadyExists(ctx, p.wac, desired)
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			// Admission refused the pod (an unknown priority class, a quota, a policy). Say so, and
			// look again in a while rather than in a hot loop; a spec change comes back at once.
			p.waiting = &verdict{whatsappv1alpha1.ReasonPodRejected, "the API server refused the session pod: " + err.Error()}
			return stopFor(podRejectedRetry)
		}
		return nil, err
	}
	p.pod = desired
	r.normal(p.wac, "SessionPodCreated", "Create", "created session pod "+desired.Name)
	// A pass that created the pod ends here, and the next one, queued behind the resources still
	// waiting for their first, makes the send API's Service and binding and writes the status:
	// of many resources applied at once, every pod is created before any of those, which the
	// session needs neither to start nor to show a QR code.
	p.statusNext = true
	return stopFor(followUpAfter)
}

// followUpAfter is when the pass after the one that created the pod is queued: by then the
// cache normally holds the pod (otherwise that pass finds it by a failed create, see
// alreadyExists, and looks again a second later).
const followUpAfter = 100 * time.Millisecond

// stop2 ends the pass, or fails it with err.
func stop2(err error) (*ctrl.Result, error) {
	if err != nil {
		return nil, err
	}
	return stop()
}

// deleteExited removes a pod whose session container has terminated without a grace period:
// the kubelet has nothing left to stop, and the name is free for the successor at once.
func (r *WhatsAppConnectionReconciler) deleteExited(ctx context.Context, pod *corev1.Pod) error {
	err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(0))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// deletePodAndWait deletes the current pod (only that incarnation, by UID) and ends the pass;
// the pod's deletion event brings the resource back.
func (r *WhatsAppConnectionReconciler) deletePodAndWait(ctx context.Context, p *pass, reason, message string) (*ctrl.Result, error) {
	pod := p.pod
	err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return nil, err
	}
	if reason != "" {
		r.normal(p.wac, reason, "Delete", message)
	}
	p.pod = nil
	if p.waiting == nil {
		p.waiting = &verdict{whatsappv1alpha1.ReasonWaitingForPod, fmt.Sprintf("waiting for the old session pod %s to be gone", pod.Name)}
	}
	return stop()
}

func exitSummary(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("container %s exit code %d, reason %q", cs.Name, t.ExitCode, t.Reason)
		}
	}
	return "phase " + string(pod.Status.Phase)
}

// desiredPod renders the session pod. Everything a tenant can set is scheduling and resources;
// the program, its arguments and environment come from the operator.
func (r *WhatsAppConnectionReconciler) desiredPod(wac *whatsappv1alpha1.WhatsAppConnection) (*corev1.Pod, error) {
	s := wac.Spec.Session
	image := r.Session.Image
	if s.Image != "" {
		image = s.Image
	}
	resources := *r.Session.Resources.DeepCopy()
	if s.Resources != nil {
		resources = *s.Resources
	}

	env := []corev1.EnvVar{
		fieldEnv(sessionenv.ConnectionName, "metadata.labels['"+whatsappv1alpha1.ConnectionLabel+"']"),
		fieldEnv(sessionenv.Namespace, "metadata.namespace"),
		fieldEnv(sessionenv.PodName, "metadata.name"),
		fieldEnv(sessionenv.PodUID, "metadata.uid"),
		{Name: sessionenv.LeaseName, Value: sessionName(wac)},
	}
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
	switch {
	case wac.Spec.Store.Postgres != nil:
		ref := wac.Spec.Store.Postgres.SecretRef
		env = append(env, corev1.EnvVar{Name: sessionenv.StoreType, Value: sessionenv.StorePostgres}, corev1.EnvVar{
			Name: sessionenv.PostgresDSN,
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: secretKey(ref),
			}},
		}, corev1.EnvVar{Name: sessionenv.PostgresDSNFile, Value: storeSecretPath + "/dsn"})
		// The same key as a file: optional, so that the env's CreateContainerConfigError (which
		// the controller classifies) is what a missing Secret or key shows, and kept current by
		// the kubelet, so that the session sees a changed Secret and rolls its pod.
		volumes = append(volumes, corev1.Volume{Name: "store-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: ref.Name, Optional: ptr.To(true), DefaultMode: ptr.To[int32](0o440),
			Items: []corev1.KeyToPath{{Key: secretKey(ref), Path: "dsn"}},
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "store-secret", MountPath: storeSecretPath, ReadOnly: true})
	default:
		env = append(env, corev1.EnvVar{Name: sessionenv.StoreType, Value: sessionenv.StoreSQLite}, corev1.EnvVar{Name: sessionenv.SQLitePath, Value: storeMountPath + "/device.db"})
		volumes = append(volumes, corev1.Volume{Name: "store", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: storeName(wac)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: "store", MountPath: storeMountPath})
	}
	sinks, err := eventsEnv(wac)
	if err != nil {
		return nil, err
	}
	env = append(env, sinks...)
	if v, m := sendTLSVolume(wac.Spec.Send); v != nil {
		volumes, mounts = append(volumes, *v), append(mounts, *m)
	}

	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
			PeriodSeconds: period, FailureThreshold: 3, TimeoutSeconds: 2,
		}
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      sessionName(wac),
			Namespace: wac.Namespace,
			Labels:    commonLabels(wac),
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:            sessionName(wac),
			AutomountServiceAccountToken:  ptr.To(true),
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			EnableServiceLinks:            ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:        ptr.To(true),
				RunAsUser:           ptr.To(sessionUID),
				RunAsGroup:          ptr.To(sessionUID),
				FSGroup:             ptr.To(sessionUID),
				FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
				SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            sessionContainer,
				Image:           image,
				ImagePullPolicy: s.ImagePullPolicy,
				Command:         []string{"/session"},
				Args: append([]string{
					flag(sessionenv.FlagHealthProbeBindAddress, ":"+strconv.Itoa(healthPort)),
					flag(sessionenv.FlagMetricsBindAddress, ":"+strconv.Itoa(metricsPort)),
					flag(sessionenv.FlagSendAPIBindAddress, ":"+strconv.Itoa(sessionenv.SendAPIPort)),
					flag(sessionenv.FlagLeaseDuration, r.Session.LeaseDuration.String()),
					flag(sessionenv.FlagRenewDeadline, r.Session.RenewDeadline.String()),
					flag(sessionenv.FlagRetryPeriod, r.Session.RetryPeriod.String()),
				}, sendFlags(wac.Spec.Send)...),
				Env: env,
				Ports: []corev1.ContainerPort{
					{Name: "health", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
					{Name: sessionenv.SendAPIPortName, ContainerPort: sessionenv.SendAPIPort, Protocol: corev1.ProtocolTCP},
				},
				ReadinessProbe: probe("/readyz", 5),
				LivenessProbe:  probe("/healthz", 10),
				Resources:      resources,
				VolumeMounts:   mounts,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					RunAsNonRoot:             ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
			Volumes:           volumes,
			NodeSelector:      s.NodeSelector,
			Tolerations:       s.Tolerations,
			Affinity:          s.Affinity,
			PriorityClassName: s.PriorityClassName,
		},
	}
	raw, err := json.Marshal(pod.Spec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	pod.Annotations = map[string]string{podSpecHashAnnotation: hex.EncodeToString(sum[:8])}
	return pod, nil
}

func flag(name, value string) string { return "--" + name + "=" + value }

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func secretKey(ref whatsappv1alpha1.SecretKeyRef) string {
	if ref.Key == "" {
		return "dsn"
	}
	return ref.Key
}
