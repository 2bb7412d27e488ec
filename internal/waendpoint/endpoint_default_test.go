//go:build !fakewa

package waendpoint_test

import (
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"

	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
)

// realWACertPubKey is WhatsApp's noise root key as whatsmeow ships it.
var realWACertPubKey = [32]byte{0x14, 0x23, 0x75, 0x57, 0x4d, 0xa, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37, 0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b}

// httpClients reads the client's private HTTP client pointers and their
// transports: Configure must leave all of them as NewClient made them.
func httpClients(cli *whatsmeow.Client) []uintptr {
	v := reflect.ValueOf(cli).Elem()
	var out []uintptr
	for _, name := range []string{"preLoginHTTP", "websocketHTTP"} {
		field := v.FieldByName(name)
		out = append(out, field.Pointer(), field.Elem().FieldByName("Transport").Elem().Pointer())
	}
	return out
}

func TestDefaultBuildKeepsRealEndpointEvenWithFakeConfigInEnv(t *testing.T) {
	g := NewWithT(t)
	// A fake server and its config file are present, and the variable names
	// it: the production build must ignore all of that.
	srv := fakeServerInEnv(t)

	cli := newTestClient(t)
	before := httpClients(cli)
	g.Expect(waendpoint.Configure(cli)).To(Succeed())

	g.Expect(whatsmeow.WACertPubKey).To(Equal(realWACertPubKey))
	g.Expect(httpClients(cli)).To(Equal(before), "no HTTP client override")
	g.Expect(srv.Stats().Handshakes).To(BeZero())
}
