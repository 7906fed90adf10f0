// Package runtimeapi serves the AWS Lambda Runtime API (2018-06-01) to one
// execution environment on its own loopback listener.
//
// The server is multi-concurrent: any number of runtime workers may long-poll
// invocation/next at once, and at most Slots invocations are out at a time
// (submitted and not yet answered), whatever the runtime polls. Submit never
// queues beyond the free slots: with every slot taken it fails with ErrNoSlot.
//
// The hot path is one channel hand-off from Submit to a waiting next handler
// and one map lookup on the response; no goroutine of its own, no broker.
// The package knows nothing about processes, logs or timeouts: the agent owns
// them.
package runtimeapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MaxResponseBytes is Lambda's limit on a synchronous response (6 MB).
const MaxResponseBytes = 6291556

// MaxStreamedResponseBytes is Lambda's limit on a response streamed to a caller
// that streams (200 MB).
const MaxStreamedResponseBytes = 200 << 20

// ErrNoSlot is returned by Submit when every slot is taken.
var ErrNoSlot = errors.New("runtimeapi: no free slot")

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("runtimeapi: server closed")

// Config configures a Server.
type Config struct {
	// Slots is the number of invocations out at once (AWS_LAMBDA_MAX_CONCURRENCY); 0 means 1.
	Slots int
	// Addr to listen on; "" means 127.0.0.1:0.
	Addr string
	// Listener, if set, is served instead of listening on Addr (a socket made
	// inside the environment's network namespace; see Listen). Close closes it.
	Listener net.Listener
	Logger   *slog.Logger
	// OnInitError is called once when the runtime posts init/error.
	OnInitError func(errorType string, body []byte)
	// OnTake, if set, is called when a runtime worker is handed inv, before
	// the runtime can see it: an invocation that is never handed out (its
	// environment ended first) is never taken, and its caller may place it
	// elsewhere. It runs on the worker's connection and must be quick.
	OnTake func(inv *Invocation)
	// WorkerConnections says each runtime worker keeps one connection of
	// its own and answers on it (shoal's Python bootstrap with one process
	// per slot): when such a connection closes while it holds invocations,
	// its worker died, and they end with Outcome.WorkerExited. Runtimes
	// that re-dial (aws-lambda-go) must leave it off.
	WorkerConnections bool

	// plainIO serves connections through net.Conn instead of rawio: the
	// A/B benchmark (ab_test.go, docs/decisions/rawio.md).
	plainIO bool
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Slots < 0 || c.Slots > 1<<16 {
		return fmt.Errorf("runtimeapi: slots %d out of range", c.Slots)
	}
	return nil
}

// Invocation is one request handed to the runtime. Fill the exported fields
// before Submit; the server reads them only.
type Invocation struct {
	ID              string
	Payload         []byte
	Deadline        time.Time
	InvokedARN      string
	TraceID         string
	ClientContext   string
	CognitoIdentity string
	TenantID        string
	// Owner is the submitter's own, for Config.OnTake; the server never
	// reads it.
	Owner any
	// Stream, if set, receives the response body as the runtime sends it
	// (stream.go) instead of Outcome.Payload collecting it: the caller
	// streams.
	Stream ResponseStream

	state atomic.Int32 // statePending → stateOut | stateWithdrawn
	done  chan Outcome // buffered 1: the runtime's answer
}

const (
	statePending int32 = iota
	stateOut
	stateWithdrawn
)

// Outcome is what the runtime answered for one invocation.
type Outcome struct {
	Payload []byte
	// Error is true when the runtime posted invocation/{id}/error, or the
	// response exceeded MaxResponseBytes (ErrorType Function.ResponseSizeTooLarge).
	Error     bool
	ErrorType string
	// WorkerExited is set when the worker holding the invocation went away
	// without answering (Config.WorkerConnections).
	WorkerExited bool
	// Streamed reports that the response body went to Invocation.Stream
	// (Payload then holds only an error's JSON); Bytes is its length.
	Streamed bool
	Bytes    int64
	// ContentType is the response's Content-Type as the runtime sent it.
	ContentType string
}

// Done returns the channel that receives the runtime's answer (once).
func (inv *Invocation) Done() <-chan Outcome { return inv.done }

// Server is the Runtime API of one environment.
//
// Concurrency: cfg, slots, pending, ln, ready and closed are set in New
// and immutable after; inUse is atomic; mu guards out, conns and initErr.
// Each connection is served by one goroutine (conn.go).
type Server struct {
	cfg     Config
	logger  *slog.Logger
	slots   int32
	inUse   atomic.Int32     // submitted and not yet answered (or withdrawn and not yet popped)
	pending chan *Invocation // capacity slots: never blocks a Submit that got a slot
	ln      net.Listener
	ready   chan struct{} // closed at the first next poll
	closed  chan struct{} // closed by Close

	readyOnce sync.Once
	closeOnce sync.Once

	mu      sync.Mutex
	out     map[string]*Invocation // handed out, awaiting the runtime's answer
	conns   map[net.Conn]struct{}  // open runtime connections
	initErr bool                   // init/error was posted
}

// New listens and starts serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Slots == 0 {
		cfg.Slots = 1
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger()
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(cfg.Addr); err != nil {
			return nil, fmt.Errorf("runtimeapi: listen: %w", err)
		}
	}
	s := newServer(cfg, logger)
	s.ln = ln
	go s.accept()
	return s, nil
}

// accept serves each runtime connection on its own goroutine. Connections
// have no timeouts: the runtime is trusted, and keep-alive is never closed.
// Go sets TCP_NODELAY on accepted connections already.
func (s *Server) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
			default:
				s.logger.Warn("runtime api stopped accepting", "err", err)
			}
			return
		}
		s.mu.Lock()
		select {
		case <-s.closed:
			s.mu.Unlock()
			nc.Close()
			return
		default:
		}
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

func (s *Server) forget(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

func newServer(cfg Config, logger *slog.Logger) *Server {
	return &Server{
		cfg:     cfg,
		logger:  logger,
		slots:   int32(cfg.Slots),
		pending: make(chan *Invocation, cfg.Slots),
		ready:   make(chan struct{}),
		closed:  make(chan struct{}),
		out:     make(map[string]*Invocation, cfg.Slots),
		conns:   make(map[net.Conn]struct{}),
	}
}

// Addr is host:port for AWS_LAMBDA_RUNTIME_API.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Slots is the slot limit.
func (s *Server) Slots() int { return int(s.slots) }

// InUse is the number of slots taken.
func (s *Server) InUse() int { return int(s.inUse.Load()) }

// Ready is closed when the runtime first polls invocation/next (init done).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Submit takes a slot for inv and queues it for the next poll. It fails at
// once with ErrNoSlot when every slot is taken. The answer arrives on
// inv.Done().
func (s *Server) Submit(inv *Invocation) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	if s.inUse.Add(1) > s.slots {
		s.inUse.Add(-1)
		return ErrNoSlot
	}
	inv.state.Store(statePending)
	if inv.done == nil {
		inv.done = make(chan Outcome, 1)
	}
	s.pending <- inv // never blocks: len(pending) ≤ inUse ≤ slots
	return nil
}

// Withdraw takes back an invocation that no runtime has received yet (its
// caller went away). It reports false when the runtime already has it; the
// runtime's answer is then still accepted and dropped.
func (s *Server) Withdraw(inv *Invocation) bool {
	return inv.state.CompareAndSwap(statePending, stateWithdrawn)
}

// Outstanding returns the ids of the invocations the runtime holds.
func (s *Server) Outstanding() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.out))
	for id := range s.out {
		ids = append(ids, id)
	}
	return ids
}

// Close stops serving: pending polls return, connections close, and no
// more Submits are accepted. Outstanding invocations get no answer from the
// server; the agent settles them.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.closed)
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if s.ln != nil {
			err = s.ln.Close()
		}
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return err
}

// take hands the next submitted invocation out, skipping withdrawn ones. A
// pending invocation is preferred over stop; it returns nil once stop is
// closed and nothing is pending.
func (s *Server) take(stop <-chan struct{}) *Invocation {
	for {
		var inv *Invocation
		select {
		case inv = <-s.pending:
		default:
			select {
			case inv = <-s.pending:
			case <-stop:
				return nil
			}
		}
		if !inv.state.CompareAndSwap(statePending, stateOut) {
			s.inUse.Add(-1) // withdrawn: its slot is free now
			continue
		}
		s.mu.Lock()
		s.out[inv.ID] = inv
		s.mu.Unlock()
		return inv
	}
}

// requeue puts back an invocation whose poller went away before receiving
// it; it keeps its slot.
func (s *Server) requeue(inv *Invocation) {
	s.mu.Lock()
	delete(s.out, inv.ID)
	s.mu.Unlock()
	inv.state.Store(statePending)
	s.pending <- inv // its place in the channel is free: it came out of it
}

// outstanding returns the invocation id the runtime holds, nil if none.
func (s *Server) outstanding(id string) *Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out[id]
}

// settle removes id from the outstanding set, frees its slot and delivers o.
// It reports false for an id that is not outstanding.
func (s *Server) settle(id string, o Outcome) bool {
	s.mu.Lock()
	inv, ok := s.out[id]
	if ok {
		delete(s.out, id)
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	s.inUse.Add(-1)
	inv.done <- o // buffered 1, delivered once
	return true
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
