package uncompressed

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

func TestRequestsAskForUncompressedResponses(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Accept-Encoding"))
	}))
	defer srv.Close()
	base := &rest.Config{Host: srv.URL}
	cfg := Config(base)
	if base.DisableCompression || base.WrapTransport != nil {
		t.Fatal("Config changed the config it was given")
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, asked := range []string{"", "br"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if asked != "" {
			req.Header.Set("Accept-Encoding", asked)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	// Without TLS client-go uses http.DefaultTransport, which would have asked for gzip.
	if len(got) != 2 || got[0] != "identity" || got[1] != "br" {
		t.Fatalf("Accept-Encoding sent: %q, want identity, then the caller's own", got)
	}
}
