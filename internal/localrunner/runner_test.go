package localrunner

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func intstrName(name string) intstr.IntOrString { return intstr.FromString(name) }

const (
	wait = 20 * time.Second
	poll = 100 * time.Millisecond
)

var _ = Describe("Runner", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace()
	})

	condition := func(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
		for _, c := range pod.Status.Conditions {
			if c.Type == t {
				return c.Status
			}
		}
		return ""
	}
	terminated := func(pod *corev1.Pod) *corev1.ContainerStateTerminated {
		if len(pod.Status.ContainerStatuses) == 0 {
			return nil
		}
		return pod.Status.ContainerStatuses[0].State.Terminated
	}

	It("registers a Ready Node, binds a managed pod and reports it Running and Ready from its probe", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "web", "web-store"))).To(Succeed())
		Eventually(getPod(ns, "web"), wait, poll).Should(SatisfyAll(
			HaveField("Spec.NodeName", "local"),
			HaveField("Status.Phase", corev1.PodRunning),
			HaveField("Status.StartTime", Not(BeNil())),
			WithTransform(func(p *corev1.Pod) bool {
				return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
			}, BeTrue()),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodReady) }, Equal(corev1.ConditionTrue)),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.ContainersReady) }, Equal(corev1.ConditionTrue)),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodScheduled) }, Equal(corev1.ConditionTrue)),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodInitialized) }, Equal(corev1.ConditionTrue)),
		))
		node := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "local"}, node)).To(Succeed())
		Expect(node.Status.Conditions).To(ContainElement(SatisfyAll(
			HaveField("Type", corev1.NodeReady), HaveField("Status", corev1.ConditionTrue))))
		pod, _ := getPod(ns, "web")()
		Expect(readFile(filepath.Join(workDir, "local", "pods", string(pod.UID), "main.log"))).To(ContainSubstring("helper started"))
	})

	It("reports a pod's status as a kubelet does: patches of pods/status, never a read or a replace of the pod", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "patched", "patched-store"))).To(Succeed())
		Eventually(getPod(ns, "patched"), wait, poll).Should(SatisfyAll(
			HaveField("Status.Phase", corev1.PodRunning),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodReady) }, Equal(corev1.ConditionTrue)),
		))
		path := "/api/v1/namespaces/" + ns + "/pods/patched"
		sent := requestsFor(path)
		Expect(sent).To(ContainElement("PATCH "+path+"/status"), "Running, then Ready: each a patch")
		Expect(sent).NotTo(ContainElement("GET "+path), "a status write needs no read first")
		Expect(sent).NotTo(ContainElement("PUT " + path + "/status"))
	})

	It("watches pods uncompressed: the API server gzips a watch-list stream event by event for a client that accepts it", func() {
		watches := requestsFor("WATCH /api/v1/pods")
		Expect(watches).NotTo(BeEmpty())
		for _, w := range watches {
			Expect(w).To(HaveSuffix("Accept-Encoding: identity"))
		}
	})

	It("watches pods in protobuf, as a kubelet does: a JSON watch costs the API server a second encoding of every pod event", func() {
		watches := requestsFor("WATCH /api/v1/pods")
		Expect(watches).NotTo(BeEmpty())
		for _, w := range watches {
			Expect(w).To(ContainSubstring("Accept: application/vnd.kubernetes.protobuf,"))
		}
	})

	It("never reports on a newer pod under the same name: its patch names the pod's UID", func() {
		runCtx, stop := context.WithCancel(context.Background())
		defer stop()
		r, done := startRunnerR(runCtx, "reborn", filepath.Join(workDir, "reborn"))
		pod := helperPod(ns, "reborn", "reborn-store")
		pod.Labels = nil
		pod.Spec.NodeName = "reborn"
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(getPod(ns, "reborn"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))

		live, err := getPod(ns, "reborn")()
		Expect(err).NotTo(HaveOccurred())
		earlier := live.DeepCopy()
		earlier.UID = "an-earlier-pod"
		run := r.newRun(cacheKey(earlier), earlier)
		run.failure = "the earlier pod failed"
		Expect(run.writeStatus(ctx)).To(Succeed(), "a pod that is gone is nothing to report on")
		Consistently(getPod(ns, "reborn"), time.Second, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		stop()
		Eventually(done, wait).Should(Receive(BeNil()))
	})

	It("leaves alone unscheduled pods outside its selector", func() {
		pod := helperPod(ns, "foreign", "foreign-store")
		pod.Labels = map[string]string{"app": "other"}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Consistently(getPod(ns, "foreign"), time.Second, poll).Should(HaveField("Spec.NodeName", ""))
	})

	It("resolves literal, downward API, Secret and ConfigMap env and maps mount paths to local folders", func() {
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
			Data:       map[string][]byte{"dsn": []byte("postgres://secret")},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
			Data:       map[string]string{"mode": "fast"},
		})).To(Succeed())
		pod := helperPod(ns, "envy", "envy-store")
		field := func(name, path string) corev1.EnvVar {
			return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
		}
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env,
			corev1.EnvVar{Name: "LITERAL", Value: "plain"},
			corev1.EnvVar{Name: "EXPANDED", Value: "$(LITERAL)-x"},
			field("POD_UID", "metadata.uid"),
			field("CONN", "metadata.labels['conn']"),
			field("NOTE", "metadata.annotations['note']"),
			field("NODE", "spec.nodeName"),
			field("SA", "spec.serviceAccountName"),
			corev1.EnvVar{Name: "DSN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "dsn"}}},
			corev1.EnvVar{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
		)
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(getPod(ns, "envy"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())

		dir := claimDir("local", ns, "envy-store")
		Eventually(func() string { return readFile(filepath.Join(dir, "env.txt")) }, wait, poll).Should(ContainSubstring("POD_NAME="))
		env := strings.Split(readFile(filepath.Join(dir, "env.txt")), "\n")
		podDir := filepath.Join(workDir, "local", "pods", string(pod.UID))
		Expect(env).To(ContainElements(
			"POD_NAME=envy",
			"POD_NAMESPACE="+ns,
			"POD_UID="+string(pod.UID),
			"CONN=envy-label",
			"NOTE=envy-annotation",
			"NODE=local",
			"SA=session",
			"LITERAL=plain",
			"EXPANDED=plain-x",
			"DSN=postgres://secret",
			"MODE=fast",
			"WA_SQLITE_PATH="+filepath.Join(dir, "device.db"),
			"KUBECONFIG="+filepath.Join(podDir, "kubeconfig"),
			"HOME="+filepath.Join(podDir, "_tmp"),
			helperEnv+"=1",
		))
		Expect(readFile(filepath.Join(dir, "args.txt"))).To(ContainSubstring("--out=" + dir + "\n"))
	})

	It("keeps a pod Pending while its Secret is missing and starts it once the Secret exists", func() {
		pod := helperPod(ns, "patient", "patient-store")
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: "DSN", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "late"}, Key: "dsn"}}})
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		// The kubelet's words, which the operator classifies (controllers/whatsappconnection_secret.go).
		waiting := func(message string) types.GomegaMatcher {
			return SatisfyAll(
				HaveField("Status.Phase", corev1.PodPending),
				HaveField("Status.ContainerStatuses", ContainElement(HaveField("State.Waiting", SatisfyAll(
					HaveField("Reason", "CreateContainerConfigError"), HaveField("Message", message))))),
			)
		}
		Eventually(getPod(ns, "patient"), wait, poll).Should(waiting(`secret "late" not found`))
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns}, Data: map[string][]byte{"other": []byte("x")}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Eventually(getPod(ns, "patient"), wait, poll).Should(waiting("couldn't find key dsn in Secret " + ns + "/late"))
		secret.Data["dsn"] = []byte("postgres://late")
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(getPod(ns, "patient"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		Eventually(func() string { return readFile(filepath.Join(claimDir("local", ns, "patient-store"), "env.txt")) }, wait, poll).
			Should(ContainSubstring("DSN=postgres://late\n"))
	})

	It("projects an optional Secret volume's items and keeps them current, as a kubelet does", func() {
		pod := helperPod(ns, "rotating", "rotating-store")
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "rotating", Optional: ptr.To(true), Items: []corev1.KeyToPath{{Key: "dsn", Path: "dsn"}},
		}}})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "creds", MountPath: "/creds", ReadOnly: true})
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(getPod(ns, "rotating"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning), "a missing optional Secret does not hold the pod")
		running, err := getPod(ns, "rotating")()
		Expect(err).NotTo(HaveOccurred())
		file := filepath.Join(workDir, "local", "pods", string(running.UID), "creds", "dsn")
		Expect(readFile(file)).To(BeEmpty())

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rotating", Namespace: ns}, Data: map[string][]byte{"dsn": []byte("one"), "other": []byte("x")}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Eventually(func() string { return readFile(file) }, wait, poll).Should(Equal("one"))
		secret.Data["dsn"] = []byte("two")
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(func() string { return readFile(file) }, wait, poll).Should(Equal("two"))
		Expect(filepath.Join(workDir, "local", "pods", string(running.UID), "creds", "other")).NotTo(BeAnExistingFile(), "only the listed items")
	})

	It("gives each pod its own loopback ports for the same container ports", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "one", "one-store"))).To(Succeed())
		Expect(k8sClient.Create(ctx, helperPod(ns, "two", "two-store"))).To(Succeed())
		for _, name := range []string{"one", "two"} {
			// Ready means each bound both its ports: with the same ports one would have failed.
			Eventually(getPod(ns, name), wait, poll).Should(SatisfyAll(
				HaveField("Status.Phase", corev1.PodRunning),
				WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodReady) }, Equal(corev1.ConditionTrue)),
			))
		}
		args := func(name string) []string {
			return strings.Split(strings.TrimSpace(readFile(filepath.Join(claimDir("local", ns, name+"-store"), "args.txt"))), "\n")
		}
		one, two := args("one"), args("two")
		Expect(one[0]).To(MatchRegexp(`^--health=127\.0\.0\.1:\d+$`))
		Expect(one[1]).To(MatchRegexp(`^--metrics=127\.0\.0\.1:\d+$`))
		Expect(one[0]).NotTo(Equal("--health=127.0.0.1:8081"))
		Expect(one[0]).NotTo(Equal(two[0]))
		Expect(one[1]).NotTo(Equal(two[1]))
	})

	It("reports a zero exit as Succeeded, a non-zero one as Failed, and keeps the claim's folder across pods", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "first", "shared", "--exit=0"))).To(Succeed())
		Eventually(getPod(ns, "first"), wait, poll).Should(SatisfyAll(
			HaveField("Status.Phase", corev1.PodSucceeded),
			WithTransform(terminated, SatisfyAll(
				Not(BeNil()), HaveField("ExitCode", int32(0)), HaveField("Reason", "Completed"))),
			WithTransform(func(p *corev1.Pod) corev1.ConditionStatus { return condition(p, corev1.PodReady) }, Equal(corev1.ConditionFalse)),
		))

		Expect(k8sClient.Create(ctx, helperPod(ns, "second", "shared", "--exit=3"))).To(Succeed())
		Eventually(getPod(ns, "second"), wait, poll).Should(SatisfyAll(
			HaveField("Status.Phase", corev1.PodFailed),
			WithTransform(terminated, SatisfyAll(
				Not(BeNil()), HaveField("ExitCode", int32(3)), HaveField("Reason", "Error"),
				HaveField("FinishedAt.Time", Not(BeZero())))),
		))
		Expect(readFile(filepath.Join(claimDir("local", ns, "shared"), "history"))).To(Equal("first\nsecond\n"))
	})

	It("fails a pod whose command it does not know, with a message", func() {
		pod := helperPod(ns, "unknown", "unknown-store")
		pod.Spec.Containers[0].Command = []string{"/nope"}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(getPod(ns, "unknown"), wait, poll).Should(SatisfyAll(
			HaveField("Status.Phase", corev1.PodFailed),
			HaveField("Status.Message", ContainSubstring(`"/nope"`)),
			WithTransform(terminated, SatisfyAll(Not(BeNil()), HaveField("Reason", "StartError"))),
		))
	})

	It("fails a pod whose program cannot be started, with the error", func() {
		pod := helperPod(ns, "broken", "broken-store")
		pod.Spec.Containers[0].Command = []string{"/broken"}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(getPod(ns, "broken"), wait, poll).Should(SatisfyAll(
			HaveField("Status.Phase", corev1.PodFailed),
			HaveField("Status.Message", SatisfyAll(ContainSubstring("no-such-program"), ContainSubstring("no such file"))),
		))
	})

	It("on deletion sends SIGTERM, waits for the process and then removes the pod object", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "doomed", "doomed-store", "--child"))).To(Succeed())
		dir := claimDir("local", ns, "doomed-store")
		Eventually(getPod(ns, "doomed"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		pid, child := pidFrom(filepath.Join(dir, "pid")), pidFrom(filepath.Join(dir, "child.pid"))
		Expect(alive(pid)).To(BeTrue())

		pod, err := getPod(ns, "doomed")()
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Eventually(func() error { _, err := getPod(ns, "doomed")(); return err }, wait, poll).Should(Satisfy(apierrors.IsNotFound))
		Expect(readFile(filepath.Join(dir, "term"))).To(Equal("exiting"))
		Eventually(func() bool { return alive(pid) || alive(child) }, wait, poll).Should(BeFalse())
	})

	It("sends SIGKILL after the grace period to a process that ignores SIGTERM", func() {
		pod := helperPod(ns, "stubborn", "stubborn-store", "--ignore-term")
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		dir := claimDir("local", ns, "stubborn-store")
		Eventually(getPod(ns, "stubborn"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		pid := pidFrom(filepath.Join(dir, "pid"))

		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		deleted := time.Now()
		Eventually(func() error { _, err := getPod(ns, "stubborn")(); return err }, wait, poll).Should(Satisfy(apierrors.IsNotFound))
		Expect(time.Since(deleted)).To(BeNumerically(">=", 900*time.Millisecond))
		Expect(readFile(filepath.Join(dir, "term"))).To(Equal("ignored"))
		Expect(alive(pid)).To(BeFalse())
	})

	It("kills the process of a pod removed from the API at once", func() {
		Expect(k8sClient.Create(ctx, helperPod(ns, "forced", "forced-store"))).To(Succeed())
		Eventually(getPod(ns, "forced"), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
		pid := pidFrom(filepath.Join(claimDir("local", ns, "forced-store"), "pid"))
		pod, _ := getPod(ns, "forced")()
		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() bool { return alive(pid) }, wait, poll).Should(BeFalse())
	})

	It("lets the process reach the API server as exactly its ServiceAccount", func() {
		pod := helperPod(ns, "reader", "reader-store", "--access")
		pod.Spec.ServiceAccountName = "reader"
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		dir := claimDir("local", ns, "reader-store")
		Eventually(func() string { return readFile(filepath.Join(dir, "whoami")) }, wait, poll).Should(
			HavePrefix("system:serviceaccount:" + ns + ":reader "))
		Expect(readFile(filepath.Join(dir, "whoami"))).To(ContainSubstring("system:serviceaccounts:" + ns))
		Eventually(func() string { return readFile(filepath.Join(dir, "access")) }, wait, poll).Should(Equal("forbidden"))

		Expect(k8sClient.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-reader", Namespace: ns},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-reader", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns}},
		})).To(Succeed())
		Eventually(func() string { return readFile(filepath.Join(dir, "access")) }, wait, poll).Should(Equal("allowed"))
	})

	It("stops every process it started, children included, when its context ends", func() {
		runCtx, stop := context.WithCancel(context.Background())
		defer stop()
		done := startRunner(runCtx, "other", filepath.Join(workDir, "other"))
		var pids []int
		for _, name := range []string{"calm", "deaf"} {
			pod := helperPod(ns, name, name+"-store", "--child")
			pod.Labels = nil // already bound: the runner runs it whatever its labels
			pod.Spec.NodeName = "other"
			if name == "deaf" {
				pod.Spec.Containers[0].Args = append(pod.Spec.Containers[0].Args, "--ignore-term")
				pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
			}
			Expect(k8sClient.Create(ctx, pod)).To(Succeed())
			Eventually(getPod(ns, name), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
			dir := claimDir("other", ns, name+"-store")
			pids = append(pids, pidFrom(filepath.Join(dir, "pid")), pidFrom(filepath.Join(dir, "child.pid")))
		}
		for _, pid := range pids {
			Expect(alive(pid)).To(BeTrue())
		}
		stop()
		Eventually(done, wait).Should(Receive(BeNil()))
		for _, pid := range pids {
			Expect(alive(pid)).To(BeFalse(), "pid %d", pid)
		}

		By("failing, after a restart, the pods whose processes died with the previous runner")
		runCtx2, stop2 := context.WithCancel(context.Background())
		defer stop2()
		done = startRunner(runCtx2, "other", filepath.Join(workDir, "other"))
		for _, name := range []string{"calm", "deaf"} {
			Eventually(getPod(ns, name), wait, poll).Should(SatisfyAll(
				HaveField("Status.Phase", corev1.PodFailed),
				HaveField("Status.Message", ContainSubstring("processes are gone")),
			))
		}
		stop2()
		Eventually(done, wait).Should(Receive(BeNil()))
	})

	It("plays a lost node: Ready Unknown, processes frozen, nothing reported; back, it kills the processes of pods deleted meanwhile", func() {
		runCtx, stop := context.WithCancel(context.Background())
		defer stop()
		r, done := startRunnerR(runCtx, "lost", filepath.Join(workDir, "lost"))
		pids := map[string]int{}
		for _, name := range []string{"stays", "goes"} {
			pod := helperPod(ns, name, name+"-store")
			pod.Labels = nil
			pod.Spec.NodeName = "lost"
			Expect(k8sClient.Create(ctx, pod)).To(Succeed())
			Eventually(getPod(ns, name), wait, poll).Should(HaveField("Status.Phase", corev1.PodRunning))
			pids[name] = pidFrom(filepath.Join(claimDir("lost", ns, name+"-store"), "pid"))
		}

		Expect(r.LoseNode(ctx)).To(Succeed())
		node := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "lost"}, node)).To(Succeed())
		Expect(node.Status.Conditions).To(ContainElement(SatisfyAll(
			HaveField("Type", corev1.NodeReady), HaveField("Status", corev1.ConditionUnknown))))
		for name, pid := range pids {
			Eventually(func() byte { return procState(pid) }, wait, poll).Should(Equal(byte('T')), name)
		}
		goes, _ := getPod(ns, "goes")()
		Expect(k8sClient.Delete(ctx, goes)).To(Succeed())
		Consistently(getPod(ns, "goes"), 2*time.Second, poll).Should(HaveField("DeletionTimestamp", Not(BeNil())),
			"a lost node's kubelet confirms no deletion")

		Expect(r.ReturnNode(ctx)).To(Succeed())
		Eventually(func() bool { return alive(pids["goes"]) }, wait, poll).Should(BeFalse())
		Eventually(func() error { _, err := getPod(ns, "goes")(); return err }, wait, poll).Should(Satisfy(apierrors.IsNotFound))
		Eventually(func() byte { return procState(pids["stays"]) }, wait, poll).ShouldNot(Equal(byte('T')))
		Expect(alive(pids["stays"])).To(BeTrue())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "lost"}, node)).To(Succeed())
		Expect(node.Status.Conditions).To(ContainElement(SatisfyAll(
			HaveField("Type", corev1.NodeReady), HaveField("Status", corev1.ConditionTrue))))
		stop()
		Eventually(done, wait).Should(Receive(BeNil()))
	})
})
