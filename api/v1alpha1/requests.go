package v1alpha1

import "time"

// MaxRequestTokenLength bounds the value of a request annotation. The shipped admission policy
// refuses longer ones; the controller and the session ignore them (never echo them), so that a
// resource created without the policy cannot make every status write fail.
const MaxRequestTokenLength = 64

// RequestToken is the token of a request annotation the operator acts on and echoes in
// status: set, and at most MaxRequestTokenLength characters. Otherwise "".
func RequestToken(wac *WhatsAppConnection, annotation string) string {
	tok := wac.Annotations[annotation]
	if len(tok) > MaxRequestTokenLength {
		return ""
	}
	return tok
}

// LogoutTokenPredatesResource reports whether a logout token is a timestamp older than the
// resource: a manifest re-applied or restored with the token of an earlier logout still in it.
// Such a token is handled without logging out, so that it never wipes a device.
func LogoutTokenPredatesResource(wac *WhatsAppConnection, token string) bool {
	t, err := time.Parse(time.RFC3339Nano, token)
	// creationTimestamp has whole seconds: a token from the second of creation is not older.
	return err == nil && !wac.CreationTimestamp.IsZero() && t.Before(wac.CreationTimestamp.Time)
}
