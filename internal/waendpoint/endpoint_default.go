//go:build !fakewa

package waendpoint

import "go.mau.fi/whatsmeow"

// Configure keeps the client on the real WhatsApp endpoint and root key.
// It exists so the session runtime has one call site for both builds.
func Configure(cli *whatsmeow.Client) error { return nil }
