package env

import (
	"errors"
	"sync"

	"github.com/shoal-dev/shoal/internal/runtimeapi"
)

// ResponseStream receives a response as the runtime streams it, for a caller
// that streams (see runtimeapi.ResponseStream): Start once with the
// response's Content-Type, then Write for each piece as it arrives.
type ResponseStream = runtimeapi.ResponseStream

// errStreamClosed is what a stream's Write returns once its invocation is over.
var errStreamClosed = errors.New("env: the invocation is over")

// streamGuard stands between the runtime's connection and the caller's stream:
// once the invocation ends (an answer, a timeout, the runtime's exit), close
// waits for a Write in progress and lets no other through, so the caller's
// stream is never used after Invoke has returned.
//
// Concurrency: w is immutable; mu guards closed and is held across each call
// to w.
type streamGuard struct {
	w ResponseStream

	mu     sync.Mutex
	closed bool
}

func (g *streamGuard) Start(contentType string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.w.Start(contentType)
	}
}

func (g *streamGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errStreamClosed
	}
	return g.w.Write(p)
}

// close ends the stream's use; it is safe on a nil guard.
func (g *streamGuard) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
