//go:build unix && !linux

package rawio

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// New returns nc itself where raw system calls are not used.
func New(nc net.Conn) io.ReadWriter { return nc }

// Read reads the non-blocking descriptor fd once into p. It returns the
// bytes read and 0, or 0 and the error: EAGAIN when there is nothing to read
// yet.
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errno(err)
}

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
