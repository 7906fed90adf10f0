package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// Streamed responses. An invocation whose caller streams (env.Invocation.Stream
// set) is sent with the stream flag; the agent then answers frameStart and
// frameChunks as the runtime writes, before the frameResult. Flow control is
// per invocation: the agent sends no more chunk bytes than the client has
// granted — streamWindow to begin with, then whatever the caller has taken
// (frameCredit) — so a slow caller holds back its own function and nothing
// else on the connection, and the client's reading goroutine never blocks on
// a caller.

// streamWindow is how many bytes of one invocation's stream may be in flight
// between agent and caller.
const streamWindow = 1 << 20

// maxChunk bounds one chunk frame's body.
const maxChunk = 64 << 10

// creditWait bounds how long the agent waits for a caller that takes nothing:
// after it the stream fails (the rest of the response is dropped).
const creditWait = 30 * time.Second

// errStreamStalled ends a stream whose caller took nothing for creditWait.
var errStreamStalled = errors.New("wire: the caller took nothing of the stream")

// callStream is the client's side of one streamed invocation: what the reading
// goroutine has received and the caller has not yet taken.
//
// Concurrency: notify is immutable; mu guards the rest.
type callStream struct {
	notify chan struct{} // buffered 1: something arrived

	mu          sync.Mutex
	start       bool   // frameStart received, not yet handed to the caller
	contentType string // from frameStart
	chunks      [][]byte
	pending     int // bytes in chunks
}

func newCallStream() *callStream { return &callStream{notify: make(chan struct{}, 1)} }

func (s *callStream) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push takes one frame of the stream from the reading goroutine.
func (s *callStream) push(f frame) error {
	s.mu.Lock()
	switch f.typ {
	case frameStart:
		d := decoder{b: f.body}
		s.contentType, s.start = d.string(), true
		if d.err != nil {
			s.mu.Unlock()
			return fmt.Errorf("wire: start frame: %w", d.err)
		}
	case frameChunk:
		if s.pending+len(f.body) > streamWindow {
			s.mu.Unlock()
			return errors.New("wire: the agent sent more stream than the client granted")
		}
		s.chunks = append(s.chunks, append([]byte(nil), f.body...))
		s.pending += len(f.body)
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// drain hands what arrived to w and returns how many bytes it took.
func (s *callStream) drain(w env.ResponseStream) int {
	s.mu.Lock()
	start, ct, chunks := s.start, s.contentType, s.chunks
	s.start, s.chunks, s.pending = false, nil, 0
	s.mu.Unlock()
	if start {
		w.Start(ct)
	}
	n := 0
	for _, c := range chunks {
		_, _ = w.Write(c) // a caller that cannot take more still grants credit: the rest is dropped
		n += len(c)
	}
	return n
}

// streamFrame hands a start or chunk frame to its call; a frame of a call that
// was cancelled is dropped.
func (c *Conn) streamFrame(f frame) error {
	c.mu.Lock()
	cl := c.calls[f.id]
	c.mu.Unlock()
	if cl == nil {
		return nil
	}
	if cl.st == nil {
		return fmt.Errorf("wire: stream frame for invocation %d, which does not stream", f.id)
	}
	return cl.st.push(f)
}

// invokeStream is Invoke for a caller that streams: it hands the stream to
// inv.Stream as it arrives, granting the agent credit for what it took.
func (c *Conn) invokeStream(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
	id := c.nextID.Add(1)
	st := newCallStream()
	cl := &call{ch: make(chan answer, 1), st: st}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return env.Result{}, err
	}
	c.calls[id] = cl
	c.mu.Unlock()
	if err := c.w.write(func(b []byte) ([]byte, error) { return appendInvoke(b, id, envID, &inv) }); err != nil {
		if c.remove(id) {
			return env.Result{}, err
		}
		a := <-cl.ch
		return a.res, a.err
	}
	for {
		select {
		case <-st.notify:
			if n := st.drain(inv.Stream); n > 0 {
				_ = c.w.write(func(b []byte) ([]byte, error) { return appendCredit(b, id, n), nil })
			}
		case a := <-cl.ch:
			// Every chunk came before the answer: take what is left.
			st.drain(inv.Stream)
			return a.res, a.err
		case <-ctx.Done():
			if c.remove(id) {
				_ = c.w.write(func(b []byte) ([]byte, error) { return appendCancel(b, id), nil })
				return env.Result{}, ctx.Err()
			}
			a := <-cl.ch
			st.drain(inv.Stream)
			return a.res, a.err
		}
	}
}

// wireStream is the agent's side of one streamed invocation: the
// env.ResponseStream the environment writes to, which sends frames within the
// client's credit.
//
// Concurrency: sc, id, ctx and more are immutable; mu guards credit and err.
type wireStream struct {
	sc   *serverConn
	id   uint64
	ctx  context.Context // the invocation's: ends when the caller cancels
	more chan struct{}   // buffered 1: credit was granted

	mu     sync.Mutex
	credit int
	err    error // set once the stream can take no more
}

var _ env.ResponseStream = (*wireStream)(nil)

func newWireStream(sc *serverConn, id uint64, ctx context.Context) *wireStream {
	return &wireStream{sc: sc, id: id, ctx: ctx, more: make(chan struct{}, 1), credit: streamWindow}
}

// Start sends frameStart.
func (s *wireStream) Start(contentType string) {
	if s.failed() != nil {
		return
	}
	if err := s.sc.w.write(func(b []byte) ([]byte, error) { return appendStart(b, s.id, contentType), nil }); err != nil {
		s.fail(err)
	}
}

// Write sends p as chunk frames, waiting for credit as needed.
func (s *wireStream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k, err := s.take(min(len(p), maxChunk))
		if err != nil {
			return n, err
		}
		piece := p[:k]
		if err := s.sc.w.write(func(b []byte) ([]byte, error) { return appendChunk(b, s.id, piece), nil }); err != nil {
			s.fail(err)
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// take waits for credit and takes up to want bytes of it.
func (s *wireStream) take(want int) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		if s.credit > 0 {
			k := min(want, s.credit)
			s.credit -= k
			s.mu.Unlock()
			return k, nil
		}
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(creditWait)
		}
		select {
		case <-s.more:
		case <-s.ctx.Done():
			s.fail(s.ctx.Err())
		case <-timer.C:
			s.fail(errStreamStalled)
		}
	}
}

// grant adds credit (from the reading goroutine: it never blocks).
func (s *wireStream) grant(n int) {
	s.mu.Lock()
	s.credit += n
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *wireStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *wireStream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
