package fakewa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// whatsmeow dials this host whatever transport it is given, so the TLS
// certificate must name it for the client's verification to pass.
const waHost = "web.whatsapp.com"

// The intermediate serial is arbitrary; the leaf must name it as its issuer.
const intermediateSerial = 7

// Credentials are the trust anchors a client needs to talk to a fake server:
// the noise root key that replaces whatsmeow.WACertPubKey and the TLS CA.
type Credentials struct {
	rootKey *keys.KeyPair
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	caPEM   []byte
}

var (
	processCredsOnce sync.Once
	processCreds     *Credentials
	processCredsErr  error
)

// ProcessCredentials returns one set of credentials per process. whatsmeow's
// root key is a package variable, so every fake server in one test binary
// shares a root: pointing a client at one server must not break another.
func ProcessCredentials() (*Credentials, error) {
	processCredsOnce.Do(func() { processCreds, processCredsErr = NewCredentials() })
	return processCreds, processCredsErr
}

// NewCredentials generates a fresh noise root key and TLS CA.
func NewCredentials() (*Credentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fakewa test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Credentials{
		rootKey: keys.NewKeyPair(),
		caCert:  caCert,
		caKey:   caKey,
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// RootPublicKey is the value a client must use as whatsmeow.WACertPubKey.
func (c *Credentials) RootPublicKey() [32]byte { return *c.rootKey.Pub }

// CAPEM is the PEM of the TLS CA that signs the server certificate.
func (c *Credentials) CAPEM() []byte { return append([]byte(nil), c.caPEM...) }

// serverTLSCert issues a certificate for the fake server, valid for the real
// host name (what the client verifies) and for loopback (handy with curl).
func (c *Credentials) serverTLSCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: waHost},
		DNSNames:     []string{waHost, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// noiseCertChain builds the chain whatsmeow's verifyServerCert accepts: an
// intermediate signed by the root (issuer serial 0) and a leaf for the
// server's static noise key signed by the intermediate.
func (c *Credentials) noiseCertChain(serverStatic *keys.KeyPair) ([]byte, error) {
	intermediate := keys.NewKeyPair()
	now := time.Now()
	intermediateDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(0),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(uint64(now.Add(-time.Hour).Unix())),
		NotAfter:     proto.Uint64(uint64(now.Add(365 * 24 * time.Hour).Unix())),
	})
	if err != nil {
		return nil, err
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial + 1),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          serverStatic.Pub[:],
		NotBefore:    proto.Uint64(uint64(now.Add(-time.Hour).Unix())),
		NotAfter:     proto.Uint64(uint64(now.Add(30 * 24 * time.Hour).Unix())),
	})
	if err != nil {
		return nil, err
	}
	intermediateSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*c.rootKey.Priv), intermediateDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	return proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: intermediateDetails, Signature: intermediateSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
}
