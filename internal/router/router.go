// Package router is the invoke path for on-demand and Provisioned Concurrency
// functions: it admits an invocation against the account and reserved concurrency
// limits, picks an environment (a provisioned one first, then a warm on-demand one,
// else it cold-starts a new one), runs the invocation and returns the environment to
// its pool. It owns the environments of the in-process instance; it never queues
// behind a busy environment, and it never sends an invocation through NATS.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/guard"
)

// Config configures a Router.
type Config struct {
	// AccountConcurrency is the account's concurrent-execution limit (Lambda: 1000).
	AccountConcurrency int
	// KeepAlive is how long an idle on-demand environment lives before it is reaped.
	KeepAlive time.Duration
	// ReapInterval is how often idle environments are looked for.
	ReapInterval time.Duration
	// ProvisionParallelism bounds how many provisioned environments start at once.
	ProvisionParallelism int
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = 1000
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 10 * time.Minute
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = 10 * time.Second
	}
	if c.ProvisionParallelism == 0 {
		c.ProvisionParallelism = 4
	}
	switch {
	case c.AccountConcurrency < 1:
		return fmt.Errorf("account concurrency %d: must be at least 1", c.AccountConcurrency)
	case c.KeepAlive < 0 || c.ReapInterval < 0:
		return errors.New("keep-alive and reap interval must not be negative")
	}
	return nil
}

// Env is what the router needs of an execution environment; *env.Environment
// implements it.
type Env interface {
	Invoke(ctx context.Context, inv env.Invocation) (env.Result, error)
	Done() <-chan struct{}
	Close(ctx context.Context) error
}

var _ Env = (*env.Environment)(nil)

// Starter starts an environment of target t for spec (t's spec completed by
// the router); env.Start in production, or in a cluster a placement on any
// host (internal/remote).
type Starter func(ctx context.Context, t *Target, spec env.Spec) (Env, error)

// CodeSource turns a code package into a directory of unpacked code, and a
// function's layers into the directory it sees as /opt. A router without
// one leaves the spec's CodeDir and OptDir to its Starter, which finds the
// code by t.CodeSha256 and spec.Layers.
type CodeSource interface {
	CodeDir(ctx context.Context, codeSha256 string) (string, error)
	OptDir(ctx context.Context, layers []string) (string, error)
}

// Target names one runnable configuration of a function: a version, or $LATEST at
// one revision. Environments are never shared between two targets.
type Target struct {
	// Key identifies the configuration; a changed $LATEST gets a new key.
	Key string
	// Function is the function's name; Version the version that runs.
	Function, Version string
	// CodeSha256 names the code package.
	CodeSha256 string
	// Spec is the environment's spec without CodeDir, OptDir, InitType and
	// MaxConcurrency, which the router fills.
	Spec env.Spec
	// Reserved is the function's reserved concurrency, nil if none.
	Reserved *int
}

// Router admits and places invocations.
type Router struct {
	cfg    Config
	start  Starter
	code   CodeSource
	clock  clock.Clock
	logger *slog.Logger

	mu sync.Mutex // guards everything below
	// inFlight counts running invocations per function; total is their sum.
	inFlight map[string]int
	total    int
	// unreserved counts in-flight invocations of functions without a reservation.
	unreserved int
	// reservedSum is the sum of all functions' reserved concurrency, which the
	// unreserved pool may not use.
	reservedSum int
	pools       map[string]*pool // by Target.Key
	closed      bool

	// shared, when set (Share), reaches the provisioned environments that
	// every front of a cluster may use.
	shared Shared

	wg   sync.WaitGroup // background loops and provisioning
	stop chan struct{}
	// provisionSem bounds concurrent provisioned starts.
	provisionSem chan struct{}
	// provisionedCh is signalled whenever a pool's provisioned count changes.
	provisionedCh chan struct{}
}

// New returns a Router. Run its loops with Run.
func New(cfg Config, start Starter, code CodeSource, clk clock.Clock, logger *slog.Logger) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Router{
		cfg: cfg, start: start, code: code, clock: clk,
		logger:   logger.With("component", "router"),
		inFlight: make(map[string]int),
		pools:    make(map[string]*pool),
		stop:     make(chan struct{}),

		provisionSem:  make(chan struct{}, cfg.ProvisionParallelism),
		provisionedCh: make(chan struct{}, 1),
	}, nil
}

// SetReservedSum tells the router how much concurrency all functions reserve
// together; the unreserved pool is the account limit less that.
func (r *Router) SetReservedSum(n int) {
	r.mu.Lock()
	r.reservedSum = n
	r.mu.Unlock()
}

// InFlight reports running invocations: of the function, and in total.
func (r *Router) InFlight(function string) (fn, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight[function], r.total
}

var errClosed = awserr.Service(nil, "The service is shutting down.")

// errRetired is returned by a pool whose target changed while an invocation was
// being placed; the router places it again on the current pool.
var errRetired = errors.New("router: pool retired")

// admit takes one unit of concurrency for t, or returns a throttle. It reports
// whether the unit came from the unreserved pool, for release.
func (r *Router) admit(t *Target) (unreserved bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, errClosed
	}
	n := r.inFlight[t.Function]
	if t.Reserved != nil {
		if n >= *t.Reserved {
			return false, awserr.Throttled(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded, "Rate Exceeded.")
		}
	} else {
		if r.unreserved >= r.cfg.AccountConcurrency-r.reservedSum || r.total >= r.cfg.AccountConcurrency {
			return false, awserr.Throttled(awserr.ReasonConcurrentInvocationLimitExceeded, "Rate Exceeded.")
		}
		r.unreserved++
	}
	r.inFlight[t.Function] = n + 1
	r.total++
	return t.Reserved == nil, nil
}

func (r *Router) release(function string, unreserved bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight[function] <= 1 {
		delete(r.inFlight, function)
	} else {
		r.inFlight[function]--
	}
	r.total--
	if unreserved {
		r.unreserved--
	}
}

// Invoke runs one invocation of t.
func (r *Router) Invoke(ctx context.Context, t *Target, inv env.Invocation) (env.Result, error) {
	unreserved, err := r.admit(t)
	if err != nil {
		return env.Result{}, err
	}
	defer r.release(t.Function, unreserved)
	if r.shared != nil {
		// A free provisioned environment anywhere in the cluster first;
		// when none is free, on demand.
		if res, ok, err := r.shared.Invoke(ctx, t, inv); ok {
			return res, err
		}
	}
	for attempt := 1; ; attempt++ {
		var (
			p           *pool
			e           *entry
			initFailure *env.InitError
		)
		for {
			p = r.pool(t)
			e, initFailure, err = p.acquire(ctx)
			if !errors.Is(err, errRetired) {
				break
			}
		}
		if err != nil {
			return env.Result{}, err
		}
		if initFailure != nil {
			// The environment's failed init answers the invocation, which
			// is recorded with that outcome.
			return initFailure.Answer(inv), nil
		}
		res, err := e.env.Invoke(ctx, inv)
		p.put(e, err != nil || res.Replace)
		if errors.Is(err, env.ErrClosed) && attempt < maxPlacements && ctx.Err() == nil {
			// The environment ended before its runtime took the invocation
			// (a runtime that exits after an error, as aws-lambda-go does
			// after a panic): the invocation goes to another environment, or
			// a fresh one.
			continue
		}
		if err != nil {
			return env.Result{}, awserr.Service(err, "The function could not be invoked.")
		}
		return res, nil
	}
}

// maxPlacements bounds how many environments one invocation is offered to
// when each ends before its runtime takes it.
const maxPlacements = 4

// pool returns the pool of t, creating it on first use.
func (r *Router) pool(t *Target) *pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[t.Key]
	if p == nil {
		p = newPool(r, *t)
		r.pools[t.Key] = p
	}
	return p
}

// Run reaps idle environments until ctx ends or Close is called.
func (r *Router) Run(ctx context.Context) {
	tk := r.clock.NewTicker(r.cfg.ReapInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stop:
			return
		case <-tk.C():
			_ = guard.Run(r.logger, "reaping idle environments", r.reap)
		}
	}
}

func (r *Router) reap() {
	now := r.clock.Now()
	r.mu.Lock()
	pools := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.Unlock()
	for _, p := range pools {
		p.reap(now.Add(-r.cfg.KeepAlive))
	}
}

// Retire drops the environments of every target of function whose key is not in
// keep: their configuration changed or was deleted. In-flight invocations finish.
func (r *Router) Retire(function string, keep map[string]bool) {
	r.mu.Lock()
	var gone []*pool
	for k, p := range r.pools {
		if p.target.Function == function && !keep[k] {
			gone = append(gone, p)
			delete(r.pools, k)
		}
	}
	r.mu.Unlock()
	for _, p := range gone {
		p.retire()
	}
}

// Close stops admitting invocations, lets in-flight ones finish until ctx ends,
// and stops every environment.
func (r *Router) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	pools := r.pools
	r.pools = map[string]*pool{}
	r.mu.Unlock()
	for _, p := range pools {
		p.retire()
	}
	done := make(chan struct{})
	go func() {
		for _, p := range pools {
			p.wait()
		}
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, p := range pools {
			p.kill()
		}
		return ctx.Err()
	}
}

// Shared reaches provisioned environments that every front of a cluster may
// use: those the cluster's leader keeps, each in an agent on a host, which
// refuses an invocation when its environment is busy.
type Shared interface {
	// Invoke runs inv on a free provisioned environment of t, and reports
	// true; it reports false at once when none is free.
	Invoke(ctx context.Context, t *Target, inv env.Invocation) (env.Result, bool, error)
	// Shares reports that e is such an environment: the router keeps it but
	// invokes it only through Invoke.
	Shares(e Env) bool
}

// Share makes the router offer each invocation to s first, and leave the
// provisioned environments s shares to it. Call it before the first
// invocation.
func (r *Router) Share(s Shared) { r.shared = s }

// SetProvisioned keeps n provisioned environments of t initialised (0 stops them).
func (r *Router) SetProvisioned(t *Target, n int) {
	r.pool(t).setProvisioned(n)
}

// ProvisionedStatus reports how many provisioned environments of the target with
// key are ready, and the last failure to start one.
func (r *Router) ProvisionedStatus(key string) (ready int, err error) {
	r.mu.Lock()
	p := r.pools[key]
	r.mu.Unlock()
	if p == nil {
		return 0, nil
	}
	return p.provisionedStatus()
}

// ProvisionedChanged is signalled whenever the number of ready provisioned
// environments of some target may have changed.
func (r *Router) ProvisionedChanged() <-chan struct{} { return r.provisionedCh }

func (r *Router) signalProvisioned() {
	select {
	case r.provisionedCh <- struct{}{}:
	default:
	}
}
