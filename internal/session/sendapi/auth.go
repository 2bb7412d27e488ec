package sendapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Audience is the token audience the send API of one connection accepts: a token requested
// for another connection (or for the API server) is refused, so a token leaked from one
// connection's callers opens nothing else.
func Audience(namespace, name string) string {
	return whatsappv1alpha1.GroupVersion.Group + "/namespaces/" + namespace + "/whatsappconnections/" + name
}

// Resource and Subresource are what a Role grants to let a caller use the send API:
// "create" sends, "get" reads message states, on whatsappconnections/messages with the
// connection's name in resourceNames.
const (
	Resource    = "whatsappconnections"
	Subresource = "messages"
)

// Decision is the outcome of checking a request's credentials.
type Decision int

const (
	Allowed Decision = iota
	// Unauthenticated: no token, or one the API server does not accept for this audience (401).
	Unauthenticated
	// Forbidden: the caller may not do this to this connection (403).
	Forbidden
)

// Reviewer asks the API server about a token and an identity.
type Reviewer interface {
	// Authenticate is a TokenReview: the token's user when it is valid for audience.
	Authenticate(ctx context.Context, token, audience string) (*UserInfo, error)
	// Authorize is a SubjectAccessReview of user for attrs.
	Authorize(ctx context.Context, user *UserInfo, attrs ResourceAttributes) (bool, error)
}

// Authorizer decides whether a bearer token may use one connection's send API: a TokenReview
// with the connection's audience, then a SubjectAccessReview for the verb on
// whatsappconnections/messages with the connection's name. Decisions are cached for TTL (a
// revoked grant or token works at most that long) in at most MaxEntries entries, keyed by a
// hash of the token: never the token itself.
type Authorizer struct {
	Reviewer        Reviewer
	Namespace, Name string
	TTL             time.Duration
	MaxEntries      int
	now             func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	decision Decision
	expires  time.Time
}

// Default cache bounds: a few seconds keeps a burst of sends at one review pair; 4096 entries
// of 48 bytes are under 1 MiB even when someone sprays random tokens.
const (
	DefaultTTL        = 10 * time.Second
	DefaultMaxEntries = 4096
)

// Check decides for token and verb ("create" or "get"). An error means the API server could not
// be asked; nothing is cached then.
func (a *Authorizer) Check(ctx context.Context, token, verb string) (Decision, error) {
	if token == "" {
		return Unauthenticated, nil
	}
	now := time.Now
	if a.now != nil {
		now = a.now
	}
	key := sha256.Sum256([]byte(verb + "\x00" + token))
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now().Before(c.expires) {
		a.mu.Unlock()
		return c.decision, nil
	}
	a.mu.Unlock()

	d, err := a.review(ctx, token, verb)
	if err != nil {
		return Unauthenticated, err
	}
	a.remember(key, d, now())
	return d, nil
}

func (a *Authorizer) review(ctx context.Context, token, verb string) (Decision, error) {
	user, err := a.Reviewer.Authenticate(ctx, token, Audience(a.Namespace, a.Name))
	if err != nil {
		return Unauthenticated, err
	}
	if user == nil {
		return Unauthenticated, nil
	}
	ok, err := a.Reviewer.Authorize(ctx, user, ResourceAttributes{
		Namespace: a.Namespace, Verb: verb, Group: whatsappv1alpha1.GroupVersion.Group,
		Version: whatsappv1alpha1.GroupVersion.Version, Resource: Resource, Subresource: Subresource, Name: a.Name,
	})
	if err != nil {
		return Unauthenticated, err
	}
	if !ok {
		return Forbidden, nil
	}
	return Allowed, nil
}

func (a *Authorizer) remember(key [32]byte, d Decision, now time.Time) {
	ttl, limit := a.TTL, a.MaxEntries
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[[32]byte]cached{}
	}
	if len(a.cache) >= limit {
		for k, c := range a.cache {
			if !now.Before(c.expires) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < limit {
				break
			}
			delete(a.cache, k) // map order: an arbitrary entry
		}
	}
	a.cache[key] = cached{decision: d, expires: now.Add(ttl)}
}

// UserInfo is the identity a TokenReview returns (authentication.k8s.io/v1 UserInfo).
type UserInfo struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

// ResourceAttributes is what a SubjectAccessReview asks about (authorization.k8s.io/v1).
type ResourceAttributes struct {
	Namespace   string `json:"namespace,omitempty"`
	Verb        string `json:"verb"`
	Group       string `json:"group"`
	Version     string `json:"version,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Name        string `json:"name,omitempty"`
}

// apiReviewer is Reviewer over the API server. It speaks the two review kinds' JSON itself:
// their Go types would link two more API groups into the session, whose memory is mostly its
// binary (cmd/session/deps_test.go).
type apiReviewer struct {
	host   string
	client *http.Client
}

// NewReviewer makes a Reviewer that posts TokenReviews and SubjectAccessReviews with cfg's
// credentials (the session's ServiceAccount, bound to system:auth-delegator).
func NewReviewer(cfg *rest.Config) (Reviewer, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return &apiReviewer{host: host + cfg.APIPath, client: client}, nil
}

func (r *apiReviewer) Authenticate(ctx context.Context, token, audience string) (*UserInfo, error) {
	var out struct {
		Status struct {
			Authenticated bool     `json:"authenticated"`
			User          UserInfo `json:"user"`
			Audiences     []string `json:"audiences"`
		} `json:"status"`
	}
	err := r.post(ctx, "/apis/authentication.k8s.io/v1/tokenreviews", map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
		"spec": map[string]any{"token": token, "audiences": []string{audience}},
	}, &out)
	if err != nil {
		return nil, fmt.Errorf("token review failed: %w", err)
	}
	// The API server answers authenticated only when the token is valid for one of the
	// audiences asked for, and lists which; check both.
	if !out.Status.Authenticated || !slices.Contains(out.Status.Audiences, audience) {
		return nil, nil
	}
	return &out.Status.User, nil
}

func (r *apiReviewer) Authorize(ctx context.Context, user *UserInfo, attrs ResourceAttributes) (bool, error) {
	var out struct {
		Status struct {
			Allowed bool `json:"allowed"`
			Denied  bool `json:"denied"`
		} `json:"status"`
	}
	err := r.post(ctx, "/apis/authorization.k8s.io/v1/subjectaccessreviews", map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": map[string]any{"user": user.Username, "uid": user.UID, "groups": user.Groups, "extra": user.Extra,
			"resourceAttributes": attrs},
	}, &out)
	if err != nil {
		return false, fmt.Errorf("access review failed: %w", err)
	}
	return out.Status.Allowed && !out.Status.Denied, nil
}

// maxReviewBytes bounds a review answer read from the API server.
const maxReviewBytes = 1 << 20

func (r *apiReviewer) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.host+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReviewBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("API server answered %s", resp.Status)
	}
	return json.Unmarshal(raw, out)
}
