//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// grantSend applies the README's Role for sending through c and binds it to the ServiceAccount
// sa (created here), as an application's owner would.
func grantSend(c *connection, sa string) {
	_, err := kubectlIn(fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: %[3]s, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: send-through-%[2]s, namespace: %[1]s}
rules:
- apiGroups: [whatsapp.waoperator.io]
  resources: [whatsappconnections/messages]
  resourceNames: [%[2]s]
  verbs: [create, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[3]s-sends-through-%[2]s, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: send-through-%[2]s}
subjects: [{kind: ServiceAccount, name: %[3]s, namespace: %[1]s}]
`, c.ns, c.name, sa), "apply", "-f", "-")
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

// received is what phone decrypted with this text: each text is sent once, so the fake phone
// must hold it exactly once.
func received(phone *fakewa.Phone, text string) []fakewa.ReceivedMessage {
	var got []fakewa.ReceivedMessage
	for _, m := range phone.Received() {
		if m.Text == text {
			got = append(got, m)
		}
	}
	return got
}

// sendsFromAPod calls the send API as an application does: from a pod of the namespace, by the
// Service's name (the cluster DNS, then kube-proxy's rules to the session pod), with a projected
// ServiceAccount token for the connection's audience, which the session reviews with the API
// server (TokenReview, then SubjectAccessReview on whatsappconnections/messages).
func sendsFromAPod(c *connection) {
	By("the controller made the Service and the NetworkPolicy of the send API")
	Expect(kubectl("get", "svc", "-n", c.ns, c.name+"-session", "-o",
		`jsonpath={.spec.ports[0].port}->{.spec.ports[0].targetPort}`)).To(Equal("80->8090"))
	// Only its presence and its rule: this bed's CNI (bridge) does not enforce NetworkPolicies,
	// so a pod of another namespace would still get through; that is not checked here.
	Expect(kubectl("get", "networkpolicy", "-n", c.ns, c.name+"-session", "-o",
		`jsonpath={.spec.ingress[0].ports[0].port} {.spec.ingress[0].from[0].podSelector}`)).To(Equal("8090 {}"))

	phone := e.fake.Phone("+15550007001") // known to the fake server: it answers the user lookup
	grantSend(c, "app")
	mustKubectl("create", "serviceaccount", "-n", c.ns, "intruder")

	// client runs send-client in a pod of the namespace as ServiceAccount sa and returns the
	// line it printed: "STATUS BODY".
	client := func(pod, sa, body string) string {
		GinkgoHelper()
		_, err := kubectlIn(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  serviceAccountName: %[3]s
  automountServiceAccountToken: false
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  volumes:
  - name: wa-token
    projected:
      sources:
      - serviceAccountToken: {audience: %[4]q, expirationSeconds: 3600, path: token}
  containers:
  - name: app
    image: %[5]s
    imagePullPolicy: Never
    command: [/send-client, "http://%[6]s-session/v1/messages", /var/run/secrets/whatsapp/token, %[7]q]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: wa-token, mountPath: /var/run/secrets/whatsapp}]
`, c.ns, pod, sa, sendapi.Audience(c.ns, c.name), sessionImage, c.name, body), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(kubectl).WithArguments("get", "pod", "-n", c.ns, pod, "-o", "jsonpath={.status.phase}").
			WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(BeElementOf("Succeeded", "Failed"))
		logs, err := kubectl("logs", "-n", c.ns, pod)
		Expect(err).NotTo(HaveOccurred())
		Expect(kubectl("get", "pod", "-n", c.ns, pod, "-o", "jsonpath={.status.phase}")).To(Equal("Succeeded"), "send-client: %s", logs)
		return strings.TrimSpace(logs)
	}

	By("a pod whose ServiceAccount has the Role sends by the Service's name: 202")
	text := "shipped, sent from a pod through " + c.name + "-session"
	Expect(client("app-sends", "app", fmt.Sprintf(`{"to": %q, "text": %q, "id": "from-a-pod-1"}`, "+15550007001", text))).
		To(MatchRegexp(`^202 \{.*"id":"from-a-pod-1".*"state":"queued"`))
	By("the fake phone decrypts the text, once")
	Eventually(func() []fakewa.ReceivedMessage { return received(phone, text) }).
		WithTimeout(time.Minute).WithPolling(time.Second).Should(HaveLen(1))

	By("a pod whose ServiceAccount has no Role is refused: 403, nothing sent")
	Expect(client("intruder-sends", "intruder", fmt.Sprintf(`{"to": %q, "text": "not allowed", "id": "from-a-pod-2"}`, "+15550007001"))).
		To(HavePrefix("403 "))
	Consistently(func() []fakewa.ReceivedMessage { return received(phone, "not allowed") }).
		WithTimeout(5 * time.Second).Should(BeEmpty())
}

// sendsWithThePlugin runs `kubectl whatsapp send` as a person: a certificate user of the
// cluster's CA with exactly the README's Role for kubectl (a token of whatsapp-sender, port-
// forward, get connections), through the real port-forward (API server → kubelet → the pod's
// network namespace); then `kubectl whatsapp messages` shows the message delivered. A person
// without pods/portforward is refused, and says so.
func sendsWithThePlugin(c *connection) {
	// Built before any wait: the plugin, on a PATH of its own, found by kubectl as a plugin.
	pluginDir := filepath.Join(e.tmp, "plugin")
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-whatsapp"), "./cmd/kubectl-whatsapp")
	build.Dir = e.root
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build ./cmd/kubectl-whatsapp: %s", out)

	phone := e.fake.Phone("+15550007002")
	grantSend(c, "whatsapp-sender")
	_, err = kubectlIn(personRBAC(c.ns, "send-from-kubectl", "sender-person", "wa-sender-person", true)+"---\n"+
		personRBAC(c.ns, "send-from-kubectl-no-portforward", "no-portforward-person", "wa-no-portforward-person", false),
		"apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
	sender, noForward := personKubeconfig("wa-sender-person"), personKubeconfig("wa-no-portforward-person")
	// The person can do nothing else: not even read pods (what the Role leaves out).
	_, err = kubectlAs(sender, pluginDir, "get", "pods", "-n", c.ns)
	Expect(err).To(MatchError(ContainSubstring("forbidden")))

	By("kubectl whatsapp send --wait, as a person with the README's Role: sent through the real port-forward")
	text := "shipped, sent with kubectl whatsapp"
	// The RoleBindings reach the API server's authorizer within moments; the id makes a retry the
	// same message.
	Eventually(kubectlAs).WithArguments(sender, pluginDir, "whatsapp", "send", c.name, "-n", c.ns,
		"--to", "+15550007002", "--text", text, "--id", "kubectl-1", "--wait").
		WithTimeout(time.Minute).WithPolling(2 * time.Second).
		Should(MatchRegexp(`^message kubectl-1 to 15550007002@s\.whatsapp\.net: (sent|delivered|read) \(WhatsApp id \S+\)\n$`))
	Eventually(func() []fakewa.ReceivedMessage { return received(phone, text) }).
		WithTimeout(time.Minute).WithPolling(time.Second).Should(HaveLen(1))

	By("kubectl whatsapp messages shows it delivered")
	Eventually(kubectlAs).WithArguments(sender, pluginDir, "whatsapp", "messages", c.name, "kubectl-1", "-n", c.ns).
		WithTimeout(time.Minute).WithPolling(2 * time.Second).
		Should(MatchRegexp(`(?m)^kubectl-1\s+15550007002@s\.whatsapp\.net\s+(delivered|read)\s+\d+\s`))

	By("without pods/portforward the person is refused, with the permission named")
	Eventually(func(g Gomega) {
		out, err := kubectlAs(noForward, pluginDir, "whatsapp", "send", c.name, "-n", c.ns,
			"--to", "+15550007002", "--text", "not through", "--id", "kubectl-2")
		g.Expect(err).To(HaveOccurred(), out)
		g.Expect(err.Error()).To(And(ContainSubstring("needs create on pods/portforward"), ContainSubstring("forbidden")))
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	Expect(received(phone, "not through")).To(BeEmpty())
}

// personKubeconfig writes a kubeconfig for user (a client certificate of the cluster's CA with
// that common name and no group: a person with only the roles bound to that name).
func personKubeconfig(user string) string {
	GinkgoHelper()
	dir := filepath.Join(e.tmp, "person-"+user)
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	pki := filepath.Join(e.clusterDir, "pki")
	key, csr, crt, ext := filepath.Join(dir, "key.pem"), filepath.Join(dir, "req.csr"), filepath.Join(dir, "crt.pem"), filepath.Join(dir, "ext")
	Expect(os.WriteFile(ext, []byte("extendedKeyUsage=clientAuth\n"), 0o600)).To(Succeed())
	run(dir, "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN="+user, "-keyout", key, "-out", csr)
	run(dir, "openssl", "x509", "-req", "-in", csr, "-CA", filepath.Join(pki, "ca.crt"), "-CAkey", filepath.Join(pki, "ca.key"),
		"-set_serial", fmt.Sprint(time.Now().UnixNano()), "-days", "1", "-extfile", ext, "-out", crt)
	admin, err := os.ReadFile(e.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	cfg := strings.NewReplacer(filepath.Join(pki, "admin.crt"), crt, filepath.Join(pki, "admin.key"), key).Replace(string(admin))
	Expect(cfg).To(ContainSubstring(crt), "the admin kubeconfig names its certificate files")
	path := filepath.Join(dir, "kubeconfig")
	Expect(os.WriteFile(path, []byte(cfg), 0o600)).To(Succeed())
	return path
}

// kubectlAs runs the real kubectl with the person's kubeconfig and the plugin on PATH; the
// error carries stderr.
func kubectlAs(kubeconfig, pluginDir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return kubectlOutput(cmd, args)
}

// personRBAC is a Role and its RoleBinding to the certificate user user: get connections and
// create tokens of whatsapp-sender, and with portForward also forward to pods (the README's Role
// for kubectl; without it, what a person lacking pods/portforward has).
func personRBAC(ns, role, binding, user string, portForward bool) string {
	forward := ""
	if portForward {
		forward = `
- apiGroups: [""]
  resources: [pods/portforward]
  verbs: [create]`
	}
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: %[2]s, namespace: %[1]s}
rules:
- apiGroups: [whatsapp.waoperator.io]
  resources: [whatsappconnections]
  verbs: [get]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  resourceNames: [whatsapp-sender]
  verbs: [create]%[5]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[3]s, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[2]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[4]s}]
`, ns, role, binding, user, forward)
}
