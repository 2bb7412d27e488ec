package localrunner

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// portMap maps a pod's declared containerPorts to the loopback ports its processes really use.
// All containers of a pod share one network namespace in a cluster, so the map is per pod.
type portMap struct {
	byNumber map[int32]int32
	byName   map[string]int32 // port name -> declared containerPort
}

// allocatePorts gives every declared port a free loopback port that no live pod of this
// runner holds: a port is only free when asked, and a pod may not bind it for a while.
func (r *Runner) allocatePorts(pod *corev1.Pod) (portMap, error) {
	m := portMap{byNumber: map[int32]int32{}, byName: map[string]int32{}}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" {
				m.byName[p.Name] = p.ContainerPort
			}
			if _, done := m.byNumber[p.ContainerPort]; done {
				continue
			}
			free, err := r.reservePort()
			if err != nil {
				r.releasePorts(m)
				return m, fmt.Errorf("allocating a local port for containerPort %d: %w", p.ContainerPort, err)
			}
			m.byNumber[p.ContainerPort] = free
		}
	}
	return m, nil
}

func (r *Runner) reservePort() (int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range 20 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if !r.ports[p] {
			r.ports[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port found")
}

func (r *Runner) releasePorts(m portMap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range m.byNumber {
		delete(r.ports, p)
	}
}

// freePort asks the kernel for a loopback port that is free now.
func freePort() (int32, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// resolve gives the local port a probe or a caller means by a named or numbered port.
func (m portMap) resolve(p intstr.IntOrString) (int32, error) {
	declared := int32(p.IntValue())
	if p.Type == intstr.String {
		n, ok := m.byName[p.StrVal]
		if !ok {
			return 0, fmt.Errorf("no container port named %q", p.StrVal)
		}
		declared = n
	}
	if local, ok := m.byNumber[declared]; ok {
		return local, nil
	}
	// An undeclared port is used as it is: the process binds it literally.
	return declared, nil
}

// rewriteArg turns --flag=:PORT and --flag=HOST:PORT, PORT a declared containerPort, into
// --flag=127.0.0.1:<allocated>. Anything else is left alone.
func (m portMap) rewriteArg(arg string) string {
	if !strings.HasPrefix(arg, "-") {
		return arg
	}
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil || strings.ContainsAny(host, "/") {
		return arg
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return arg
	}
	local, ok := m.byNumber[int32(n)]
	if !ok {
		return arg
	}
	return name + "=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(local)))
}
