package agent

// Lifecycle of an environment on an agent:
//
//	start ──► initializing ──init ok──► ready ──stop / drain──► draining ──in-flight done──► (removed)
//	               │                      │
//	               │ init error           │ runtime ended on its own
//	               ▼                      ▼
//	          (removed; the           failed ──stop──► (removed)
//	          start reply says why)
//
// Lifecycle of the agent (the instance):
//
//	running ──drain──► draining ──shutdown / signal──► terminated (last heartbeat, exit)
//
// Every command is idempotent: starting an id that exists answers its
// outcome, stopping an unknown id succeeds, draining twice waits for the same
// drain.

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/wire"
)

type envState int32

const (
	stInitializing envState = iota
	stReady
	stDraining
	stFailed
)

func (s envState) String() string {
	switch s {
	case stInitializing:
		return EnvInitializing
	case stReady:
		return EnvReady
	case stDraining:
		return EnvDraining
	}
	return EnvFailed
}

// env is one environment of the agent.
//
// Concurrency: id, function, version, revision, slots, build and timeout are
// immutable. ae and initErr are written once before ready is closed and read
// only after. state is atomic; mu guards failure. stopOnce starts the stop;
// stopped closes at its end.
type hostedEnv struct {
	id       string
	function string
	version  string
	revision string
	slots    int
	// initType, vcpu and memMB are what a classic agent's environment runs
	// as and takes of its host (classic.go).
	initType string
	vcpu     float64
	memMB    int
	// build is the runtime build the environment runs (runtimes.Prober), ""
	// when it could not be told.
	build string
	// timeout is the function's: a drain waits this long for the invocations
	// in flight, and a little more for their answers (drainGrace).
	timeout time.Duration

	ready   chan struct{}
	ae      *env.Environment
	initErr error

	state atomic.Int32

	// Counters of the invoke path.
	inflight    atomic.Int32
	peak        atomic.Int32 // since the previous heartbeat
	invocations atomic.Uint64
	refused     [len(refusalReasons)]atomic.Uint64

	// CPU utilisation over the last heartbeat interval (float64 bits),
	// written by the heartbeat goroutine, which alone uses lastCPU and lastAt.
	cpuBits atomic.Uint64
	lastCPU time.Duration
	lastAt  time.Time

	mu      sync.Mutex
	failure string

	// keptAt is when the environment's owner last kept it (unix ns; classic
	// agents only).
	keptAt atomic.Int64

	stopOnce sync.Once
	stopped  chan struct{}
}

func newEnv(id, revision, build string, spec *env.Spec) *hostedEnv {
	slots := spec.MaxConcurrency
	if slots <= 0 {
		slots = 1
	}
	version := spec.Version
	if version == "" {
		version = "$LATEST"
	}
	vcpu := spec.CPUs
	if vcpu <= 0 {
		vcpu = sandbox.CPUsForMemory(spec.MemoryMB)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = env.DefaultTimeout
	}
	return &hostedEnv{id: id, function: spec.FunctionName, version: version, revision: revision, slots: slots,
		vcpu: vcpu, memMB: spec.MemoryMB, build: build, timeout: timeout,
		ready: make(chan struct{}), stopped: make(chan struct{})}
}

// drainGrace is what a drain waits beyond the function's timeout for the
// answers of the invocations in flight.
const drainGrace = 2 * time.Second

func (e *hostedEnv) getState() envState { return envState(e.state.Load()) }

// setState moves from one state to another; it reports whether it did.
func (e *hostedEnv) setState(from, to envState) bool {
	return e.state.CompareAndSwap(int32(from), int32(to))
}

func (e *hostedEnv) fail(why string) {
	e.mu.Lock()
	e.failure = why
	e.mu.Unlock()
	e.state.Store(int32(stFailed))
}

// refusalReasons index env.refused.
var refusalReasons = [...]string{wire.ReasonConcurrency, wire.ReasonCPU, wire.ReasonMemory, wire.ReasonUnknown, wire.ReasonDraining}

func (e *hostedEnv) countRefusal(reason string) {
	for i, r := range refusalReasons {
		if r == reason {
			e.refused[i].Add(1)
			return
		}
	}
}

// begin counts an invocation handed to the environment and raises the peak.
func (e *hostedEnv) begin() {
	n := e.inflight.Add(1)
	for {
		p := e.peak.Load()
		if n <= p || e.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// status reports the environment; resetPeak starts a new peak interval (heartbeats do).
func (e *hostedEnv) status(resetPeak bool) EnvStatus {
	st := EnvStatus{ID: e.id, Function: e.function, Version: e.version, Revision: e.revision, Slots: e.slots, State: e.getState().String(),
		InitType: e.initType, Invocations: e.invocations.Load(), CPUUtilization: math.Float64frombits(e.cpuBits.Load()), Build: e.build}
	if resetPeak {
		st.PeakInFlight = int(e.peak.Swap(e.inflight.Load()))
	} else {
		st.PeakInFlight = int(e.peak.Load())
	}
	st.PeakInFlight = min(st.PeakInFlight, e.slots)
	for i, r := range refusalReasons {
		if n := e.refused[i].Load(); n > 0 {
			if st.Refused == nil {
				st.Refused = map[string]uint64{}
			}
			st.Refused[r] = n
		}
	}
	select {
	case <-e.ready:
		if e.ae != nil {
			st.InFlight = e.ae.InFlight()
		}
	default:
	}
	e.mu.Lock()
	st.Error = e.failure
	e.mu.Unlock()
	return st
}

// sampleCPU updates the environment's CPU utilisation; heartbeat goroutine only.
func (e *hostedEnv) sampleCPU(now time.Time) {
	select {
	case <-e.ready:
	default:
		return
	}
	if e.ae == nil {
		return
	}
	cpu := e.ae.CPUTime()
	if !e.lastAt.IsZero() {
		vcpu := e.ae.Spec().CPUs
		if el := now.Sub(e.lastAt); el > 0 && vcpu > 0 && cpu >= e.lastCPU {
			// Over an interval shorter than a few CFS periods the quota can
			// be overrun at the edges; the share is capped at the quota.
			e.cpuBits.Store(math.Float64bits(min(float64(cpu-e.lastCPU)/float64(el)/vcpu, 1)))
		}
	}
	e.lastCPU, e.lastAt = cpu, now
}

// markDraining moves a starting or ready environment to draining; a failed
// one stays failed.
func (e *hostedEnv) markDraining() {
	for {
		s := e.getState()
		if s == stDraining || s == stFailed || e.setState(s, stDraining) {
			return
		}
	}
}

// stop drains the environment: no new invocations, the in-flight ones
// finish (within ctx, and at most the function's timeout and drainGrace),
// then it closes; done gets how many invocations were in flight when the
// drain began and how many of them were still running when it ended (cut).
// It waits for init first. Every caller returns once the one stop has
// finished or its own wait ends.
func (e *hostedEnv) stop(ctx context.Context, wait context.Context, done func(inFlight, cut int)) {
	e.stopOnce.Do(func() {
		go func() {
			defer close(e.stopped)
			e.markDraining()
			inFlight := int(e.inflight.Load())
			cut := 0
			defer func() { done(inFlight, cut) }()
			<-e.ready // init is bounded by its own timeout
			if e.ae != nil {
				dctx, cancel := context.WithTimeout(ctx, e.timeout+drainGrace)
				_ = e.ae.Close(dctx)
				cancel()
				cut = min(int(e.inflight.Load()), inFlight)
			}
		}()
	})
	select {
	case <-e.stopped:
	case <-wait.Done():
	}
}
