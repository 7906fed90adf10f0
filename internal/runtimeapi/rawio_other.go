//go:build !linux

package runtimeapi

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// newRawIO returns nc itself where raw system calls are not used.
func newRawIO(nc net.Conn) io.ReadWriter { return nc }

// peerClosed peeks at the socket: EOF or an error means the peer is gone.
func peerClosed(rc syscall.RawConn) bool {
	var buf [1]byte
	closed := false
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (err == nil && n == 0) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
	})
	return closed
}
