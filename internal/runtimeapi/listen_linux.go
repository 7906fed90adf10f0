package runtimeapi

import (
	"context"
	"net"
	"syscall"
)

// Listen opens the Runtime API's socket with TCP_DEFER_ACCEPT: a new
// connection is handed to accept only once its first request has arrived, so
// serving it takes one wake-up of the agent, not two. That matters because
// aws-lambda-go keeps two idle connections and, with many slots busy, dials
// anew for most of its calls.
//
// Accepted connections get no TCP keep-alive: the runtime is a local
// process, whose exit closes its sockets, and the four setsockopt calls Go
// makes per accepted connection for keep-alive were most of the agent's
// system calls per accepted connection.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			// The value bounds how long (seconds) the kernel holds back a
			// connection that sends nothing.
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
