package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/rawio"
)

// Conn is the client end of one connection to an agent. Any number of
// invocations may be in flight on it at once; each is matched to its answer
// by a request id. One goroutine reads answers and hands each to its caller
// through the caller's own buffered channel; callers write their frames
// themselves (see frameWriter).
//
// Concurrency: nc, w, done are immutable after Dial; nextID is atomic. mu
// guards calls and err; err is set once, before done is closed.
type Conn struct {
	nc     net.Conn
	rw     io.ReadWriter // nc's reads and writes (see rawio.New)
	w      *frameWriter
	nextID atomic.Uint64
	done   chan struct{}

	mu    sync.Mutex
	calls map[uint64]*call
	err   error
}

// call is one invocation waiting for its answer.
type call struct {
	ch chan answer // buffered 1: the reader never blocks on it
	st *callStream // set when the caller streams (stream.go)
}

type answer struct {
	res env.Result
	err error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan answer, 1)} }}

// Dial connects to an agent: network "unix" with a socket path on the same
// host, "tcp" with host:port across hosts. With a key, both ends prove that
// they hold it before the first invocation (auth.go); an agent that asks for
// a key is dialled with its own.
func Dial(ctx context.Context, network, addr string, key []byte) (*Conn, error) {
	return DialTLS(ctx, network, addr, key, nil)
}

// DialTLS is Dial over TLS with cfg (nil: plain), for agents on other
// machines: the agent's certificate must name the address dialled.
func DialTLS(ctx context.Context, network, addr string, key []byte, cfg *tls.Config) (*Conn, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("wire: dial %s %s: %w", network, addr, err)
	}
	if cfg != nil {
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(rawio.Conn(nc), cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("wire: %s %s: tls: %w", network, addr, err)
		}
		nc = tc
	}
	if key != nil {
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		if err := clientHandshake(nc, key); err != nil {
			nc.Close()
			return nil, fmt.Errorf("wire: %s %s: %w", network, addr, err)
		}
	}
	return NewConn(nc), nil
}

// NewConn starts the client protocol on an established connection.
func NewConn(nc net.Conn) *Conn {
	rw := rawio.New(nc)
	c := &Conn{
		nc:    nc,
		rw:    rw,
		w:     &frameWriter{c: nc, w: rw},
		done:  make(chan struct{}),
		calls: make(map[uint64]*call),
	}
	go c.readLoop()
	return c
}

// RemoteAddr is the agent's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Done is closed once the connection is broken or closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// InFlight is the number of invocations waiting for an answer.
func (c *Conn) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// Close closes the connection; invocations in flight fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	<-c.done
	return nil
}

// Invoke runs inv on the agent's environment envID and waits for its result.
// When inv.Stream is set, the response reaches it as the runtime sends it.
// An agent that refuses answers *RefusedError at once; a broken connection
// fails the call with *ConnError. When ctx ends first, Invoke tells the agent
// (which cancels the invocation's context there) and returns ctx's error;
// whatever the agent answers later is dropped.
func (c *Conn) Invoke(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
	if err := ctx.Err(); err != nil {
		return env.Result{}, err
	}
	if inv.Stream != nil {
		return c.invokeStream(ctx, envID, inv)
	}
	id := c.nextID.Add(1)
	cl := callPool.Get().(*call)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		callPool.Put(cl)
		return env.Result{}, err
	}
	c.calls[id] = cl
	c.mu.Unlock()
	if err := c.w.write(func(b []byte) ([]byte, error) { return appendInvoke(b, id, envID, &inv) }); err != nil {
		if c.remove(id) {
			callPool.Put(cl)
			return env.Result{}, err
		}
		a := <-cl.ch // failed by the reader meanwhile
		callPool.Put(cl)
		return a.res, a.err
	}
	select {
	case a := <-cl.ch:
		callPool.Put(cl)
		return a.res, a.err
	case <-ctx.Done():
		if c.remove(id) {
			callPool.Put(cl)
			// Best effort: on a broken connection the agent is gone anyway.
			_ = c.w.write(func(b []byte) ([]byte, error) { return appendCancel(b, id), nil })
			return env.Result{}, ctx.Err()
		}
		// The answer is being delivered: take it rather than drop it.
		a := <-cl.ch
		callPool.Put(cl)
		return a.res, a.err
	}
}

// remove forgets call id; it reports false when the reader already took it.
func (c *Conn) remove(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.calls[id]; !ok {
		return false
	}
	delete(c.calls, id)
	return true
}

// take removes and returns call id (nil when it was cancelled).
func (c *Conn) take(id uint64) *call {
	c.mu.Lock()
	cl := c.calls[id]
	if cl != nil {
		delete(c.calls, id)
	}
	c.mu.Unlock()
	return cl
}

func (c *Conn) readLoop() {
	fr := frameReader{r: bufio.NewReaderSize(c.rw, 64<<10)}
	for {
		f, err := fr.next()
		if err != nil {
			c.fail(&ConnError{Err: err})
			return
		}
		var a answer
		switch f.typ {
		case frameStart, frameChunk:
			if err := c.streamFrame(f); err != nil {
				c.fail(&ConnError{Err: err})
				return
			}
			continue
		case frameResult:
			a.res, a.err = decodeResult(f.body)
		case frameRefused:
			var r *RefusedError
			if r, a.err = decodeRefused(f.body); a.err == nil {
				a.err = r
			}
		case frameError:
			var r *RemoteError
			if r, a.err = decodeError(f.body); a.err == nil {
				a.err = r
			}
		default:
			c.fail(&ConnError{Err: fmt.Errorf("unexpected frame type %d from the agent", f.typ)})
			return
		}
		if a.err != nil && !isAnswer(a.err) {
			// A body that does not decode means the stream is out of step.
			c.fail(&ConnError{Err: a.err})
			return
		}
		if cl := c.take(f.id); cl != nil {
			cl.ch <- a
		}
	}
}

func isAnswer(err error) bool {
	var r *RefusedError
	var e *RemoteError
	return errors.As(err, &r) || errors.As(err, &e)
}

// fail ends the connection: every call in flight gets err.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	calls := c.calls
	c.calls = make(map[uint64]*call)
	c.mu.Unlock()
	_ = c.nc.Close()
	for _, cl := range calls {
		cl.ch <- answer{err: err}
	}
	close(c.done)
}
