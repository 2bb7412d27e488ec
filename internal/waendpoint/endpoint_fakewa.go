//go:build fakewa

package waendpoint

import (
	"fmt"
	"os"

	"go.mau.fi/whatsmeow"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// Configure points the client at the fake server named by the config file
// in ConfigEnv. Without it the call fails: a test build must never fall back
// to the real service.
func Configure(cli *whatsmeow.Client) error {
	path := os.Getenv(ConfigEnv)
	if path == "" {
		return fmt.Errorf("fakewa build: %s is not set", ConfigEnv)
	}
	cfg, err := fakewa.ReadClientConfig(path)
	if err != nil {
		return err
	}
	return cfg.Apply(cli)
}
