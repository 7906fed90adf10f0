package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
)

// socketPath returns a short Unix socket path (sun_path holds 108 bytes).
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "wire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// serve starts a server of h on a Unix socket and dials it.
func serve(t testing.TB, h Handler) (*Conn, *Server) {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, nil, nil)
	go srv.Serve(ln)
	c, err := Dial(context.Background(), "unix", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c, srv
}

func echo() Handler {
	return HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		return env.Result{Payload: append([]byte(envID+":"), inv.Payload...), ErrorType: inv.RequestID}, nil
	})
}

func TestRoundTripFields(t *testing.T) {
	var got env.Invocation
	var gotEnv string
	want := env.Result{
		Payload: []byte(`{"errorType":"x"}`), FunctionError: "Unhandled", ErrorType: "Runtime.ExitError",
		LogTail: []byte("START\nEND\n"), Duration: 1234567, BilledDuration: 2 * time.Millisecond,
		InitDuration: 3 * time.Second, MaxMemoryUsedMB: 77, CPUTime: 5 * time.Microsecond, Replace: true,
	}
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		gotEnv, got = envID, inv
		return want, nil
	}))
	inv := env.Invocation{
		RequestID: "req-1", Payload: []byte(`{"a":1}`), InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:f:1",
		ClientContext: `{"custom":{}}`, CognitoIdentity: `{"id":"x"}`, TraceID: "Root=1-2-3", TailLog: true,
		Deadline: time.Unix(1700000000, 123456789),
	}
	res, err := c.Invoke(context.Background(), "env-7", inv)
	if err != nil {
		t.Fatal(err)
	}
	if gotEnv != "env-7" {
		t.Errorf("env = %q", gotEnv)
	}
	if d := cmp.Diff(inv, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("invocation (-sent +received):\n%s", d)
	}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("result (-sent +received):\n%s", d)
	}
}

func TestManyConcurrentOnOneConnection(t *testing.T) {
	const n = 500
	// Every handler waits until all n are in flight, proving that one
	// connection carries them at once.
	var started atomic.Int32
	all := make(chan struct{})
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		if started.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-ctx.Done():
			return env.Result{}, ctx.Err()
		}
		return env.Result{Payload: inv.Payload}, nil
	}))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(i)}, i*37)
			res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: fmt.Sprint(i), Payload: p})
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(res.Payload, p) {
				errs <- fmt.Errorf("call %d got another call's payload", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := c.InFlight(); got != 0 {
		t.Errorf("in flight after all answered = %d", got)
	}
}

func TestRefusalsAndErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
		wantRemote string
	}{
		{name: "concurrency", err: Refused(ReasonConcurrency, "all %d slots taken", 10), wantReason: ReasonConcurrency},
		{name: "cpu", err: Refused(ReasonCPU, "cpu 95%%"), wantReason: ReasonCPU},
		{name: "memory", err: Refused(ReasonMemory, ""), wantReason: ReasonMemory},
		{name: "unknown", err: fmt.Errorf("lookup: %w", Refused(ReasonUnknown, "no env")), wantReason: ReasonUnknown},
		{name: "draining", err: Refused(ReasonDraining, "env draining"), wantReason: ReasonDraining},
		{name: "handler error", err: errors.New("disk on fire"), wantRemote: "disk on fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := serve(t, HandlerFunc(func(context.Context, string, env.Invocation) (env.Result, error) {
				return env.Result{}, tc.err
			}))
			_, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "r"})
			r, ok := AsRefused(err)
			if tc.wantReason != "" {
				if !ok || r.Reason != tc.wantReason {
					t.Fatalf("err = %v, want refusal %q", err, tc.wantReason)
				}
				var want *RefusedError
				errors.As(tc.err, &want)
				if r.Message != want.Message {
					t.Errorf("message = %q, want %q", r.Message, want.Message)
				}
				return
			}
			var re *RemoteError
			if ok || !errors.As(err, &re) || re.Message != tc.wantRemote {
				t.Fatalf("err = %#v, want remote error %q", err, tc.wantRemote)
			}
			// The connection survives every kind of answer.
			if c.Err() != nil {
				t.Errorf("connection ended: %v", c.Err())
			}
		})
	}
}

func TestCancellationPropagates(t *testing.T) {
	cancelled := make(chan string, 1)
	release := make(chan struct{})
	var answered atomic.Int32
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		if inv.RequestID == "quick" {
			return env.Result{Payload: []byte("ok")}, nil
		}
		<-ctx.Done()
		cancelled <- inv.RequestID
		<-release // the runtime answers later; the answer must be dropped
		answered.Add(1)
		return env.Result{Payload: []byte("late")}, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "e", env.Invocation{RequestID: "slow"})
		errc <- err
	}()
	poll.Until(t, 5*time.Second, func() error {
		if c.InFlight() != 1 {
			return errors.New("not in flight yet")
		}
		return nil
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if id := <-cancelled; id != "slow" {
		t.Fatalf("handler cancelled for %q", id)
	}
	close(release)
	poll.Until(t, 5*time.Second, func() error {
		if answered.Load() != 1 {
			return errors.New("handler still running")
		}
		return nil
	})
	// The late answer is dropped without harm: the connection still works.
	res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "quick"})
	if err != nil || string(res.Payload) != "ok" {
		t.Fatalf("after cancel: %q, %v", res.Payload, err)
	}
}

func TestBrokenConnectionFailsInFlight(t *testing.T) {
	const n = 20
	var started atomic.Int32
	block := make(chan struct{})
	defer close(block)
	c, srv := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		started.Add(1)
		select {
		case <-block:
		case <-ctx.Done():
		}
		return env.Result{}, nil
	}))
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Invoke(context.Background(), "e", env.Invocation{})
			errs <- err
		}()
	}
	poll.Until(t, 5*time.Second, func() error {
		if started.Load() != n {
			return fmt.Errorf("%d of %d started", started.Load(), n)
		}
		return nil
	})
	srv.Close() // the agent goes away
	for range n {
		var ce *ConnError
		if err := <-errs; !errors.As(err, &ce) {
			t.Errorf("err = %v, want *ConnError", err)
		}
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	var ce *ConnError
	if _, err := c.Invoke(context.Background(), "e", env.Invocation{}); !errors.As(err, &ce) {
		t.Errorf("invoke on a broken connection: %v", err)
	}
}

func TestCloseFailsInFlight(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		<-block
		return env.Result{}, nil
	}))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), "e", env.Invocation{})
		errc <- err
	}()
	poll.Until(t, 5*time.Second, func() error {
		if c.InFlight() != 1 {
			return errors.New("not in flight")
		}
		return nil
	})
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestOversizedPayloadLeavesConnectionUsable(t *testing.T) {
	c, _ := serve(t, echo())
	_, err := c.Invoke(context.Background(), "e", env.Invocation{Payload: make([]byte, MaxFrame+1)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "r", Payload: []byte("x")})
	if err != nil || string(res.Payload) != "e:x" {
		t.Fatalf("after oversized: %q, %v", res.Payload, err)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go Serve(ln, echo(), nil)
	defer ln.Close()
	c, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Invoke(context.Background(), "tcp-env", env.Invocation{Payload: []byte("hi")})
	if err != nil || string(res.Payload) != "tcp-env:hi" {
		t.Fatalf("%q, %v", res.Payload, err)
	}
}

func TestServerRejectsGarbage(t *testing.T) {
	_, srv := serve(t, echo())
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A length beyond MaxFrame: the server closes the connection.
	nc.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
}

// TestHandlerPanic: an invocation whose handler panics is answered with an
// error on its own; the connection and the server serve the next ones.
func TestHandlerPanic(t *testing.T) {
	c, _ := serve(t, HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		if inv.RequestID == "boom" {
			panic("the agent broke")
		}
		return env.Result{Payload: inv.Payload}, nil
	}))
	_, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "boom"})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "the agent broke") {
		t.Fatalf("invocation that panicked: %v, want a RemoteError", err)
	}
	res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "ok", Payload: []byte(`"next"`)})
	if err != nil || string(res.Payload) != `"next"` {
		t.Fatalf("the next invocation on the same connection: %v %s", err, res.Payload)
	}
}
