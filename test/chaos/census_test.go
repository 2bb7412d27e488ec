package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// census follows the session pods through a watch and records every moment a connection had
// more than one. It is keyed as the informer keys (namespace/name), so a relist after an API
// server restart, which may deliver the new incarnation before the old one's deletion, reads as
// a replacement and not as two pods.
type census struct {
	mu         sync.Mutex
	pods       map[string]map[string]*corev1.Pod // connection -> pod key -> pod
	violations []string
}

func newCensus() *census { return &census{pods: map[string]map[string]*corev1.Pod{}} }

func (c *census) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.put,
		UpdateFunc: func(_, obj any) { c.put(obj) },
		DeleteFunc: c.remove,
	}
}

func (c *census) put(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	conn := pod.Labels[whatsappv1alpha1.ConnectionLabel]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pods[conn] == nil {
		c.pods[conn] = map[string]*corev1.Pod{}
	}
	c.pods[conn][pod.Namespace+"/"+pod.Name] = pod
	if n := len(c.pods[conn]); n > 1 {
		var names []string
		for k, p := range c.pods[conn] {
			names = append(names, fmt.Sprintf("%s(uid %s, phase %s)", k, p.UID, p.Status.Phase))
		}
		sort.Strings(names)
		c.violations = append(c.violations, fmt.Sprintf("%s: connection %s has %d pods: %s",
			time.Now().Format("15:04:05.000"), conn, n, strings.Join(names, ", ")))
	}
}

func (c *census) remove(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	conn := pod.Labels[whatsappv1alpha1.ConnectionLabel]
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods[conn], pod.Namespace+"/"+pod.Name)
}

// current is the connection's only pod, nil when it has none (or, a violation, several).
func (c *census) current(conn string) *corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pods[conn]) != 1 {
		return nil
	}
	for _, p := range c.pods[conn] {
		return p
	}
	return nil
}

func (c *census) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// sessionProcess finds the process the runner started for a pod incarnation by the WA_POD_UID
// the controller puts in the session's environment. The runner's children are ours, so their
// environ is readable. state is the /proc state letter: T while SIGSTOPped, Z once dead.
func sessionProcess(uid types.UID, hint int) (pid int, state byte, ok bool) {
	want := []byte("WA_POD_UID=" + string(uid))
	matches := func(pid int) (byte, bool) {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil || !hasEnv(env, want) {
			return 0, false
		}
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return 0, false
		}
		// The state follows the command, which is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(st, ')')
		if i < 0 || i+2 >= len(st) {
			return 0, false
		}
		return st[i+2], true
	}
	if hint > 0 {
		if s, ok := matches(hint); ok {
			return hint, s, true
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := matches(n); ok {
			return n, s, true
		}
	}
	return 0, 0, false
}

func hasEnv(environ, kv []byte) bool {
	for _, e := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(e, kv) {
			return true
		}
	}
	return false
}
