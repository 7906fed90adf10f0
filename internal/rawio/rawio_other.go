//go:build !linux

package rawio

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// New returns nc itself where raw system calls are not used.
func New(nc net.Conn) io.ReadWriter { return nc }

// PeerClosed peeks at the socket: EOF or an error means the peer is gone.
func PeerClosed(rc syscall.RawConn) bool {
	var buf [1]byte
	closed := false
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (err == nil && n == 0) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
	})
	return closed
}
