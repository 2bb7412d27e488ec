package session

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/go-logr/logr"
)

// ErrStoreSecretChanged ends a session whose store Secret changed: an env var never changes in a
// running container, so the pod is replaced (the process exits, the controller creates a new
// pod, whose env the kubelet resolves from the Secret as it is now). The manager reads no
// Secret: the change is seen here, in the file of an optional Secret volume with the same key,
// which the kubelet keeps current (within its sync period, about a minute).
var ErrStoreSecretChanged = errors.New("the store Secret changed: the session pod restarts to read it")

// watchStoreSecret polls cfg.StoreSecretFile and stops the session once it holds a value other
// than the one the session started with. A missing or empty file (the Secret or key is gone, or
// the volume not yet filled) is no change: the running session keeps its connection.
func watchStoreSecret(ctx context.Context, cfg Config, log logr.Logger, stop context.CancelCauseFunc) {
	if cfg.StoreSecretFile == "" {
		return
	}
	t := time.NewTicker(cfg.StoreSecretPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(cfg.StoreSecretFile)
		if err != nil || len(data) == 0 || string(data) == cfg.StoreSecretValue {
			continue
		}
		log.Info("the store Secret changed; ending the session so that a new pod reads it")
		stop(ErrStoreSecretChanged)
		return
	}
}
