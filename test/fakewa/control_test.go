package fakewa_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func call(t *testing.T, api *httptest.Server, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func TestControlAPIDrivesPairingAndFaults(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	api := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(api.Close)

	c := newClient(t, srv, storePath(t))
	qrs := qrChannel(t, c)
	g.Expect(c.Connect()).To(Succeed())
	qr := nextQR(t, c, qrs).Code

	var conns []fakewa.ConnInfo
	g.Expect(call(t, api, "GET", "/connections", "", &conns)).To(Equal(http.StatusOK))
	g.Expect(conns).To(ConsistOf(HaveField("Kind", "registration")))

	body, _ := json.Marshal(map[string]string{"phone": "+1 555 040 4040", "qr": qr})
	var paired struct{ JID string }
	g.Expect(call(t, api, "POST", "/scan", string(body), &paired)).To(Equal(http.StatusOK))
	g.Expect(paired.JID).To(HavePrefix("15550404040:"))
	waitNth[*events.Connected](t, c.events, 1)

	var devices []fakewa.DeviceStats
	g.Expect(call(t, api, "GET", "/devices", "", &devices)).To(Equal(http.StatusOK))
	g.Expect(devices).To(ConsistOf(And(HaveField("JID", paired.JID), HaveField("Live", 1))))

	device := "/devices/" + url.PathEscape(paired.JID)
	var hit struct{ Connections int }
	g.Expect(call(t, api, "POST", device+"/stream-error", `{"code":503}`, &hit)).To(Equal(http.StatusOK))
	g.Expect(hit.Connections).To(Equal(1))
	waitNth[*events.Connected](t, c.events, 2)

	g.Expect(call(t, api, "POST", device+"/drop", "", &hit)).To(Equal(http.StatusOK))
	waitNth[*events.Connected](t, c.events, 3)

	g.Expect(call(t, api, "DELETE", device, "", nil)).To(Equal(http.StatusNoContent))
	waitNth[*events.LoggedOut](t, c.events, 1)

	var st fakewa.DeviceStats
	g.Expect(call(t, api, "GET", device, "", &st)).To(Equal(http.StatusOK))
	g.Expect(st.Removed).To(BeTrue())
	g.Expect(st.Logins).To(Equal(3))
	g.Expect(st.MaxLive).To(Equal(1))
	g.Expect(st.Timeline).NotTo(BeEmpty())

	g.Expect(call(t, api, "POST", "/scan", `{"phone":"1","qr":"nonsense"}`, nil)).To(Equal(http.StatusBadRequest))
	g.Expect(call(t, api, "POST", "/devices/1555:9@s.whatsapp.net/drop", "", nil)).To(Equal(http.StatusNotFound))
}

// A phone scans what the client shows: the link form of current whatsmeow and
// the bare form of older versions (the same fields without prefix and client type).
func TestScanAcceptsBothQRForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		asShow func(string) string
	}{
		{name: "link form as whatsmeow shows it", asShow: func(qr string) string { return qr }},
		{name: "bare form of older whatsmeow", asShow: func(qr string) string {
			fields := strings.Split(strings.TrimPrefix(qr, fakewa.QRLinkPrefix), ",")
			return strings.Join(fields[:4], ",")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			srv := startServer(t, fakewa.Options{})
			api := httptest.NewServer(srv.ControlHandler())
			t.Cleanup(api.Close)
			c := newClient(t, srv, storePath(t))
			qrs := qrChannel(t, c)
			g.Expect(c.Connect()).To(Succeed())
			qr := tc.asShow(nextQR(t, c, qrs).Code)

			body, _ := json.Marshal(map[string]string{"phone": "+1 555 040 5050", "qr": qr})
			var paired struct{ JID string }
			g.Expect(call(t, api, "POST", "/scan", string(body), &paired)).To(Equal(http.StatusOK))
			g.Expect(paired.JID).To(HavePrefix("15550405050:"))
			waitNth[*events.Connected](t, c.events, 1)
		})
	}
}
