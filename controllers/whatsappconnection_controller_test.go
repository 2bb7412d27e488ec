//go:build !unit

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

var _ = Describe("WhatsAppConnection session objects", func() {
	It("creates a ServiceAccount, Role, RoleBinding, PVC, Lease and one restricted session pod, all controlled by the resource", func() {
		ns := newNamespace()
		newConnection(ns, "alpha")
		pod := sessionPod(ns, "alpha")
		wac := get(ns, "alpha")

		key := client.ObjectKey{Namespace: ns, Name: "alpha-session"}
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &coordinationv1.Lease{}} {
			Eventually(func() error { return k8sClient.Get(ctx, key, obj) }).Should(Succeed())
			Expect(metav1.IsControlledBy(obj, wac)).To(BeTrue(), "%T must be controlled by the resource", obj)
		}
		pvc := &corev1.PersistentVolumeClaim{}
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "alpha-store"}, pvc) }).Should(Succeed())
		Expect(metav1.IsControlledBy(pvc, wac)).To(BeTrue())
		Expect(pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi"))).To(BeTrue())

		lease := &coordinationv1.Lease{}
		Expect(k8sClient.Get(ctx, key, lease)).To(Succeed())
		Expect(lease.Spec.HolderIdentity).To(BeNil(), "the controller creates the Lease; only the session holds it")

		Expect(metav1.IsControlledBy(pod, wac)).To(BeTrue())
		Expect(pod.Spec.ServiceAccountName).To(Equal("alpha-session"))
		Expect(pod.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
		// Restricted Pod Security Standard.
		psc := pod.Spec.SecurityContext
		Expect(*psc.RunAsNonRoot).To(BeTrue())
		Expect(psc.FSGroup).NotTo(BeNil(), "a non-root session can write its store only with an fsGroup")
		Expect(psc.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
		c := pod.Spec.Containers[0]
		Expect(c.Image).To(Equal("example.com/whatsapp-operator:test"))
		Expect(c.Command).To(Equal([]string{"/session"}))
		Expect(c.Resources).To(Equal(DefaultOptions().Session.Resources), "the manager's default session resources")
		Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
		Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		// Identity through the downward API, the store on the claim.
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		Expect(env[sessionenv.PodName].ValueFrom.FieldRef.FieldPath).To(Equal("metadata.name"))
		Expect(env[sessionenv.PodUID].ValueFrom.FieldRef.FieldPath).To(Equal("metadata.uid"))
		Expect(env[sessionenv.Namespace].ValueFrom.FieldRef.FieldPath).To(Equal("metadata.namespace"))
		Expect(env[sessionenv.LeaseName].Value).To(Equal("alpha-session"))
		Expect(env[sessionenv.SQLitePath].Value).To(HavePrefix(storeMountPath))
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim.ClaimName", "alpha-store")))

		Eventually(func() string { return get(ns, "alpha").Status.SessionPod }).Should(Equal("alpha-session"))
		Expect(get(ns, "alpha").Status.Phase).To(Equal(whatsappv1alpha1.PhasePending))
	})

	It("passes a Postgres DSN by secretKeyRef and mounts no claim", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pg"}, StringData: map[string]string{"uri": "postgres://x"}})).To(Succeed())
		newConnection(ns, "pgconn", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "pg", Key: "uri"}}
		})
		pod := sessionPod(ns, "pgconn")
		var dsn *corev1.EnvVar
		for i, e := range pod.Spec.Containers[0].Env {
			if e.Name == sessionenv.PostgresDSN {
				dsn = &pod.Spec.Containers[0].Env[i]
			}
		}
		Expect(dsn).NotTo(BeNil())
		Expect(dsn.ValueFrom.SecretKeyRef.Name).To(Equal("pg"))
		Expect(dsn.ValueFrom.SecretKeyRef.Key).To(Equal("uri"))
		Expect(pod.Spec.Volumes).NotTo(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim", Not(BeNil()))))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pgconn-store"}, &corev1.PersistentVolumeClaim{}))).To(BeTrue())
	})
})

var _ = Describe("exactly one session pod", func() {
	It("recreates a deleted pod only after the old one is gone, terminating ones included", func() {
		ns := newNamespace()
		newConnection(ns, "one")
		pod := sessionPod(ns, "one")
		oldUID := pod.UID

		// A finalizer keeps the deleted pod terminating, as a kubelet does while the process stops.
		pod.Finalizers = []string{"test.waoperator.io/hold"}
		Expect(k8sClient.Update(ctx, pod)).To(Succeed())
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())

		Consistently(podUID(ns, "one"), 3*time.Second, 200*time.Millisecond).Should(Equal(string(oldUID)),
			"no new pod while the old one is terminating")
		Eventually(condition(ns, "one", whatsappv1alpha1.ConditionReady)).Should(HaveField("Reason", whatsappv1alpha1.ReasonWaitingForPod))

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		pod.Finalizers = nil
		Expect(k8sClient.Update(ctx, pod)).To(Succeed())
		Eventually(podUID(ns, "one")).ShouldNot(Or(BeEmpty(), Equal(string(oldUID))))
	})

	It("replaces a failed pod with a new one, after a backoff when it crashed at start, and records the exit code", func() {
		ns := newNamespace()
		newConnection(ns, "crash")
		pod := sessionPod(ns, "crash")
		exited := time.Now()
		setPodPhase(pod, corev1.PodFailed, 137)
		Eventually(condition(ns, "crash", whatsappv1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", whatsappv1alpha1.ReasonPodCrashed), HaveField("Message", ContainSubstring("exit code 137"))))
		Eventually(podUID(ns, "crash"), 3*testCrashBackoff).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
		// finishedAt is stored to the second, so the backoff may end up to a second early.
		Expect(time.Since(exited)).To(BeNumerically(">=", testCrashBackoff-1100*time.Millisecond), "no hot replacement loop")
		Eventually(warningEvents(ns, "crash")).Should(ContainElement("SessionPodExited"))
	})

	It("replaces the pod when a pod-affecting field changes: delete, wait, create", func() {
		ns := newNamespace()
		newConnection(ns, "change")
		pod := sessionPod(ns, "change")
		update(ns, "change", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Session.NodeSelector = map[string]string{"disk": "ssd"}
		})

		Eventually(func() map[string]string {
			p := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "change-session"}, p); err != nil || p.UID == pod.UID {
				return nil
			}
			return p.Spec.NodeSelector
		}).Should(Equal(map[string]string{"disk": "ssd"}))
	})

	It("reports a pod the API server refuses, without a retry loop", func() {
		ns := newNamespace()
		newConnection(ns, "refused", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Session.PriorityClassName = "no-such-class"
		})
		Eventually(condition(ns, "refused", whatsappv1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", whatsappv1alpha1.ReasonPodRejected),
			HaveField("Message", ContainSubstring("no-such-class"))))
		passes := quietPasses(ns, "refused")
		Consistently(passesOf(ns, "refused"), 3*time.Second).Should(Equal(passes), "a refused pod is offered again in minutes, not in a loop")

		update(ns, "refused", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Session.PriorityClassName = "" })
		Eventually(podUID(ns, "refused")).ShouldNot(BeEmpty())
	})

	It("releases the Lease of a session whose container terminated and starts the successor at once", func() {
		ns := newNamespace()
		newConnection(ns, "fast")
		pod := sessionPod(ns, "fast")
		// The session holds the Lease for an hour, then is killed: only the kubelet's report
		// proves it gone.
		holdLease(ns, "fast", identityOf(pod), 3600)
		exitPod(pod, 137, time.Minute)

		Eventually(leaseHolder(ns, "fast")).Should(BeEmpty(), "released in the dead pod's name, not left to expire")
		Eventually(podUID(ns, "fast")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
		Expect(conflictReason(ns, "fast")()).To(BeEmpty(), "a predecessor's identity is not a foreign holder")
	})

	It("starts a successor when the pod is gone but leaves a Lease whose holder is not proven dead to the successor's own clock", func() {
		ns := newNamespace()
		newConnection(ns, "unproven")
		pod := sessionPod(ns, "unproven")
		holdLease(ns, "unproven", identityOf(pod), 3600)
		// Force-deleted while running (a partitioned node): the process may still hold WhatsApp.
		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())

		Eventually(podUID(ns, "unproven")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
		Consistently(leaseHolder(ns, "unproven"), 2*time.Second, 200*time.Millisecond).Should(Equal(identityOf(pod)),
			"only the holder itself, the kubelet's report or a Lease duration without renewal frees it")
		Expect(conflictReason(ns, "unproven")()).To(BeEmpty())
	})

	It("doubles the crash backoff with each quick exit in a row", func() {
		ns := newNamespace()
		newConnection(ns, "loop")
		first := sessionPod(ns, "loop")
		exitPod(first, 1, time.Second)
		Eventually(condition(ns, "loop", whatsappv1alpha1.ConditionReady)).Should(HaveField("Message", ContainSubstring("1 in a row")))
		Eventually(podUID(ns, "loop"), 3*testCrashBackoff).ShouldNot(Or(BeEmpty(), Equal(string(first.UID))))

		second := sessionPod(ns, "loop")
		exited := time.Now()
		exitPod(second, 1, time.Second)
		Eventually(condition(ns, "loop", whatsappv1alpha1.ConditionReady)).Should(HaveField("Message", ContainSubstring("2 in a row")))
		Eventually(podUID(ns, "loop"), 4*testCrashBackoff).ShouldNot(Or(BeEmpty(), Equal(string(second.UID))))
		// finishedAt is stored to the second, so the backoff may end up to a second early.
		Expect(time.Since(exited)).To(BeNumerically(">=", 2*testCrashBackoff-1100*time.Millisecond), "twice the first backoff")
	})
})

// bindToReadyNode binds pod, as a scheduler would, to a new Node of its own that reports Ready.
func bindToReadyNode(ns string, pod *corev1.Pod) *corev1.Node {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-node"}}
	Expect(k8sClient.Create(ctx, node)).To(Succeed())
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	Expect(k8sClient.Status().Update(ctx, node)).To(Succeed())
	Expect(k8sClient.SubResource("binding").Create(ctx, pod, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node.Name},
	})).To(Succeed())
	return node
}

var _ = Describe("lost node", func() {
	It("force-deletes a session pod on a NotReady node once its Lease stood still for a Lease duration, and starts the successor", func() {
		ns := newNamespace()
		newConnection(ns, "lost")
		pod := sessionPod(ns, "lost")
		node := bindToReadyNode(ns, pod)
		holdLease(ns, "lost", identityOf(pod), 2)
		// A finalizer stands for the kubelet that would confirm a graceful deletion and is gone.
		pod.Finalizers = []string{"test.waoperator.io/hold"}
		Eventually(func() error {
			p := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
				return err
			}
			p.Finalizers = pod.Finalizers
			return k8sClient.Update(ctx, p)
		}).Should(Succeed())
		// A Ready node keeps the pod of a session that renews (holdLease renews it, as the elector does).
		Consistently(func() string {
			holdLease(ns, "lost", identityOf(pod), 2)
			return podUID(ns, "lost")()
		}, 3*time.Second, 500*time.Millisecond).Should(Equal(string(pod.UID)), "a Ready node keeps a renewing session's pod")

		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"}}
		Expect(k8sClient.Status().Update(ctx, node)).To(Succeed())
		Eventually(func() *metav1.Time {
			p := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
				return nil
			}
			return p.DeletionTimestamp
		}, 10*time.Second).ShouldNot(BeNil(), "force-deleted once the Lease stood still for its 2 s")
		Expect(leaseHolder(ns, "lost")()).To(BeEmpty(), "released for the successor")
		Eventually(warningEvents(ns, "lost")).Should(ContainElement(whatsappv1alpha1.ReasonNodeLost))
		Eventually(condition(ns, "lost", whatsappv1alpha1.ConditionReady)).Should(HaveField("Message", ContainSubstring("ReadWriteOnce")))

		// The API server removes a force-deleted pod once its finalizers are gone.
		Eventually(func() error {
			p := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
				return err
			}
			p.Finalizers = nil
			return k8sClient.Update(ctx, p)
		}).Should(Succeed())
		Eventually(podUID(ns, "lost")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
	})
})

var _ = Describe("unresponsive session", func() {
	It("keeps a pod whose session renews its Lease, and deletes (1 s grace) and replaces one that stopped renewing without exiting, on a Ready node", func() {
		ns := newNamespace()
		newConnection(ns, "frozen")
		pod := sessionPod(ns, "frozen")
		// Bound to a node, so that a deletion waits for the kubelet's confirmation.
		bindToReadyNode(ns, pod)
		var lastRenewal time.Time
		Consistently(func() string {
			holdLease(ns, "frozen", identityOf(pod), 2)
			lastRenewal = time.Now()
			return podUID(ns, "frozen")()
		}, 4*time.Second, 500*time.Millisecond).Should(Equal(string(pod.UID)), "renewing every 0.5 s of a 2 s Lease")

		// The session freezes: its container still runs (no kubelet report), its Lease stands still.
		var grace *int64
		Eventually(func() *metav1.Time {
			p := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
				return nil
			}
			grace = p.DeletionGracePeriodSeconds
			return p.DeletionTimestamp
		}, 10*time.Second).ShouldNot(BeNil(), "deleted once the Lease stood still for its 2 s")
		Expect(time.Since(lastRenewal)).To(BeNumerically(">=", 2*time.Second), "not before the Lease stood still for its duration")
		Expect(grace).To(HaveValue(BeNumerically("==", 1)), "the node's kubelet stops the frozen process at once and confirms")
		Expect(leaseHolder(ns, "frozen")()).To(BeEmpty(), "released for the successor")
		Eventually(warningEvents(ns, "frozen")).Should(ContainElement(whatsappv1alpha1.ReasonSessionUnresponsive))
		Consistently(podUID(ns, "frozen"), 2*time.Second, 200*time.Millisecond).Should(Equal(string(pod.UID)), "no successor while the old process may run")

		// The kubelet confirms: the successor starts.
		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(podUID(ns, "frozen")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
	})

	It("does not judge a pod that waits to acquire a Lease another holder keeps", func() {
		ns := newNamespace()
		newConnection(ns, "waits")
		pod := sessionPod(ns, "waits")
		// A same-named predecessor that was force-deleted while it held the Lease.
		holdLease(ns, "waits", pod.Name+"_predecessor-uid", 2)
		Consistently(podUID(ns, "waits"), 4*time.Second, 200*time.Millisecond).Should(Equal(string(pod.UID)))
	})
})

var _ = Describe("status", func() {
	It("trusts status.connection only from the current pod, and derives phase and conditions from it", func() {
		ns := newNamespace()
		newConnection(ns, "st")
		pod := sessionPod(ns, "st")
		// The pod is created before the pass writes its status.
		Eventually(phaseOf(ns, "st")).Should(Equal(whatsappv1alpha1.PhasePending))

		stale := pod.DeepCopy()
		stale.UID = "00000000-0000-0000-0000-000000000000"
		reportAsSession(ns, "st", stale, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "1555:1@s.whatsapp.net"})
		Consistently(phaseOf(ns, "st"), 2*time.Second).Should(Equal(whatsappv1alpha1.PhasePending), "a stale holder is ignored")

		reportAsSession(ns, "st", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, QRCode: "2@abc"})
		Eventually(phaseOf(ns, "st")).Should(Equal(whatsappv1alpha1.PhasePairing))
		Expect(condition(ns, "st", whatsappv1alpha1.ConditionPaired)()).To(HaveField("Status", metav1.ConditionFalse))

		reportAsSession(ns, "st", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "1555:1@s.whatsapp.net"})
		Eventually(phaseOf(ns, "st")).Should(Equal(whatsappv1alpha1.PhaseConnected))
		wac := get(ns, "st")
		Expect(wac.Status.Account).To(Equal("1555:1@s.whatsapp.net"))
		Expect(wac.Status.ObservedGeneration).To(Equal(wac.Generation))
		for _, typ := range []string{whatsappv1alpha1.ConditionReady, whatsappv1alpha1.ConditionPaired, whatsappv1alpha1.ConditionConnected} {
			c := condition(ns, "st", typ)()
			Expect(c.Status).To(Equal(metav1.ConditionTrue), typ)
			Expect(c.ObservedGeneration).To(Equal(wac.Generation), typ)
		}
		Expect(condition(ns, "st", whatsappv1alpha1.ConditionConflict)()).To(HaveField("Status", metav1.ConditionFalse))
		Expect(condition(ns, "st", whatsappv1alpha1.ConditionDegraded)()).To(HaveField("Status", metav1.ConditionFalse))

		// The controller's fields are its own under server-side apply; the session's are the session's.
		owners := map[string]bool{}
		for _, mf := range wac.ManagedFields {
			if mf.Subresource == "status" {
				owners[mf.Manager] = true
			}
		}
		Expect(owners).To(HaveKey(fieldManager))
		Expect(owners).To(HaveKey(sessionManager))

		// lastTransitionTime moves only when the status does.
		ready := condition(ns, "st", whatsappv1alpha1.ConditionReady)()
		wac = update(ns, "st", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.DeviceName = "renamed" })
		Eventually(condition(ns, "st", whatsappv1alpha1.ConditionReady)).Should(HaveField("ObservedGeneration", wac.Generation))
		after := condition(ns, "st", whatsappv1alpha1.ConditionReady)()
		Expect(after.LastTransitionTime.Equal(&ready.LastTransitionTime)).To(BeTrue())

		reportAsSession(ns, "st", pod, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionClientOutdated, Message: "405"})
		Eventually(condition(ns, "st", whatsappv1alpha1.ConditionDegraded)).Should(HaveField("Reason", whatsappv1alpha1.ReasonClientOutdated))
		Expect(phaseOf(ns, "st")()).To(Equal(whatsappv1alpha1.PhaseDegraded))
	})

	It("suspends: removes the pod, keeps the store, phase Suspended; resuming creates a pod again", func() {
		ns := newNamespace()
		newConnection(ns, "sus")
		pod := sessionPod(ns, "sus")
		update(ns, "sus", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Suspend = true })
		Eventually(podUID(ns, "sus")).Should(BeEmpty())
		Eventually(phaseOf(ns, "sus")).Should(Equal(whatsappv1alpha1.PhaseSuspended))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sus-store"}, &corev1.PersistentVolumeClaim{})).To(Succeed())
		Consistently(podUID(ns, "sus"), 2*time.Second).Should(BeEmpty())

		update(ns, "sus", func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Suspend = false })
		Eventually(podUID(ns, "sus")).ShouldNot(Or(BeEmpty(), Equal(string(pod.UID))))
	})

	It("reports a missing store Secret or key from the kubelet's report, without retrying and without echoing it", func() {
		ns := newNamespace()
		newConnection(ns, "sec", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "later"}}
		})
		// The pod is created at once: the kubelet, not the manager, resolves the Secret.
		pod := sessionPod(ns, "sec")
		env := pod.Spec.Containers[0].Env
		Expect(env).To(ContainElement(HaveField("ValueFrom.SecretKeyRef", HaveField("LocalObjectReference.Name", "later"))))
		// The same key as a file the kubelet keeps current (a changed Secret rolls the pod);
		// optional, so that only the env's report tells a missing Secret.
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Secret", And(
			HaveField("SecretName", "later"), HaveField("Optional", HaveValue(BeTrue())),
			HaveField("Items", ConsistOf(HaveField("Key", "dsn")))))))

		By("the kubelet cannot find the Secret")
		setContainerWaiting(pod, "CreateContainerConfigError", `secret "later" not found`)
		Eventually(condition(ns, "sec", whatsappv1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", whatsappv1alpha1.ReasonSecretNotFound),
			HaveField("Message", ContainSubstring(ns+"/later")),
			HaveField("Message", Not(ContainSubstring(`secret "later" not found`)))))
		Expect(phaseOf(ns, "sec")()).To(Equal(whatsappv1alpha1.PhasePending))
		passes := quietPasses(ns, "sec")
		Consistently(passesOf(ns, "sec"), 3*time.Second).Should(Equal(passes), "no retry loop while the Secret is missing")

		By("the Secret exists without the key")
		setContainerWaiting(pod, "CreateContainerConfigError", "couldn't find key dsn in Secret "+ns+"/later")
		Eventually(condition(ns, "sec", whatsappv1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", whatsappv1alpha1.ReasonSecretKeyNotFound),
			HaveField("Message", ContainSubstring(`"dsn"`))))

		By("any other configuration error is not echoed")
		setContainerWaiting(pod, "CreateContainerConfigError", "MARKER-7f3a: something the kubelet said")
		Eventually(condition(ns, "sec", whatsappv1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", whatsappv1alpha1.ReasonPodPending),
			HaveField("Message", Not(ContainSubstring("MARKER-7f3a")))))

		By("the key is there: the container starts")
		setPodPhase(pod, corev1.PodRunning, 0)
		Eventually(condition(ns, "sec", whatsappv1alpha1.ConditionReady)).Should(HaveField("Message", "waiting for the session pod to report"))
	})
})
