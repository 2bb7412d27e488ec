// Package uncompressed makes a client of the API server ask for uncompressed responses.
//
// Go's HTTP client asks for gzip by default, and the API server then compresses every event of
// every informer's watch (watch-list streams are gzipped per flush): about 1 ms of its CPU per
// resource in the throughput bench, for bytes that only cross the cluster network.
// rest.Config's DisableCompression alone is not enough: for a server without TLS (a local
// proxy) client-go uses http.DefaultTransport, which ignores it; an explicit Accept-Encoding is
// honoured by all.
package uncompressed

import (
	"net/http"

	"k8s.io/client-go/rest"
)

// Config is a copy of cfg whose requests ask for uncompressed responses.
func Config(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.DisableCompression = true
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return identityEncoding{rt} })
	return cfg
}

// identityEncoding sets Accept-Encoding: identity on a request that names no encoding.
type identityEncoding struct{ next http.RoundTripper }

func (t identityEncoding) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept-Encoding") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept-Encoding", "identity")
	}
	return t.next.RoundTrip(r)
}
