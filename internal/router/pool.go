package router

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/randid"
)

// pool holds the environments of one target: provisioned ones, kept initialised
// whatever the traffic, and on-demand ones, started on demand and reaped when idle.
// Each environment serves one invocation at a time.
type pool struct {
	r *Router

	mu     sync.Mutex // guards everything below
	target Target
	// idle and pidle are the free on-demand and provisioned environments, most
	// recently used last (taken from the end, so warm ones stay warm).
	idle, pidle []*entry
	// shared are the provisioned environments the router's Shared invokes
	// (a cluster's): kept here, never taken from here.
	shared []*entry
	// live counts started environments; provisioned counts the provisioned ones,
	// starting ones included.
	live, provisioned int
	// starting counts provisioned environments still initialising.
	starting int
	// want is the provisioned concurrency asked for; lastErr the last failure to
	// start a provisioned environment since want was set.
	want    int
	lastErr error
	retired bool

	envs sync.WaitGroup // one per live environment
}

type entry struct {
	env         Env
	provisioned bool
	lastUsed    time.Time
}

func newPool(r *Router, t Target) *pool { return &pool{r: r, target: t} }

// acquire returns a free environment, cold-starting one when none is free. A failed
// init returns the function error the caller answers with.
func (p *pool) acquire(ctx context.Context) (*entry, *env.InitError, error) {
	p.mu.Lock()
	for {
		e := pop(&p.pidle)
		if e == nil {
			e = pop(&p.idle)
		}
		if e == nil {
			break
		}
		if isDone(e.env) { // died while idle
			p.dropLocked(e)
			if e.provisioned && !p.retired {
				p.fillLocked()
			}
			continue
		}
		p.mu.Unlock()
		return e, nil, nil
	}
	if p.retired {
		p.mu.Unlock()
		return nil, nil, errRetired
	}
	p.live++
	p.envs.Add(1)
	p.mu.Unlock()

	e, err := p.startEnv(ctx, "on-demand")
	if err != nil {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		p.envs.Done()
		var ie *env.InitError
		if errors.As(err, &ie) {
			return nil, ie, nil
		}
		return nil, nil, err
	}
	return &entry{env: e}, nil, nil
}

// startEnv starts one environment of the pool's target.
func (p *pool) startEnv(ctx context.Context, initType string) (Env, error) {
	p.mu.Lock()
	t := p.target
	p.mu.Unlock()
	spec := t.Spec
	if p.r.code != nil {
		dir, err := p.r.code.CodeDir(ctx, t.CodeSha256)
		if err != nil {
			return nil, awserr.Service(err, "The function's code could not be loaded.")
		}
		spec.CodeDir = dir
		if spec.OptDir, err = p.r.code.OptDir(ctx, spec.Layers); err != nil {
			return nil, awserr.Service(err, "The function's layers could not be loaded.")
		}
	}
	spec.InitType = initType
	spec.MaxConcurrency = 1
	if spec.LogStream == "" {
		spec.LogStream = randid.LogStream(p.r.clock.Now(), spec.Version)
	}
	// The environment outlives the request that started it.
	e, err := p.r.start(context.WithoutCancel(ctx), &t, spec)
	if err != nil {
		var ie *env.InitError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, awserr.Service(err, "The execution environment could not be started.")
	}
	return e, nil
}

// put returns e to the pool after an invocation, or discards it.
func (p *pool) put(e *entry, discard bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if discard || p.retired || isDone(e.env) {
		p.dropLocked(e)
		if e.provisioned && !p.retired {
			p.fillLocked()
		}
		return
	}
	if e.provisioned && p.provisioned > p.want {
		p.dropLocked(e)
		return
	}
	e.lastUsed = p.r.clock.Now()
	if e.provisioned {
		p.pidle = append(p.pidle, e)
	} else {
		p.idle = append(p.idle, e)
	}
}

// dropLocked stops e in the background. p.mu is held.
func (p *pool) dropLocked(e *entry) {
	p.live--
	if e.provisioned {
		p.provisioned--
		p.r.signalProvisioned()
	}
	go func() {
		defer p.envs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.env.Close(ctx)
	}()
}

// reap stops on-demand environments idle since before cutoff.
func (p *pool) reap(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.idle[:0]
	for _, e := range p.idle {
		if e.lastUsed.Before(cutoff) || isDone(e.env) {
			p.dropLocked(e)
			continue
		}
		kept = append(kept, e)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
}

// retire stops every idle environment and marks the pool so that busy ones stop
// when their invocation ends.
func (p *pool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = true
	p.want = 0
	for _, e := range append(append(p.idle, p.pidle...), p.shared...) {
		p.dropLocked(e)
	}
	p.idle, p.pidle, p.shared = nil, nil, nil
}

func (p *pool) wait() { p.envs.Wait() }

// kill stops whatever environments are still idle now; used when shutdown runs out of time.
func (p *pool) kill() { p.retire() }

// setProvisioned asks the pool to keep n provisioned environments.
func (p *pool) setProvisioned(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want = n
	p.lastErr = nil
	// Shrink: stop idle provisioned environments past n; busy ones stop on
	// return. Shared ones may be busy with another front's invocation: it
	// finishes before they stop.
	for p.provisioned > n && len(p.pidle) > 0 {
		p.dropLocked(pop(&p.pidle))
	}
	for p.provisioned > n && len(p.shared) > 0 {
		p.dropLocked(pop(&p.shared))
	}
	p.fillLocked()
	p.r.signalProvisioned()
}

// provisionedStatus reports how many provisioned environments are initialised,
// and the last start failure since the setting changed.
func (p *pool) provisionedStatus() (ready int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.provisioned - p.starting, p.lastErr
}

// fillLocked starts provisioned environments until want are live or starting.
// p.mu is held.
func (p *pool) fillLocked() {
	for p.provisioned < p.want && !p.retired {
		p.provisioned++
		p.starting++
		p.live++
		p.envs.Add(1)
		p.r.wg.Add(1)
		go p.startProvisioned()
	}
}

func (p *pool) startProvisioned() {
	defer p.r.wg.Done()
	select {
	case p.r.provisionSem <- struct{}{}:
	case <-p.r.stop:
		p.mu.Lock()
		p.provisioned--
		p.starting--
		p.live--
		p.mu.Unlock()
		p.envs.Done()
		return
	}
	ee, err := p.startEnv(context.Background(), "provisioned-concurrency")
	<-p.r.provisionSem
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.r.signalProvisioned()
	p.starting--
	if err != nil {
		p.provisioned--
		p.live--
		p.envs.Done()
		p.lastErr = err
		p.r.logger.Warn("provisioned environment failed to start",
			"function", p.target.Function, "version", p.target.Version, "err", err)
		return
	}
	e := &entry{env: ee, provisioned: true, lastUsed: p.r.clock.Now()}
	if p.retired || p.provisioned > p.want {
		p.dropLocked(e)
		return
	}
	if p.r.shared != nil && p.r.shared.Shares(ee) {
		p.shared = append(p.shared, e)
	} else {
		p.pidle = append(p.pidle, e)
	}
	p.r.wg.Add(1)
	go p.watchProvisioned(e)
}

// watchProvisioned replaces a provisioned environment that ends while the
// pool holds it (its runtime exited between invocations, or its host is
// gone); one that ends while busy is replaced when it comes back (put).
func (p *pool) watchProvisioned(e *entry) {
	defer p.r.wg.Done()
	select {
	case <-e.env.Done():
	case <-p.r.stop:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if remove(&p.pidle, e) || remove(&p.shared, e) {
		p.dropLocked(e)
		if !p.retired {
			p.fillLocked()
		}
	}
}

// remove takes e out of s, and reports whether it was there.
func remove(s *[]*entry, e *entry) bool {
	i := slices.Index(*s, e)
	if i < 0 {
		return false
	}
	*s = slices.Delete(*s, i, i+1)
	return true
}

func pop(s *[]*entry) *entry {
	n := len(*s)
	if n == 0 {
		return nil
	}
	e := (*s)[n-1]
	(*s)[n-1] = nil
	*s = (*s)[:n-1]
	return e
}

func isDone(e Env) bool {
	select {
	case <-e.Done():
		return true
	default:
		return false
	}
}
