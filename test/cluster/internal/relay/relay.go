// Package relay carries TCP connections from a listener to one target address, byte for byte in
// both directions. The real-cluster tests use it twice on the way to the fake WhatsApp server:
// on the node (from the node IP to the server on the host's loopback) and in the test session
// image (from the pod's loopback, the only address the fakewa build dials, to the node).
package relay

import (
	"io"
	"net"
)

// Serve accepts connections on ln until it is closed and joins each to a new connection to
// target. A dial that fails closes the accepted connection and is reported to dialFailed, if set.
func Serve(ln net.Listener, target string, dialFailed func(error)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = c.Close() }()
			up, err := net.Dial("tcp", target)
			if err != nil {
				if dialFailed != nil {
					dialFailed(err)
				}
				return
			}
			defer func() { _ = up.Close() }()
			// The half-close carries the client's end of stream to the target.
			go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
			_, _ = io.Copy(c, up)
		}()
	}
}
