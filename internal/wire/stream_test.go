package wire

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
)

// sinkStream is a caller's stream: it records what arrives, and can be held
// (every Write waits until release is closed).
type sinkStream struct {
	mu      sync.Mutex
	ct      string
	starts  int
	buf     bytes.Buffer
	got     chan struct{} // signalled on every Write
	hold    chan struct{} // nil: never held
	holding atomic.Bool
}

func newSinkStream() *sinkStream { return &sinkStream{got: make(chan struct{}, 1)} }

func (s *sinkStream) Start(ct string) {
	s.mu.Lock()
	s.ct = ct
	s.starts++
	s.mu.Unlock()
}

func (s *sinkStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.got <- struct{}{}:
	default:
	}
	if s.hold != nil {
		s.holding.Store(true)
		<-s.hold
	}
	return len(p), nil
}

func (s *sinkStream) body() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// streamer is a handler that streams parts to the caller, one Write each.
func streamer(parts []string, sent *atomic.Int64) Handler {
	return HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		if inv.Stream == nil {
			return env.Result{Payload: []byte("not streamed")}, nil
		}
		inv.Stream.Start("text/plain")
		for _, p := range parts {
			n, err := inv.Stream.Write([]byte(p))
			if sent != nil {
				sent.Add(int64(n))
			}
			if err != nil {
				return env.Result{}, err
			}
		}
		return env.Result{Streamed: true, ContentType: "text/plain", Duration: time.Millisecond}, nil
	})
}

func TestStreamRoundTrip(t *testing.T) {
	c, _ := serve(t, streamer([]string{"one ", "two ", strings.Repeat("x", 3*maxChunk+5)}, nil))
	sink := newSinkStream()
	res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "r", Stream: sink})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Streamed || res.ContentType != "text/plain" || len(res.Payload) != 0 {
		t.Errorf("result %+v", res)
	}
	if want := "one two " + strings.Repeat("x", 3*maxChunk+5); sink.body() != want || sink.starts != 1 || sink.ct != "text/plain" {
		t.Errorf("caller got %d bytes, %d starts, %q", len(sink.body()), sink.starts, sink.ct)
	}
	// The same connection serves buffered invocations as before.
	res, err = c.Invoke(context.Background(), "e", env.Invocation{RequestID: "r2"})
	if err != nil || string(res.Payload) != "not streamed" || res.Streamed {
		t.Fatalf("buffered: %+v %v", res, err)
	}
}

// A caller that takes nothing holds back its own invocation, within the
// window, and nothing else on the connection.
func TestStreamFlowControl(t *testing.T) {
	var sent atomic.Int64
	parts := make([]string, 64)
	for i := range parts {
		parts[i] = strings.Repeat(string(rune('a'+i%26)), maxChunk)
	}
	h := streamer(parts, &sent)
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		if envID == "echo" {
			return env.Result{Payload: inv.Payload}, nil
		}
		return h.Invoke(ctx, envID, inv)
	}))
	sink := newSinkStream()
	sink.hold = make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "slow", Stream: sink})
		done <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		if !sink.holding.Load() {
			return errors.New("the caller has not been handed a chunk yet")
		}
		return nil
	})
	// While the caller holds, the agent sends no more than the window.
	for range 20 {
		if n := sent.Load(); n > streamWindow {
			t.Fatalf("the agent sent %d bytes to a caller that granted %d", n, streamWindow)
		}
		res, err := c.Invoke(context.Background(), "echo", env.Invocation{RequestID: "other", Payload: []byte("ok")})
		if err != nil || string(res.Payload) != "ok" {
			t.Fatalf("another invocation on the connection: %+v %v", res, err)
		}
	}
	close(sink.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := sink.body(); len(got) != 64*maxChunk || got != strings.Join(parts, "") {
		t.Errorf("caller got %d bytes", len(got))
	}
}

// A caller that goes away mid-stream fails the agent's writes.
func TestStreamCancel(t *testing.T) {
	wrote := make(chan error, 1)
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		inv.Stream.Start("")
		for {
			if _, err := inv.Stream.Write(make([]byte, maxChunk)); err != nil {
				wrote <- err
				return env.Result{}, err
			}
		}
	}))
	sink := newSinkStream()
	sink.hold = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "e", env.Invocation{RequestID: "r", Stream: sink})
		done <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		if !sink.holding.Load() {
			return errors.New("nothing reached the caller")
		}
		return nil
	})
	cancel()
	close(sink.hold)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Invoke after cancel: %v", err)
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("the write after the cancel succeeded")
		}
	case <-time.After(time.Minute):
		t.Fatal("the agent's stream did not fail after the caller cancelled")
	}
}
