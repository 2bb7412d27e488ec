package localrunner

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// secretRefresh is how often the keys of a running pod's Secret volumes are written again. A
// kubelet does it on each pod sync (about a minute); the runner is quicker, for tests.
const secretRefresh = 2 * time.Second

// projectSecrets writes the keys of the pod's Secret volumes into their folders, as a kubelet
// does: all keys, or the listed items under their paths; a missing optional Secret or key is
// left out, a missing required one keeps the pod waiting (retry).
func (r *Runner) projectSecrets(ctx context.Context, pod *corev1.Pod, dirs map[string]string) error {
	for _, v := range pod.Spec.Volumes {
		src := v.Secret
		if src == nil {
			continue
		}
		optional := src.Optional != nil && *src.Optional
		secret, err := r.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, src.SecretName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && optional:
			secret = &corev1.Secret{}
		case apierrors.IsNotFound(err):
			return &configError{msg: fmt.Sprintf("volume %s: secret %q not found", v.Name, src.SecretName), retry: true}
		case err != nil:
			return &configError{msg: fmt.Sprintf("volume %s: %v", v.Name, err), retry: true}
		}
		files := map[string][]byte{}
		if len(src.Items) == 0 {
			for k, val := range secret.Data {
				files[k] = val
			}
		}
		for _, item := range src.Items {
			val, ok := secret.Data[item.Key]
			if !ok {
				if optional {
					continue
				}
				return &configError{msg: fmt.Sprintf("volume %s: references non-existent secret key: %s", v.Name, item.Key), retry: true}
			}
			files[item.Path] = val
		}
		if err := writeProjection(dirs[v.Name], files); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// writeProjection makes dir hold exactly files, each replaced atomically (written aside, then
// renamed), so that a reader never sees half a value.
func writeProjection(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; !keep && !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, val := range files {
		clean := path.Clean(name)
		if clean == "." || path.IsAbs(clean) || clean == ".." || len(clean) > 2 && clean[:3] == "../" {
			return fmt.Errorf("path %q leaves the volume", name)
		}
		target := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if cur, err := os.ReadFile(target); err == nil && string(cur) == string(val) {
			continue
		}
		tmp := target + ".tmp"
		if err := os.WriteFile(tmp, val, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			return err
		}
	}
	return nil
}

// refreshSecrets writes the pod's Secret volumes again every secretRefresh until done closes.
func (run *podRun) refreshSecrets(ctx context.Context, dirs map[string]string, done <-chan struct{}) {
	t := time.NewTicker(secretRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
			if err := run.r.projectSecrets(ctx, run.pod, dirs); err != nil && ctx.Err() == nil {
				run.log.V(1).Info("cannot refresh a Secret volume", "reason", err.Error())
			}
		}
	}
}
