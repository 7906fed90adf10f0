// Package rawio reads and writes sockets and pipes with raw system calls on
// the invoke path: the Runtime API's and the wire's connections, and the
// pipes of the environments' logs. On Linux a loopback write or a read that
// finds nothing is then no blocking system call for the Go scheduler, which
// would otherwise hand its P to another thread (rawio_linux.go). Elsewhere
// New leaves a connection as it is and Read is a plain read(2).
//
// Under the race detector (race_on.go) the calls go through package syscall,
// which tells the detector what one goroutine wrote before another reads it:
// CI runs this package's tests without -race too.
package rawio

import (
	"errors"
	"syscall"
)

// errno is err's system error number: EIO for an error that has none, 0
// for nil.
func errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		return syscall.EIO
	}
	return 0
}
