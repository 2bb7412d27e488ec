package controllers

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// Table tests of the controller's decisions, each a pure function of what a pass read: they
// run in milliseconds, where the envtest suite proves the same rules against an API server.

func TestSummarize(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-session", UID: "pod-1"}}
	report := func(st whatsappv1alpha1.SessionState, mutate ...func(*whatsappv1alpha1.ConnectionStatus)) *whatsappv1alpha1.ConnectionStatus {
		c := &whatsappv1alpha1.ConnectionStatus{State: st, Holder: &whatsappv1alpha1.Holder{Pod: "shop-session", UID: "pod-1"}, Message: "m"}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	type want struct {
		phase              whatsappv1alpha1.Phase
		ready              metav1.ConditionStatus
		readyReason        string
		conflict, degraded string // reason when True, "" when False
		paired             metav1.ConditionStatus
	}
	cases := map[string]struct {
		conn                        *whatsappv1alpha1.ConnectionStatus
		pod                         *corev1.Pod
		conflict, degraded, waiting *verdict
		suspended                   bool
		want                        want
	}{
		"no pod yet": {want: want{whatsappv1alpha1.PhasePending, metav1.ConditionFalse, whatsappv1alpha1.ReasonPodPending, "", "", metav1.ConditionUnknown}},
		"connected": {conn: report(whatsappv1alpha1.SessionConnected, func(c *whatsappv1alpha1.ConnectionStatus) { c.JID = "1:2@s.whatsapp.net" }), pod: pod,
			want: want{whatsappv1alpha1.PhaseConnected, metav1.ConditionTrue, string(whatsappv1alpha1.SessionConnected), "", "", metav1.ConditionTrue}},
		"pairing": {conn: report(whatsappv1alpha1.SessionPairing), pod: pod,
			want: want{whatsappv1alpha1.PhasePairing, metav1.ConditionFalse, string(whatsappv1alpha1.SessionPairing), "", "", metav1.ConditionFalse}},
		"a report from an older pod says nothing": {conn: report(whatsappv1alpha1.SessionConnected, func(c *whatsappv1alpha1.ConnectionStatus) { c.Holder.UID = "pod-0" }), pod: pod,
			want: want{whatsappv1alpha1.PhasePending, metav1.ConditionFalse, whatsappv1alpha1.ReasonPodPending, "", "", metav1.ConditionUnknown}},
		"a report without a pod says nothing": {conn: report(whatsappv1alpha1.SessionConnected),
			want: want{whatsappv1alpha1.PhasePending, metav1.ConditionFalse, whatsappv1alpha1.ReasonPodPending, "", "", metav1.ConditionUnknown}},
		"the session's ban": {conn: report(whatsappv1alpha1.SessionTemporaryBan), pod: pod,
			want: want{whatsappv1alpha1.PhaseDegraded, metav1.ConditionFalse, whatsappv1alpha1.ReasonTemporaryBan, "", whatsappv1alpha1.ReasonTemporaryBan, metav1.ConditionUnknown}},
		"a conflict wins over a degraded report": {conn: report(whatsappv1alpha1.SessionConnectFailure), pod: pod, conflict: &verdict{whatsappv1alpha1.ReasonDuplicateDevice, "x"},
			want: want{whatsappv1alpha1.PhaseConflict, metav1.ConditionFalse, whatsappv1alpha1.ReasonDuplicateDevice, whatsappv1alpha1.ReasonDuplicateDevice, whatsappv1alpha1.ReasonConnectFailure, metav1.ConditionUnknown}},
		"the reconnect limit": {conn: report(whatsappv1alpha1.SessionDisconnected), pod: pod, degraded: &verdict{whatsappv1alpha1.ReasonReconnectLimit, "x"},
			want: want{whatsappv1alpha1.PhaseDegraded, metav1.ConditionFalse, whatsappv1alpha1.ReasonReconnectLimit, "", whatsappv1alpha1.ReasonReconnectLimit, metav1.ConditionUnknown}},
		"suspended": {suspended: true,
			want: want{whatsappv1alpha1.PhaseSuspended, metav1.ConditionFalse, whatsappv1alpha1.ReasonSuspended, "", "", metav1.ConditionUnknown}},
		"waiting for the store Secret": {waiting: &verdict{whatsappv1alpha1.ReasonSecretNotFound, "x"}, pod: pod,
			want: want{whatsappv1alpha1.PhasePending, metav1.ConditionFalse, whatsappv1alpha1.ReasonSecretNotFound, "", "", metav1.ConditionUnknown}},
	}
	for name, c := range cases {
		wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop", Generation: 2}}
		wac.Status.Connection = c.conn
		p := newPass(wac)
		p.pod, p.conflict, p.degraded, p.waiting, p.suspended = c.pod, c.conflict, c.degraded, c.waiting, c.suspended
		(&WhatsAppConnectionReconciler{}).summarize(p)
		got := p.status
		cond := func(typ string) metav1.Condition {
			for _, x := range got.Conditions {
				if x.Type == typ {
					return x
				}
			}
			t.Fatalf("%s: no %s condition", name, typ)
			return metav1.Condition{}
		}
		trueReason := func(typ string) string {
			if x := cond(typ); x.Status == metav1.ConditionTrue {
				return x.Reason
			}
			return ""
		}
		ready := cond(whatsappv1alpha1.ConditionReady)
		if got.Phase != c.want.phase || ready.Status != c.want.ready || ready.Reason != c.want.readyReason ||
			trueReason(whatsappv1alpha1.ConditionConflict) != c.want.conflict || trueReason(whatsappv1alpha1.ConditionDegraded) != c.want.degraded ||
			cond(whatsappv1alpha1.ConditionPaired).Status != c.want.paired {
			t.Errorf("%s: phase %s, Ready %s/%s, Conflict %q, Degraded %q, Paired %s; want %+v", name, got.Phase, ready.Status, ready.Reason,
				trueReason(whatsappv1alpha1.ConditionConflict), trueReason(whatsappv1alpha1.ConditionDegraded), cond(whatsappv1alpha1.ConditionPaired).Status, c.want)
		}
		if got.ObservedGeneration != 2 {
			t.Errorf("%s: observedGeneration %d", name, got.ObservedGeneration)
		}
		if wantPod := c.pod != nil; (got.SessionPod != "") != wantPod {
			t.Errorf("%s: sessionPod %q", name, got.SessionPod)
		}
	}
}

func TestDuplicateClaim(t *testing.T) {
	at := func(ns, name, uid string, sec int64, deleting bool) whatsappv1alpha1.WhatsAppConnection {
		w := whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), CreationTimestamp: metav1.Unix(sec, 0)}}
		if deleting {
			w.DeletionTimestamp = ptr.To(metav1.Unix(sec+1, 0))
		}
		return w
	}
	me := at("a", "shop", "me", 100, false)
	phone := claims[0]
	cases := map[string]struct {
		others   []whatsappv1alpha1.WhatsAppConnection
		want     string // substring of the message; "" for no conflict
		unwanted string
	}{
		"alone (the index finds this one)": {others: []whatsappv1alpha1.WhatsAppConnection{me}},
		"an older one here":                {others: []whatsappv1alpha1.WhatsAppConnection{me, at("a", "first", "o", 50, false)}, want: "the older WhatsAppConnection first"},
		"a younger one here":               {others: []whatsappv1alpha1.WhatsAppConnection{at("a", "later", "o", 150, false)}},
		"an older one on its way out":      {others: []whatsappv1alpha1.WhatsAppConnection{at("a", "first", "o", 50, true)}},
		"same second, earlier name":        {others: []whatsappv1alpha1.WhatsAppConnection{at("a", "abc", "o", 100, false)}, want: "the older WhatsAppConnection abc"},
		"same second, later name":          {others: []whatsappv1alpha1.WhatsAppConnection{at("a", "zzz", "o", 100, false)}},
		"an older one in another namespace": {others: []whatsappv1alpha1.WhatsAppConnection{at("tenant-b", "secret-name", "o", 50, false)},
			want: "an older WhatsAppConnection in another namespace", unwanted: "secret-name"},
	}
	for name, c := range cases {
		v := duplicateClaim(&me, phone, "+14155550100", c.others)
		switch {
		case c.want == "" && v != nil:
			t.Errorf("%s: halted: %+v", name, v)
		case c.want != "" && (v == nil || v.reason != whatsappv1alpha1.ReasonDuplicatePhoneNumber || !strings.Contains(v.message, c.want)):
			t.Errorf("%s: got %+v, want %s mentioning %q", name, v, whatsappv1alpha1.ReasonDuplicatePhoneNumber, c.want)
		case c.unwanted != "" && strings.Contains(v.message, c.unwanted):
			t.Errorf("%s: the message names %q: %s", name, c.unwanted, v.message)
		}
	}
}

func TestForeignHolder(t *testing.T) {
	lease := func(holder *string) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: holder}}
	}
	cases := map[string]struct {
		holder *string
		want   string
	}{
		"free":                               {nil, ""},
		"released":                           {ptr.To(""), ""},
		"a session pod of this resource":     {ptr.To(sessionenv.LeaseIdentity("shop-session", "uid-1")), ""},
		"the session's name":                 {ptr.To("shop-session"), ""},
		"another client":                     {ptr.To("rogue"), "rogue"},
		"a pod whose name only starts alike": {ptr.To("shop-session-copy_uid"), "shop-session-copy_uid"},
		"no UID after the separator":         {ptr.To("shop-session_"), "shop-session_"},
	}
	for name, c := range cases {
		if got := foreignHolder(lease(c.holder), "shop-session"); got != c.want {
			t.Errorf("%s: foreignHolder = %q, want %q", name, got, c.want)
		}
	}
}

func TestWatchFilters(t *testing.T) {
	wac := func(mutate func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
		w := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Name: "shop", Generation: 1}}
		mutate(w)
		return w
	}
	pod := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-session"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		mutate(p)
		return p
	}
	lease := func(holder string, renewed int64) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), RenewTime: ptr.To(metav1.NewMicroTime(time.Unix(renewed, 0)))}}
	}
	node := func(ready corev1.ConditionStatus, heartbeat int64) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Unix(heartbeat, 0)}}}}
	}
	none := func(*whatsappv1alpha1.WhatsAppConnection) {}
	noPod := func(*corev1.Pod) {}
	cases := map[string]struct {
		filter   interface{ Update(event.UpdateEvent) bool }
		old, new client.Object
		want     bool
	}{
		"resource: the controller's own status write": {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) { w.Status.Phase = whatsappv1alpha1.PhaseConnected }), false},
		"resource: a finalizer added":                 {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) { w.Finalizers = []string{finalizer} }), false},
		"resource: a spec change":                     {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) { w.Generation = 2 }), true},
		"resource: a request annotation": {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: "1"}
		}), true},
		"resource: deletion": {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) { w.DeletionTimestamp = ptr.To(metav1.Now()) }), true},
		"resource: the session's report": {worthAPass{}, wac(none), wac(func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Status.Connection = &whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing}
		}), true},
		"lease: a renewal":     {leaseHolderChanged{}, lease("a", 1), lease("a", 2), false},
		"lease: a new holder":  {leaseHolderChanged{}, lease("a", 1), lease("b", 1), true},
		"pod: readiness flips": {podLifecycleChanged{}, pod(noPod), pod(func(p *corev1.Pod) { p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady}} }), false},
		"pod: phase":           {podLifecycleChanged{}, pod(noPod), pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), true},
		"pod: deletion":        {podLifecycleChanged{}, pod(noPod), pod(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }), true},
		"pod: spec hash":       {podLifecycleChanged{}, pod(noPod), pod(func(p *corev1.Pod) { p.Annotations = map[string]string{podSpecHashAnnotation: "x"} }), true},
		"pod: the container waits anew": {podLifecycleChanged{}, pod(noPod), pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: sessionContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError"}}}}
		}), true},
		"claim: bound":      {ownershipChanged{}, &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}, false},
		"claim: new owner":  {ownershipChanged{}, &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Name: "x"}}}}, true},
		"node: a heartbeat": {nodeReadinessChanged{}, node(corev1.ConditionTrue, 1), node(corev1.ConditionTrue, 2), false},
		"node: not ready":   {nodeReadinessChanged{}, node(corev1.ConditionTrue, 1), node(corev1.ConditionUnknown, 2), true},
	}
	for name, c := range cases {
		if got := c.filter.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.want {
			t.Errorf("%s: Update = %v, want %v", name, got, c.want)
		}
	}

	owned := func(kind, apiVersion string) client.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: kind, APIVersion: apiVersion, Controller: ptr.To(true), Name: "shop"}}}}
	}
	creates := map[string]struct {
		obj  client.Object
		want bool
	}{
		"one the controller made":       {owned("WhatsAppConnection", whatsappv1alpha1.GroupVersion.String()), false},
		"a foreign blocker":             {&corev1.Pod{}, true},
		"controlled by something else":  {owned("ReplicaSet", "apps/v1"), true},
		"same kind name, another group": {owned("WhatsAppConnection", "example.com/v1"), true},
	}
	for name, c := range creates {
		if got := (notOwnCreate{}).Create(event.CreateEvent{Object: c.obj}); got != c.want {
			t.Errorf("create of %s: %v, want %v", name, got, c.want)
		}
	}
}

func TestDesiredPod(t *testing.T) {
	r := &WhatsAppConnectionReconciler{Session: SessionConfig{
		Image: "example.com/operator:v1", Resources: DefaultOptions().Session.Resources,
		LeaseDuration: 40 * time.Second, RenewDeadline: 32 * time.Second, RetryPeriod: 10 * time.Second,
	}}
	base := func(mutate func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
		w := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop"}}
		if mutate != nil {
			mutate(w)
		}
		return w
	}
	render := func(w *whatsappv1alpha1.WhatsAppConnection) (*corev1.Pod, map[string]corev1.EnvVar) {
		pod, err := r.desiredPod(w)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e
		}
		return pod, env
	}

	pod, env := render(base(nil))
	c := pod.Spec.Containers[0]
	if c.Image != "example.com/operator:v1" || c.Command[0] != "/session" || pod.Spec.ServiceAccountName != "shop-session" || pod.Name != "shop-session" {
		t.Errorf("defaults: image %s, command %v, service account %s, name %s", c.Image, c.Command, pod.Spec.ServiceAccountName, pod.Name)
	}
	if env[sessionenv.StoreType].Value != sessionenv.StoreSQLite || env[sessionenv.SQLitePath].Value != storeMountPath+"/device.db" {
		t.Errorf("SQLite store env: %v", env)
	}
	if !hasVolume(pod, func(v corev1.Volume) bool {
		return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "shop-store"
	}) {
		t.Error("no store claim mounted")
	}
	for _, arg := range []string{"--lease-duration=40s", "--renew-deadline=32s", "--retry-period=10s"} {
		if !strings.Contains(strings.Join(c.Args, " "), arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	if !c.Resources.Requests.Memory().Equal(resource.MustParse("64Mi")) || *pod.Spec.SecurityContext.RunAsNonRoot != true || *c.SecurityContext.ReadOnlyRootFilesystem != true {
		t.Errorf("resources %v or security context not the defaults", c.Resources)
	}
	hash := pod.Annotations[podSpecHashAnnotation]
	if again, _ := render(base(nil)); again.Annotations[podSpecHashAnnotation] != hash || hash == "" {
		t.Error("the spec hash is not stable")
	}

	pg, pgEnv := render(base(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "db"}}
	}))
	if pgEnv[sessionenv.StoreType].Value != sessionenv.StorePostgres || pgEnv[sessionenv.PostgresDSN].ValueFrom.SecretKeyRef.Name != "db" ||
		pgEnv[sessionenv.PostgresDSN].ValueFrom.SecretKeyRef.Key != "dsn" || pgEnv[sessionenv.PostgresDSN].Value != "" {
		t.Errorf("Postgres env: %v", pgEnv[sessionenv.PostgresDSN])
	}
	if hasVolume(pg, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }) ||
		!hasVolume(pg, func(v corev1.Volume) bool {
			return v.Secret != nil && v.Secret.SecretName == "db" && *v.Secret.Optional
		}) {
		t.Error("a Postgres store mounts a claim, or not its optional Secret volume")
	}
	if pg.Annotations[podSpecHashAnnotation] == hash {
		t.Error("a store change does not change the spec hash")
	}

	custom, _ := render(base(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Spec.Session.Image = "example.com/custom:v2"
		w.Spec.Session.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
		w.Spec.Session.NodeSelector = map[string]string{"zone": "a"}
		w.Spec.Session.PriorityClassName = "high"
	}))
	cc := custom.Spec.Containers[0]
	if cc.Image != "example.com/custom:v2" || !cc.Resources.Limits.Memory().Equal(resource.MustParse("1Gi")) || cc.Resources.Requests != nil ||
		custom.Spec.NodeSelector["zone"] != "a" || custom.Spec.PriorityClassName != "high" {
		t.Errorf("the resource's session settings are not used: %s %v %v %s", cc.Image, cc.Resources, custom.Spec.NodeSelector, custom.Spec.PriorityClassName)
	}
	if strings.Join(cc.Command, " ") != "/session" || len(cc.Env) != len(c.Env) {
		t.Error("a resource changed the session's program or environment")
	}
}

func hasVolume(pod *corev1.Pod, match func(corev1.Volume) bool) bool {
	for _, v := range pod.Spec.Volumes {
		if match(v) {
			return true
		}
	}
	return false
}
