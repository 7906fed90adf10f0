package wire

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/rawio"
)

// Handler runs invocations for a server. It must refuse with *RefusedError
// rather than wait when it cannot start an invocation at once. ctx ends when
// the caller cancels or the connection breaks.
type Handler interface {
	Invoke(ctx context.Context, envID string, inv env.Invocation) (env.Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error)

// Invoke calls f.
func (f HandlerFunc) Invoke(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
	return f(ctx, envID, inv)
}

// Serve accepts connections on ln and serves h on each until ln is closed;
// clients must hold key (nil: any client).
func Serve(ln net.Listener, h Handler, key []byte) error {
	return NewServer(h, nil, key).Serve(ln)
}

// Server serves the invoke protocol. Each connection has one reading
// goroutine; each invocation runs on a goroutine of its own (it blocks for as
// long as the function runs) and writes its answer itself. A connection keeps
// some of those goroutines waiting for its next invocations (see work).
//
// Concurrency: h and log are immutable; mu guards lns, conns and closed.
type Server struct {
	h   Handler
	log *slog.Logger
	key []byte // clients must prove they hold it; nil asks for nothing

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[*serverConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server of h; logger may be nil. With a key, every
// client must prove that it holds it before its first frame (auth.go).
func NewServer(h Handler, logger *slog.Logger, key []byte) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, log: logger.With("component", "wire"), key: key,
		lns: make(map[net.Listener]struct{}), conns: make(map[*serverConn]struct{})}
}

// Serve accepts connections until ln is closed or Close is called. It
// returns nil after Close, else the accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.lns, ln)
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		rw := rawio.New(nc)
		sc := &serverConn{s: s, nc: nc, rw: rw, w: &frameWriter{c: nc, w: rw}, jobs: make(chan job),
			cancels: make(map[uint64]context.CancelFunc), streams: make(map[uint64]*wireStream)}
		sc.ctx, sc.stop = context.WithCancel(context.Background())
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[sc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go sc.serve()
	}
}

// Close stops accepting, closes every connection (cancelling the
// invocations on them) and waits for their reading goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	for sc := range s.conns {
		_ = sc.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// serverConn is one client connection.
//
// Concurrency: s, nc, rw, w, ctx, stop, jobs are immutable; idle is atomic;
// mu guards cancels (the invocations running, by request id) and streams
// (those whose caller streams).
type serverConn struct {
	s    *Server
	nc   net.Conn
	rw   io.ReadWriter // nc's reads and writes (see rawio.New)
	w    *frameWriter
	ctx  context.Context // ends with the connection
	stop context.CancelFunc
	jobs chan job     // unbuffered: a send succeeds only when a worker waits
	idle atomic.Int32 // workers waiting on jobs

	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
	streams map[uint64]*wireStream
}

func (sc *serverConn) serve() {
	defer sc.s.wg.Done()
	defer func() {
		sc.stop()
		_ = sc.nc.Close()
		sc.s.mu.Lock()
		delete(sc.s.conns, sc)
		sc.s.mu.Unlock()
	}()
	defer guard.Recover(sc.s.log, "invoke connection", nil) // the connection closes
	if sc.s.key != nil {
		if err := serverHandshake(sc.nc, sc.s.key); err != nil {
			sc.s.log.Warn("a client failed to authenticate; closing the connection",
				"remote", sc.nc.RemoteAddr().String(), "err", err)
			return
		}
	}
	fr := frameReader{r: bufio.NewReaderSize(sc.rw, 64<<10)}
	for {
		f, err := fr.next()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				sc.s.log.Debug("connection ended", "remote", sc.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		switch f.typ {
		case frameInvoke:
			envID, inv, streams, err := decodeInvoke(f.body)
			if err != nil {
				sc.s.log.Warn("bad invoke frame; closing the connection", "err", err)
				return
			}
			ctx, cancel := context.WithCancel(sc.ctx)
			sc.mu.Lock()
			if _, dup := sc.cancels[f.id]; dup {
				sc.mu.Unlock()
				cancel()
				sc.s.log.Warn("duplicate request id; closing the connection", "id", f.id)
				return
			}
			sc.cancels[f.id] = cancel
			if streams {
				ws := newWireStream(sc, f.id, ctx)
				sc.streams[f.id] = ws
				inv.Stream = ws
			}
			sc.mu.Unlock()
			j := job{ctx: ctx, id: f.id, envID: envID, inv: inv}
			select {
			case sc.jobs <- j: // an idle worker took it
			default:
				go sc.work(j)
			}
		case frameCancel:
			sc.mu.Lock()
			cancel := sc.cancels[f.id]
			delete(sc.cancels, f.id)
			sc.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case frameCredit:
			n, err := decodeCredit(f.body)
			if err != nil {
				sc.s.log.Warn("bad credit frame; closing the connection", "err", err)
				return
			}
			sc.mu.Lock()
			ws := sc.streams[f.id]
			sc.mu.Unlock()
			if ws != nil {
				ws.grant(n)
			}
		default:
			sc.s.log.Warn("unexpected frame type; closing the connection", "type", f.typ)
			return
		}
	}
}

// maxIdleWorkers bounds the invocation goroutines a connection keeps waiting
// for the next invocation.
const maxIdleWorkers = 64

// job is one invocation for a worker.
type job struct {
	ctx   context.Context
	id    uint64
	envID string
	inv   env.Invocation
}

// work runs j, then waits for more invocations of the connection while no
// more than maxIdleWorkers wait, until the connection ends. Reusing workers
// spares a busy connection a new goroutine per invocation, and the growth of
// its stack on the way through the agent.
func (sc *serverConn) work(j job) {
	for {
		sc.invoke(j.ctx, j.id, j.envID, j.inv)
		j = job{}
		if sc.idle.Add(1) > maxIdleWorkers {
			sc.idle.Add(-1)
			return
		}
		select {
		case j = <-sc.jobs:
			sc.idle.Add(-1)
		case <-sc.ctx.Done():
			sc.idle.Add(-1)
			return
		}
	}
}

// invoke runs one invocation and answers it unless the caller cancelled it.
// A handler that panics answers an error (the router's ServiceException).
func (sc *serverConn) invoke(ctx context.Context, id uint64, envID string, inv env.Invocation) {
	var res env.Result
	var err error
	if perr := guard.Run(sc.s.log, "invocation", func() { res, err = sc.s.h.Invoke(ctx, envID, inv) }); perr != nil {
		err = perr
	}
	sc.mu.Lock()
	cancel, live := sc.cancels[id]
	delete(sc.cancels, id)
	ws := sc.streams[id]
	delete(sc.streams, id)
	sc.mu.Unlock()
	if ws != nil {
		ws.fail(ErrClosed) // the environment is done with it
	}
	if !live {
		return // cancelled: the caller has gone, the answer is dropped
	}
	cancel()
	var werr error
	switch r, refused := AsRefused(err); {
	case err == nil:
		werr = sc.w.write(func(b []byte) ([]byte, error) { return appendResult(b, id, &res) })
		if errors.Is(werr, ErrFrameTooLarge) {
			werr = sc.w.write(func(b []byte) ([]byte, error) {
				return appendError(b, id, "the function's response is larger than the protocol's frame limit"), nil
			})
		}
	case refused:
		werr = sc.w.write(func(b []byte) ([]byte, error) { return appendRefused(b, id, r.Reason, r.Message), nil })
	default:
		werr = sc.w.write(func(b []byte) ([]byte, error) { return appendError(b, id, err.Error()), nil })
	}
	if werr != nil && !errors.Is(werr, ErrFrameTooLarge) {
		sc.s.log.Debug("answer not delivered", "env", envID, "request_id", inv.RequestID, "err", werr)
	}
}
