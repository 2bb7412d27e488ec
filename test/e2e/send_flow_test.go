package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
	"github.com/waoperator/whatsapp-operator/internal/testtls"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	senderName  = "sender"
	senderPhone = "+15550003331"
)

const senderManifest = `apiVersion: whatsapp.waoperator.io/v1alpha1
kind: WhatsAppConnection
metadata:
  name: sender
spec:
  pairing:
    method: QR
  store:
    sqlite: {}
  # Far above the default (30 a minute), so that the specs send hundreds in seconds.
  send:
    ratePerMinute: 6000
    burst: 100
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: shop-app
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: nosy-app
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: send-through-sender
rules:
- apiGroups: [whatsapp.waoperator.io]
  resources: [whatsappconnections/messages]
  resourceNames: [sender]
  verbs: [create, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: shop-app-sends
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: send-through-sender}
subjects: [{kind: ServiceAccount, name: shop-app, namespace: default}]
`

// sendAPIAddress finds the connection's session process (the local runner runs pods as
// processes, with no Service routing) and the loopback address its send API was given.
func sendAPIAddress(name string) (string, error) {
	return sessionAddress(name, sessionenv.FlagSendAPIBindAddress)
}

// sessionAddress is the loopback address the runner gave the session's listener flag.
func sessionAddress(name, flag string) (string, error) {
	procs := processesWithEnv(sessionenv.ConnectionName + "=" + name)
	if len(procs) != 1 {
		return "", errNoSession
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(procs[0].PID), "cmdline"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`--` + flag + `=(127\.0\.0\.1:[0-9]+)`).FindSubmatch(cmdline)
	if m == nil {
		return "", errNoSession
	}
	return string(m[1]), nil
}

type sendError string

func (e sendError) Error() string { return string(e) }

const errNoSession = sendError("no single session process with a send API address yet")

func sendAPI(method, url, token, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var out map[string]any
	return resp.StatusCode, out, json.Unmarshal(raw, &out)
}

// sender is an application of the spec: it POSTs to the session's send API with a token and
// keeps the answers it got.
type sender struct {
	token string
	// waID is the WhatsApp id the API answered for each caller id.
	waID map[string]string
}

// post sends one message as a caller that retries until it gets an answer: while the session
// is down (killed, replaced) the address changes or nothing listens, and a new session answers
// 409 until its client is open. It returns the status of the answer (202 new, 200 known).
func (s *sender) post(id, to, text string) int {
	GinkgoHelper()
	body, err := json.Marshal(map[string]string{"to": "+" + to, "text": text, "id": id})
	Expect(err).NotTo(HaveOccurred())
	var status int
	var out map[string]any
	Eventually(func() error {
		addr, err := sendAPIAddress(senderName)
		if err != nil {
			return err
		}
		status, out, err = sendAPI("POST", "http://"+addr+"/v1/messages", s.token, string(body))
		if err == nil && status != http.StatusAccepted && status != http.StatusOK {
			err = fmt.Errorf("answered %d: %v", status, out)
		}
		return err
	}).WithTimeout(90*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "POST %s", id)
	waID, _ := out["whatsappId"].(string)
	Expect(waID).NotTo(BeEmpty())
	if first, ok := s.waID[id]; ok {
		Expect(waID).To(Equal(first), "the same id is the same WhatsApp message")
	} else {
		s.waID[id] = waID
	}
	return status
}

// states reads the state of every id; an error while the session is being replaced.
func (s *sender) states(ids []string) (map[string]int, error) {
	addr, err := sendAPIAddress(senderName)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, id := range ids {
		status, body, err := sendAPI("GET", "http://"+addr+"/v1/messages/"+id, s.token, "")
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s answered %d: %v", id, status, body)
		}
		state, _ := body["state"].(string)
		out[state]++
	}
	return out, nil
}

// received is what the fake phone number decrypted from linked devices.
func received(number string) ([]fakewa.ReceivedMessage, error) {
	raw, err := controlGet("/phones/" + number + "/received")
	if err != nil {
		return nil, err
	}
	var got []fakewa.ReceivedMessage
	return got, json.Unmarshal(raw, &got)
}

// createPhones makes the fake WhatsApp know the numbers (they answer its user lookup).
func createPhones(numbers []string) {
	GinkgoHelper()
	for _, p := range numbers {
		_, err := received(p)
		Expect(err).NotTo(HaveOccurred())
	}
}

func receivedTotal(numbers []string) func() (int, error) {
	return func() (int, error) {
		n := 0
		for _, p := range numbers {
			got, err := received(p)
			if err != nil {
				return 0, err
			}
			n += len(got)
		}
		return n, nil
	}
}

// expectEachOnceInOrder checks that every phone holds exactly its texts, in order, each with
// the WhatsApp id the API gave it; it returns how many the phones were handed more than once
// (a message re-sent with its id after a kill: a phone records it once).
func expectEachOnceInOrder(s *sender, numbers []string, ids func(number string) []string) int {
	GinkgoHelper()
	again := 0
	for _, p := range numbers {
		got, err := received(p)
		Expect(err).NotTo(HaveOccurred())
		want := ids(p)
		Expect(got).To(HaveLen(len(want)), "phone %s: every message, none twice", p)
		for i, m := range got {
			Expect(m.Text).To(Equal("text of "+want[i]), "phone %s: in order", p)
			Expect(m.ID).To(Equal(s.waID[want[i]]), "phone %s: the API's WhatsApp id", p)
			again += m.Copies - 1
		}
		raw, err := controlGet("/phones/" + p + "/received/stats")
		Expect(err).NotTo(HaveOccurred())
		var stats fakewa.PhoneInboxStats
		Expect(json.Unmarshal(raw, &stats)).To(Succeed())
		Expect(stats.DecryptFailures).To(BeZero(), "phone %s decrypted everything", p)
	}
	return again
}

// sessionPID is the one session process of the connection (its pod's UID in its environment).
func sessionPID(g Gomega) (int, string) {
	uid, err := jsonpath("pod/"+senderName+"-session", "{.metadata.uid}")()
	g.Expect(err).NotTo(HaveOccurred())
	procs := processesWithEnv("WA_POD_UID=" + uid)
	g.Expect(procs).To(HaveLen(1), "one session process for pod %s", uid)
	return procs[0].PID, uid
}

var _ = Describe("sending through a connection", Ordered, func() {
	var app *sender

	BeforeAll(func() {
		_, err := kubectlIn(senderManifest, "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = kubectl("delete", "wac", senderName, "--wait=false") })
		Eventually(scanQR(senderName, senderPhone)).WithTimeout(60 * time.Second).WithPolling(time.Second).ShouldNot(BeEmpty())
		Eventually(jsonpath("wac/"+senderName, "{.status.connection.state}")).WithTimeout(30 * time.Second).Should(Equal("Connected"))
		app = &sender{waID: map[string]string{},
			token: strings.TrimSpace(mustKubectl("create", "token", "shop-app", "--audience", sendapi.Audience("default", senderName)))}
	})

	It("sends 200 messages for a ServiceAccount a Role allows to 3 phones: each decrypts each once, in order; delivered, then read", func() {
		Expect(jsonpath("svc/"+senderName+"-session", "{.spec.ports[0].targetPort}")()).To(Equal(strconv.Itoa(sessionenv.SendAPIPort)),
			"the controller created the Service")
		phones := []string{"15550003332", "15550003333", "15550003334"}
		createPhones(phones)
		idsOf := func(p string) []string {
			var ids []string
			for i := range 200 {
				if phones[i%3] == p {
					ids = append(ids, fmt.Sprintf("order-%03d", i))
				}
			}
			return ids
		}
		var ids []string
		for i := range 200 {
			id := fmt.Sprintf("order-%03d", i)
			Expect(app.post(id, phones[i%3], "text of "+id)).To(Equal(http.StatusAccepted), id)
			ids = append(ids, id)
		}
		// A caller that lost an answer sends again: the same id is the same message.
		for _, id := range ids[:10] {
			Expect(app.post(id, phones[slices.Index(ids, id)%3], "text of "+id)).To(Equal(http.StatusOK), id)
		}
		Eventually(receivedTotal(phones)).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(200))
		expectEachOnceInOrder(app, phones, idsOf)
		Eventually(func() (map[string]int, error) { return app.states(ids) }).WithTimeout(30 * time.Second).
			WithPolling(500 * time.Millisecond).Should(Equal(map[string]int{"delivered": 200}))

		for _, p := range phones {
			resp, err := http.Post(st.controlURL+"/phones/"+p+"/read", "application/json", strings.NewReader(`{"ids":[]}`))
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "the phone reads everything it has")
		}
		Eventually(func() (map[string]int, error) { return app.states(ids) }).WithTimeout(30*time.Second).
			WithPolling(500*time.Millisecond).Should(Equal(map[string]int{"read": 200}), "the phones read them")

		By("counting them in the session's metrics")
		Eventually(func() (string, error) {
			addr, err := sessionAddress(senderName, sessionenv.FlagMetricsBindAddress)
			if err != nil {
				return "", err
			}
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return "", err
			}
			defer func() { _ = resp.Body.Close() }()
			raw, err := io.ReadAll(resp.Body)
			return string(raw), err
		}).WithTimeout(10*time.Second).Should(And(ContainSubstring(`whatsapp_session_outbox_messages{state="read"} 200`),
			ContainSubstring(`whatsapp_session_outbox_messages{state="queued"} 0`), MatchRegexp(`(?m)^whatsapp_session_outbox_sends_total (2[0-9]{2}|[3-9][0-9]{2})$`)), "200 sends, more if one was retried")
	})

	It("refuses a ServiceAccount without the Role (403), no token and a token for another audience (401)", func() {
		addr, err := sendAPIAddress(senderName)
		Expect(err).NotTo(HaveOccurred())
		api := "http://" + addr + "/v1/messages"
		body := `{"to":"+15550003332","text":"not from you","id":"order-000"}`
		nosy := strings.TrimSpace(mustKubectl("create", "token", "nosy-app", "--audience", sendapi.Audience("default", senderName)))
		status, _, err := sendAPI("POST", api, nosy, body)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusForbidden))
		status, _, err = sendAPI("POST", api, "", body)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))
		wrongAudience := strings.TrimSpace(mustKubectl("create", "token", "shop-app"))
		status, _, err = sendAPI("GET", api+"/order-000", wrongAudience, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))
	})

	It("sends each of 300 messages once, in order, across 3 kills of the session pod", func() {
		phones := []string{"15550003342", "15550003343", "15550003344"}
		createPhones(phones)
		id := func(i int) string { return fmt.Sprintf("burst-%03d", i) }
		idsOf := func(p string) []string {
			var ids []string
			for i := range 300 {
				if phones[i%3] == p {
					ids = append(ids, id(i))
				}
			}
			return ids
		}
		var ids []string
		for batch := range 3 {
			for i := batch * 100; i < (batch+1)*100; i++ {
				app.post(id(i), phones[i%3], "text of "+id(i))
				ids = append(ids, id(i))
			}
			// Kill the session while the phones receive this batch; the controller replaces
			// the pod and the next batch is POSTed, with retries, while it does.
			Eventually(receivedTotal(phones)).WithTimeout(60 * time.Second).WithPolling(20 * time.Millisecond).
				Should(BeNumerically(">=", batch*100+30))
			pid, uid := sessionPID(Default)
			Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
			Eventually(func(g Gomega) {
				_, newUID := sessionPID(g)
				g.Expect(newUID).NotTo(Equal(uid), "a new pod")
			}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		}
		// A caller that does not know what the killed sessions answered sends everything again.
		for i, id := range ids {
			Expect(app.post(id, phones[i%3], "text of "+id)).To(Equal(http.StatusOK), id)
		}
		Eventually(func() (map[string]int, error) { return app.states(ids) }).WithTimeout(60 * time.Second).
			WithPolling(time.Second).Should(Equal(map[string]int{"delivered": 300}))
		again := expectEachOnceInOrder(app, phones, idsOf)
		AddReportEntry("messages a phone was handed again after a kill (same WhatsApp id, recorded once)", again)
	})

	It("serves HTTPS with the certificate of spec.send.tls's Secret, once the pod is replaced", func() {
		kp, err := testtls.Issue(senderName+"-session.default.svc", 42)
		Expect(err).NotTo(HaveOccurred())
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), kp.CertPEM, 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "tls.key"), kp.KeyPEM, 0o600)).To(Succeed())
		mustKubectl("create", "secret", "tls", "sender-api-tls", "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key"))
		_, uid := sessionPID(Default)
		mustKubectl("patch", "wac", senderName, "--type=merge", "-p", `{"spec":{"send":{"tls":{"secretName":"sender-api-tls"}}}}`)

		https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: kp.CA, ServerName: senderName + "-session.default.svc"}}}
		body := `{"to":"+15550003332","text":"over TLS","id":"tls-1"}`
		Eventually(func(g Gomega) {
			_, newUID := sessionPID(g)
			g.Expect(newUID).NotTo(Equal(uid), "spec.send changed the pod")
			addr, err := sendAPIAddress(senderName)
			g.Expect(err).NotTo(HaveOccurred())
			req, err := http.NewRequest("POST", "https://"+addr+"/v1/messages", strings.NewReader(body))
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+app.token)
			resp, err := https.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
			g.Expect(resp.TLS.PeerCertificates[0].SerialNumber.Int64()).To(BeEquivalentTo(42), "the Secret's certificate")
		}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		addr, err := sendAPIAddress(senderName)
		Expect(err).NotTo(HaveOccurred())
		status, _, err := sendAPI("POST", "http://"+addr+"/v1/messages", app.token, body)
		Expect(status).NotTo(Equal(http.StatusAccepted), "no plain HTTP any more (%v)", err)
		Eventually(func() ([]fakewa.ReceivedMessage, error) { return received("15550003332") }).WithTimeout(30 * time.Second).
			Should(ContainElement(HaveField("Text", "over TLS")))
	})
})
