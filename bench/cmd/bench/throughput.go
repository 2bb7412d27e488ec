package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
)

// benchThroughput compares the controller with the API server's floor: a loop that makes the
// same writes the controller makes per resource. Each side gets a fresh control plane of its
// own, one after the other. On a shared one the controller ran second against an API server
// that also held the floor's 4,500 objects, whose larger heap made every request cost more CPU.
//
// The figure is the median ratio of o.Sizes.ThroughputPairs pairs, floor then controller: this
// machine's speed drifts within minutes (the same code's API server took 48 and then 67 ms of CPU
// per resource, 2026-11-30), and one pair, each side ~20 s, gave 0.68–1.47 × for the same code.
func benchThroughput(ctx context.Context, o options, _ *binaries, res *results) error {
	res.noteLoad("throughput")
	n := o.Sizes.Throughput
	workers := controllers.DefaultOptions().MaxConcurrentReconciles
	type pair struct {
		floor, ctrl measured
		ns          string
		ratio       float64
	}
	var pairs []pair
	for i := range max(1, o.Sizes.ThroughputPairs) {
		floorNS, ctrlNS := fmt.Sprintf("bench-floor-%d", i+1), fmt.Sprintf("bench-throughput-%d", i+1)
		floorRun, err := measureSide(ctx, o, side{ns: floorNS,
			run: func(pc client.Client, _ *controlPlane) error { return floor(ctx, pc, floorNS, names(n), workers) },
		})
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		ctrlRun, err := measureSide(ctx, o, side{ns: ctrlNS,
			// Started before the clock, like an operator that is already running. Its cache is
			// limited to the namespace, as cmd/manager's would be with --namespace.
			before: func(viaProxy *rest.Config) (func(), error) {
				mgr, err := startManager(ctx, viaProxy, nil, ctrlNS)
				if err != nil {
					return nil, err
				}
				return func() { _ = mgr.stop() }, nil
			},
			run: func(pc client.Client, cp *controlPlane) error {
				if err := createAll(ctx, pc, ctrlNS, names(n), nil, nil); err != nil {
					return err
				}
				return waitReconciled(ctx, cp.cfg, ctrlNS, n, 10*time.Minute)
			},
		})
		if err != nil {
			return err
		}
		ratio := ctrlRun.took.Seconds() / floorRun.took.Seconds()
		fmt.Fprintf(os.Stderr, "   pair %d: controller %.1f s, floor %.1f s: %.2f ×\n", i+1, ctrlRun.took.Seconds(), floorRun.took.Seconds(), ratio)
		pairs = append(pairs, pair{floor: floorRun, ctrl: ctrlRun, ns: ctrlNS, ratio: ratio})
	}
	byRatio := slices.Clone(pairs)
	slices.SortFunc(byRatio, func(a, b pair) int { return cmp.Compare(a.ratio, b.ratio) })
	med := byRatio[len(byRatio)/2]
	var all []string
	for _, p := range pairs {
		all = append(all, fmt.Sprintf("%.2f", p.ratio))
	}
	ctrlTime, floorTime := med.ctrl.took, med.floor.took
	ctrlCPU, floorCPU := med.ctrl.cpu, med.floor.cpu
	ctrlWrites, ctrlReads, byKind := totals(med.ctrl.requests)
	floorWrites, floorReads, _ := totals(med.floor.requests)
	passes := reconcilePasses(med.ns)
	ratio := med.ratio
	perResource := map[string]float64{}
	for k, v := range byKind {
		if !strings.HasPrefix(k, "WATCH ") {
			perResource[k] = math.Round(float64(v)/float64(n)*100) / 100
		}
	}
	res.add(figure{
		Name: "reconcile throughput", Value: ratio, Unit: "× floor", Target: "≤ 1.3× floor", Pass: ratio <= 1.3,
		Detail: fmt.Sprintf("median of %d pairs (%s); %d resources: controller %.1f s (%.0f/s, %.1f writes + %.1f reads, %.1f passes per resource), floor %.1f s (%.0f/s, %d workers, %.1f writes + %.1f reads); controller %s; floor %s",
			len(pairs), strings.Join(all, " / "),
			n, ctrlTime.Seconds(), float64(n)/ctrlTime.Seconds(), float64(ctrlWrites)/float64(n), float64(ctrlReads)/float64(n), passes/float64(n),
			floorTime.Seconds(), float64(n)/floorTime.Seconds(), workers, float64(floorWrites)/float64(n), float64(floorReads)/float64(n),
			ctrlCPU.perResource(n), floorCPU.perResource(n)),
		Extra: map[string]any{"controllerSeconds": seconds(ctrlTime), "floorSeconds": seconds(floorTime), "resources": n, "workers": workers,
			"pairRatios":                    all,
			"controllerRequestsPerResource": perResource, "reconcilePassesPerResource": math.Round(passes/float64(n)*100) / 100},
	})
	return nil
}

// side is one side of the throughput figure: its namespace, what runs before the clock starts
// (nil: nothing; it returns how to stop it) and what the clock times.
type side struct {
	ns     string
	before func(viaProxy *rest.Config) (stop func(), err error)
	run    func(pc client.Client, cp *controlPlane) error
}

// measured is what a side took: time, CPU, and the requests counted at the proxy.
type measured struct {
	took     time.Duration
	cpu      cpuTimes
	requests map[string]map[string]int
}

// measureSide starts a fresh control plane, sends one write to the WhatsAppConnection
// resource outside the clock (the API server holds the first writes of a just-installed CRD's
// resources for ~2 s, see warmUp in sessions.go), and times s.run, whose client reaches the API
// server through a counting proxy.
func measureSide(ctx context.Context, o options, s side) (measured, error) {
	var m measured
	cp, err := startControlPlane(o)
	if err != nil {
		return m, err
	}
	defer cp.stop()
	if err := cp.namespace(ctx, s.ns); err != nil {
		return m, err
	}
	warm := newConnection(s.ns, "warmup")
	if err := cp.c.Create(ctx, warm); err != nil {
		return m, err
	}
	if err := cp.c.Delete(ctx, warm); err != nil {
		return m, err
	}
	proxy, err := startCountingProxy(cp.cfg)
	if err != nil {
		return m, err
	}
	defer proxy.close()
	viaProxy := &rest.Config{Host: proxy.url, QPS: clientQPS, Burst: clientBurst}
	pc, err := client.New(viaProxy, client.Options{Scheme: scheme})
	if err != nil {
		return m, err
	}
	if s.before != nil {
		stop, err := s.before(viaProxy)
		if err != nil {
			return m, err
		}
		defer stop()
	}
	proxy.reset()
	profiled := apiServerProfile(ctx, cp.cfg, s.ns)
	cpu, start := readCPU(), time.Now()
	err = s.run(pc, cp)
	m.took, m.cpu, m.requests = time.Since(start), readCPU().sub(cpu), proxy.snapshot()
	profiled()
	return m, err
}

// floor makes, per resource, the writes the controller makes for it, with as many workers as
// the controller has: the resource itself (the apply), its finalizer, ServiceAccount, Role,
// RoleBinding, PVC, Lease, Pod, the send API's Service, NetworkPolicy and auth-delegator
// ClusterRoleBinding, the SessionPodCreated event and one status write. No reads: the controller reads from its
// cache, which costs the API server nothing per resource.
func floor(ctx context.Context, c client.Client, ns string, nameList []string, workers int) error {
	return parallel(len(nameList), workers, func(i int) error {
		name := nameList[i]
		wac := newConnection(ns, name)
		if err := c.Create(ctx, wac); err != nil {
			return err
		}
		wac.Finalizers = append(wac.Finalizers, "whatsapp.waoperator.io/session-cleanup")
		if err := c.Update(ctx, wac); err != nil {
			return err
		}
		owner := []metav1.OwnerReference{{
			APIVersion: whatsappv1alpha1.GroupVersion.String(), Kind: "WhatsAppConnection", Name: wac.Name, UID: wac.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
		meta := func(n string) metav1.ObjectMeta {
			return metav1.ObjectMeta{Namespace: ns, Name: n, OwnerReferences: owner,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "whatsapp-operator-floor", "whatsapp.waoperator.io/connection": name}}
		}
		session := name + "-session"
		objs := []client.Object{
			&corev1.ServiceAccount{ObjectMeta: meta(session), AutomountServiceAccountToken: ptr.To(true)},
			&rbacv1.Role{ObjectMeta: meta(session), Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{session}, Verbs: []string{"get", "watch", "update"}},
				{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections"}, ResourceNames: []string{name}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections/status"}, ResourceNames: []string{name}, Verbs: []string{"patch"}},
			}},
			&rbacv1.RoleBinding{ObjectMeta: meta(session),
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: session},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: session, Namespace: ns}}},
			&corev1.PersistentVolumeClaim{ObjectMeta: meta(name + "-store"), Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			}},
			&coordinationv1.Lease{ObjectMeta: meta(session)},
			floorPod(meta(session), name),
		}
		objs = append(objs, floorSendAPI(meta(session), name)...)
		for _, obj := range objs {
			if err := c.Create(ctx, obj); err != nil {
				return err
			}
		}
		// The event the controller records for the new pod (client-go's events recorder writes
		// this object, events.k8s.io/v1).
		now := time.Now()
		event := &eventsv1.Event{
			ObjectMeta:          metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%x", name, now.UnixNano())},
			EventTime:           metav1.NewMicroTime(now),
			ReportingController: "whatsapp-operator", ReportingInstance: "whatsapp-operator-floor",
			Action: "Create", Reason: "SessionPodCreated", Type: corev1.EventTypeNormal,
			Regarding: corev1.ObjectReference{APIVersion: whatsappv1alpha1.GroupVersion.String(), Kind: "WhatsAppConnection",
				Namespace: ns, Name: name, UID: wac.UID, ResourceVersion: wac.ResourceVersion},
			Note: "created session pod " + session,
		}
		if err := c.Create(ctx, event); err != nil {
			return err
		}
		patch := client.MergeFrom(wac.DeepCopy())
		wac.Status.Phase = whatsappv1alpha1.PhasePending
		wac.Status.SessionPod = session
		return c.Status().Patch(ctx, wac, patch)
	})
}

// floorSendAPI is the send API's Service, its NetworkPolicy and the session's binding to
// system:auth-delegator, about the size of the controller's.
func floorSendAPI(meta metav1.ObjectMeta, name string) []client.Object {
	selector := map[string]string{"app.kubernetes.io/name": "whatsapp-session", whatsappv1alpha1.ConnectionLabel: name}
	tcp := corev1.ProtocolTCP
	port := func(p int32) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(p)
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &v}
	}
	binding := metav1.ObjectMeta{Name: "whatsapp-session:" + meta.Namespace + ":" + name, Labels: meta.Labels,
		Annotations: map[string]string{"whatsapp.waoperator.io/owner": meta.Namespace + "/" + name}}
	return []client.Object{
		&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{
			Name: "send-api", Protocol: tcp, Port: 80, TargetPort: intstr.FromInt32(8090)}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selector},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: []networkingv1.NetworkPolicyPort{port(8090)}, From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				{Ports: []networkingv1.NetworkPolicyPort{port(8081), port(8080)}},
			}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: binding,
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: meta.Name, Namespace: meta.Namespace}}},
	}
}

// floorPod is about the size of the controller's session pod, with the restricted security
// context and the store volume; nobody runs it.
func floorPod(meta metav1.ObjectMeta, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{
		ServiceAccountName: meta.Name,
		RestartPolicy:      corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), FSGroup: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Volumes: []corev1.Volume{{Name: "store", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name + "-store"}}}},
		Containers: []corev1.Container{{
			Name: "session", Image: benchImage, Command: []string{"/session"},
			Args: []string{"--connection=" + name, "--lease=" + meta.Name, "--lease-duration=15s", "--renew-deadline=12.5s", "--retry-period=10s",
				"--health-probe-bind-address=:8081", "--metrics-bind-address=:8080"},
			Env: []corev1.EnvVar{
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
				{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
				{Name: "WA_SQLITE_PATH", Value: "/var/lib/whatsapp/device.db"},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "store", MountPath: "/var/lib/whatsapp"}},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		}},
	}}
}

// reconcilePasses reads the controller's own pass counter (the in-process manager registers it
// in controller-runtime's registry): how many times each resource went through Reconcile.
func reconcilePasses(ns string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "whatsapp_operator_reconcile_passes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && l.GetValue() == ns {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
