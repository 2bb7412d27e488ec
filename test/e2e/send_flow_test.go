package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	senderName  = "sender"
	senderPhone = "+15550003331"
	recipient   = "15550003332"
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
	procs := processesWithEnv(sessionenv.ConnectionName + "=" + name)
	if len(procs) != 1 {
		return "", errNoSession
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(procs[0].PID), "cmdline"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`--` + sessionenv.FlagSendAPIBindAddress + `=(127\.0\.0\.1:[0-9]+)`).FindSubmatch(cmdline)
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

var _ = Describe("sending through a connection", func() {
	It("sends for a ServiceAccount a Role allows, to a phone that decrypts it, and refuses others", func() {
		_, err := kubectlIn(senderManifest, "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = kubectl("delete", "wac", senderName, "--wait=false") })
		Eventually(scanQR(senderName, senderPhone)).WithTimeout(60 * time.Second).WithPolling(time.Second).ShouldNot(BeEmpty())
		Eventually(jsonpath("wac/"+senderName, "{.status.connection.state}")).WithTimeout(30 * time.Second).Should(Equal("Connected"))
		_, err = kubectl("get", "svc", senderName+"-session")
		Expect(err).NotTo(HaveOccurred(), "the controller created the Service")

		audience := sendapi.Audience("default", senderName)
		app := strings.TrimSpace(mustKubectl("create", "token", "shop-app", "--audience", audience))
		nosy := strings.TrimSpace(mustKubectl("create", "token", "nosy-app", "--audience", audience))
		var addr string
		Eventually(func() error { addr, err = sendAPIAddress(senderName); return err }).WithTimeout(30 * time.Second).Should(Succeed())
		api := "http://" + addr + "/v1/messages"
		// The recipient's phone exists at fakewa (it answers WhatsApp's user lookup).
		_, err = controlGet("/phones/" + recipient + "/received")
		Expect(err).NotTo(HaveOccurred())

		body := `{"to":"+` + recipient + `","text":"your order shipped","id":"order-1"}`
		Eventually(func() (int, error) { status, _, err := sendAPI("POST", api, app, body); return status, err }).
			WithTimeout(30*time.Second).WithPolling(time.Second).Should(Equal(http.StatusAccepted), "once the session's access checks are granted")
		Eventually(func(g Gomega) {
			raw, err := controlGet("/phones/" + recipient + "/received")
			g.Expect(err).NotTo(HaveOccurred())
			var got []fakewa.ReceivedMessage
			g.Expect(json.Unmarshal(raw, &got)).To(Succeed())
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Text).To(Equal("your order shipped"))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Eventually(func() any {
			_, out, _ := sendAPI("GET", api+"/order-1", app, "")
			return out["state"]
		}).WithTimeout(30 * time.Second).Should(Equal("delivered"))

		status, _, err := sendAPI("POST", api, nosy, body)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusForbidden))
		status, _, err = sendAPI("POST", api, "", body)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))
		wrongAudience := strings.TrimSpace(mustKubectl("create", "token", "shop-app"))
		status, _, err = sendAPI("GET", api+"/order-1", wrongAudience, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))
	})
})
