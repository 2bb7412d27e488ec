package localrunner

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podDir is the pod's own folder: logs, kubeconfig, emptyDirs and its tmp folder.
func (r *Runner) podDir(pod *corev1.Pod) string {
	return filepath.Join(r.opts.WorkDir, "pods", string(pod.UID))
}

// tmpDir is HOME and TMPDIR. The underscore keeps it apart from any volume: volume names are
// DNS labels.
func (r *Runner) tmpDir(pod *corev1.Pod) string { return filepath.Join(r.podDir(pod), "_tmp") }

// volumeDirs creates a folder for every volume of the pod and returns them by volume name.
func (r *Runner) volumeDirs(pod *corev1.Pod) (map[string]string, error) {
	dirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		var dir string
		if pvc := v.PersistentVolumeClaim; pvc != nil {
			if !safeName(pvc.ClaimName) {
				return nil, fmt.Errorf("volume %s: claim name %q is not a plain name", v.Name, pvc.ClaimName)
			}
			// Keyed by claim, not pod: the folder outlives the pod like the claim does.
			dir = filepath.Join(r.opts.WorkDir, "volumes", pod.Namespace, pvc.ClaimName)
		} else {
			// emptyDir, and whatever else is not emulated (projected tokens, secrets, ...): an
			// empty folder, so that the process at least finds its mount path.
			dir = filepath.Join(r.podDir(pod), v.Name)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		dirs[v.Name] = dir
	}
	return dirs, nil
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

// mount maps one container path prefix to a local folder.
type mount struct {
	containerPath string
	localPath     string
}

// mountsFor lists the container's mounts, longest path first so that a nested mount wins.
func mountsFor(c *corev1.Container, dirs map[string]string) ([]mount, error) {
	var ms []mount
	for _, vm := range c.VolumeMounts {
		dir, ok := dirs[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		if vm.SubPath != "" {
			if strings.Contains(vm.SubPath, "..") || path.IsAbs(vm.SubPath) {
				return nil, fmt.Errorf("volumeMount %s: subPath %q leaves the volume", vm.Name, vm.SubPath)
			}
			dir = filepath.Join(dir, filepath.FromSlash(vm.SubPath))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		ms = append(ms, mount{containerPath: path.Clean(vm.MountPath), localPath: dir})
	}
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].containerPath) > len(ms[j].containerPath) })
	return ms, nil
}

// rewritePath maps a value that is a path under a mount to the local folder; also the VALUE of
// --flag=VALUE. Other values are returned unchanged.
func rewritePath(ms []mount, value string) string {
	if strings.HasPrefix(value, "-") {
		if name, v, ok := strings.Cut(value, "="); ok {
			return name + "=" + rewritePath(ms, v)
		}
		return value
	}
	for _, m := range ms {
		if m.containerPath == "/" {
			continue // mapping every absolute path would break the process's own binaries
		}
		if value == m.containerPath {
			return m.localPath
		}
		if rest, ok := strings.CutPrefix(value, m.containerPath+"/"); ok {
			return filepath.Join(m.localPath, filepath.FromSlash(rest))
		}
	}
	return value
}
