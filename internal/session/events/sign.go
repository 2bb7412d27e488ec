package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Standard Webhooks (https://www.standardwebhooks.com) signing: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", signed with HMAC-SHA256 and sent base64-encoded as
// "v1,<signature>" in webhook-signature. Several space-separated signatures are allowed: during
// a key rotation every current key signs, so a receiver that knows either key accepts.

// secretPrefix marks a Standard Webhooks secret: "whsec_" followed by base64 key bytes.
const secretPrefix = "whsec_"

// ParseSecret decodes a signing secret given as "whsec_<base64>" (or bare base64).
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), secretPrefix))
	if err != nil {
		return nil, errors.New("signing secret is not whsec_ followed by base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, errors.New("signing secret must decode to 24 to 64 bytes")
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one message, one "v1," entry per key.
func Sign(keys [][]byte, id string, timestamp int64, body []byte) string {
	var parts []string
	for _, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
		mac.Write(body)
		parts = append(parts, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(parts, " ")
}
