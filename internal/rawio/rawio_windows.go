package rawio

import (
	"io"
	"net"
	"syscall"
)

// New returns nc itself where raw system calls are not used.
func New(nc net.Conn) io.ReadWriter { return nc }

// Read reads the handle fd once into p. It returns the bytes read and 0, or
// 0 and the error.
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(syscall.Handle(fd), p)
	if err != nil {
		return 0, errno(err)
	}
	return n, 0
}

// PeerClosed reports false: Windows offers no peek at a socket without
// blocking, so a gone peer is found by the next read or write.
func PeerClosed(syscall.RawConn) bool { return false }
