package fakewa

import (
	"encoding/base64"
	"strings"
)

// QRLinkPrefix starts the QR payload of whatsmeow from 2026 on (pair.go makeQRData):
// https://wa.me/settings/linked_devices#ref,noise,identity,adv,clientType. Older
// versions show the bare ref,noise,identity,adv; a phone reads both.
const QRLinkPrefix = "https://wa.me/settings/linked_devices#"

// QRPayload is what a phone reads from a companion's QR code.
type QRPayload struct {
	Ref         string
	NoiseKey    []byte
	IdentityKey []byte
	ADVSecret   []byte
	// ClientType is whatsmeow's PairClientType ("1" Chrome … "e" Android); empty in the old form.
	ClientType string
}

// ParseQR reads a QR payload in either form: the bare
// "ref,base64 noise key,base64 identity key,base64 ADV secret", or the link
// QRLinkPrefix + the same four fields + ",clientType". Keys are 32 bytes each.
func ParseQR(qr string) (QRPayload, error) {
	want := 4
	if rest, ok := strings.CutPrefix(qr, QRLinkPrefix); ok {
		qr, want = rest, 5
	}
	parts := strings.Split(qr, ",")
	if len(parts) != want || parts[0] == "" {
		return QRPayload{}, ErrMalformedQR
	}
	p := QRPayload{Ref: parts[0]}
	if want == 5 {
		if parts[4] == "" {
			return QRPayload{}, ErrMalformedQR
		}
		p.ClientType = parts[4]
	}
	for i, dst := range []*[]byte{&p.NoiseKey, &p.IdentityKey, &p.ADVSecret} {
		key, err := base64.StdEncoding.DecodeString(parts[i+1])
		if err != nil || len(key) != 32 {
			return QRPayload{}, ErrMalformedQR
		}
		*dst = key
	}
	return p, nil
}
