package wire

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeTimeout bounds one flush: a peer that stops reading for this long is
// taken for dead and the connection is closed. The deadline is moved forward
// only once it is deadlineSlack older than a fresh one would be, so a busy
// connection does not reset a timer on every flush.
const (
	writeTimeout  = 30 * time.Second
	deadlineSlack = time.Second
)

// frameWriter serialises frames onto one connection. Writers append their
// frame to a shared buffer under mu; the last writer of a burst (none other
// waiting) flushes it with one write, so concurrent callers share syscalls
// and no goroutine sits between a caller and the socket.
//
// Concurrency: c and w are immutable; waiting is atomic; mu guards buf,
// deadline and err.
type frameWriter struct {
	c       net.Conn
	w       io.Writer // c's writes (see rawio.New)
	waiting atomic.Int32

	mu       sync.Mutex
	buf      []byte
	deadline time.Time // the write deadline set on c
	err      error
}

// write appends one frame with enc and flushes unless another writer is
// about to. An encoding error (a frame too large) leaves the connection
// usable; a write error closes it.
func (w *frameWriter) write(enc func([]byte) ([]byte, error)) error {
	w.waiting.Add(1)
	w.mu.Lock()
	w.waiting.Add(-1)
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	var encErr error
	w.buf, encErr = enc(w.buf)
	if w.waiting.Load() == 0 { // else the next writer flushes
		if err := w.flushLocked(); err != nil {
			return err
		}
	}
	return encErr
}

func (w *frameWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	if d := time.Now().Add(writeTimeout); d.Sub(w.deadline) > deadlineSlack {
		_ = w.c.SetWriteDeadline(d)
		w.deadline = d
	}
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > 1<<20 {
		w.buf = nil // do not keep a large payload's buffer
	} else {
		w.buf = w.buf[:0]
	}
	if err != nil {
		w.err = &ConnError{Err: err}
		_ = w.c.Close()
		return w.err
	}
	return nil
}
