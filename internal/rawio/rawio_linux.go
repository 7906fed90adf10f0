//go:build linux

package rawio

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a connection's non-blocking socket with raw system
// calls, which the Go scheduler is not told of. A loopback write runs the
// receiver's TCP stack and wakes it, and the kernel often switches to the
// woken runtime before the write returns; through net.Conn the scheduler
// counts that as a blocking system call, hands the P to another thread and
// wakes one, which costs more than the call itself. The calls never block:
// EAGAIN parks the goroutine in the netpoller, as net.Conn does, and
// deadlines and Close act as they do on net.Conn.
//
// Concurrency: one goroutine reads and one writes at a time (the runtime
// API serves a connection from one goroutine).
type rawIO struct {
	rc syscall.RawConn

	rbuf []byte
	rn   int
	rerr error

	wbuf []byte
	werr error

	readFn, writeFn func(fd uintptr) bool
}

// New returns nc's reader and writer: raw when nc is a socket.
func New(nc net.Conn) io.ReadWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	r := &rawIO{rc: rc}
	r.readFn, r.writeFn = r.doRead, r.doWrite
	return r
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.readFn)
	r.rbuf = nil
	if err != nil {
		return 0, err
	}
	return r.rn, r.rerr
}

func (r *rawIO) doRead(fd uintptr) bool {
	for {
		n, e := Read(fd, r.rbuf)
		switch e {
		case 0:
			r.rn = int(n)
			if n == 0 {
				r.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.rerr = e
			return true
		}
	}
}

func (r *rawIO) Write(p []byte) (int, error) {
	r.wbuf, r.werr = p, nil
	err := r.rc.Write(r.writeFn)
	n := len(p) - len(r.wbuf)
	r.wbuf = nil
	if err == nil {
		err = r.werr
	}
	return n, err
}

func (r *rawIO) doWrite(fd uintptr) bool {
	for len(r.wbuf) > 0 {
		n, e := sysWrite(fd, r.wbuf)
		switch e {
		case 0:
			r.wbuf = r.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// Read reads the non-blocking descriptor fd once into p (which is not
// empty) with a raw system call, which the Go scheduler is not told of; under
// the race detector through package syscall. It returns the bytes read and
// 0, or 0 and the error: EAGAIN when there is nothing to read yet.
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	if raceEnabled {
		n, err := syscall.Read(int(fd), p)
		return max(n, 0), errno(err)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// sysWrite writes fd once; under the race detector through package syscall.
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if raceEnabled {
		n, err := syscall.Write(int(fd), p)
		return max(n, 0), errno(err)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// PeerClosed peeks at the socket without blocking: EOF or an error means
// the peer is gone.
func PeerClosed(rc syscall.RawConn) bool {
	var buf [1]byte
	closed := false
	_ = rc.Control(func(fd uintptr) {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		closed = (e == 0 && n == 0) || (e != 0 && e != syscall.EAGAIN && e != syscall.EINTR)
	})
	return closed
}
