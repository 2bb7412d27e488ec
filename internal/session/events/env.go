package events

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// tlsRoots is a parsed CACerts bundle.
type tlsRoots struct{ pool *x509.CertPool }

func parseRoots(pem string) (*tlsRoots, bool) {
	if pem == "" {
		return nil, true
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, false
	}
	return &tlsRoots{pool: pool}, true
}

// SinksFromEnv reads the sinks the controller put in the pod's environment
// (sessionenv.EventSinkEnv) and the inbox retention (0 = default). A sink that cannot be used
// (a key that is not a Standard Webhooks secret, CA certificates that do not parse) is kept,
// marked Invalid with a fixed text, so that the session reports it instead of crash looping;
// only a contract the controller could not have written is an error.
func SinksFromEnv(getenv func(string) string) ([]Sink, time.Duration, error) {
	var retention time.Duration
	if v := getenv(sessionenv.EventRetention); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", sessionenv.EventRetention, err)
		}
		retention = d
	}
	var sinks []Sink
	for i := 0; ; i++ {
		raw := getenv(sessionenv.EventSinkEnv(i))
		if raw == "" {
			break
		}
		var c sessionenv.EventSink
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, 0, fmt.Errorf("%s is not a sink: %w", sessionenv.EventSinkEnv(i), err)
		}
		s := Sink{Name: c.Name, URL: c.URL, Types: c.Types, Chats: c.Chats, Invalid: c.Invalid}
		for field, v := range map[*time.Duration]string{&s.Timeout: c.Timeout, &s.MinBackoff: c.BackoffDelay, &s.MaxBackoff: c.BackoffMax, &s.MaxAge: c.MaxAge} {
			if v == "" {
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, 0, fmt.Errorf("sink %s: %w", c.Name, err)
			}
			*field = d
		}
		for j := range c.Keys {
			key, err := ParseSecret(getenv(sessionenv.EventSinkKeyEnv(i, j)))
			if err != nil && s.Invalid == "" {
				s.Invalid = "SigningKeyInvalid: a signing key is not whsec_ followed by base64 of 24 to 64 bytes"
			}
			s.Keys = append(s.Keys, key)
		}
		if roots, ok := parseRoots(c.CACerts); !ok {
			if s.Invalid == "" {
				s.Invalid = "CACertsInvalid: CACerts holds no PEM certificate"
			}
		} else {
			s.Client = NewHTTPClient(roots)
		}
		if dl := c.DeadLetter; dl != nil {
			s.DeadLetter = &Endpoint{URL: dl.URL, Invalid: dl.Invalid}
			if roots, ok := parseRoots(dl.CACerts); !ok {
				s.DeadLetter.Invalid = "CACertsInvalid"
			} else if roots != nil {
				s.DeadLetter.Client = NewHTTPClient(roots)
			}
		}
		sinks = append(sinks, s)
	}
	return sinks, retention, nil
}
