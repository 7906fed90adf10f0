package remote

// Lifecycle of an environment a front placed on a host's classic agent:
//
//	Start ──StartEnvironment ok──► live ──Close──► ended (StopEnvironment: in-flight ones finish)
//	                                 │
//	                                 │ its agent answers it gone (keep), reports it failed,
//	                                 │ stops heartbeating or restarts; its host is lost;
//	                                 │ its invoke connection breaks; an invocation it
//	                                 ▼ answered asks for its replacement
//	                               ended (Done closed; the router drops it and Closes it)
//
// A crash inside the environment answers its invocation Runtime.ExitError
// with Replace, as in this process; the router then starts a fresh one.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/wire"
)

// remoteEnv is one of the front's environments on a classic agent.
//
// Concurrency: everything but done's closing is immutable; endOnce closes
// done (under Placer.mu), closeOnce runs Close.
type remoteEnv struct {
	p           *Placer
	id, agentID string
	host        string
	incarnation time.Time // the agent's StartedAt when it started the environment
	need        Need

	done      chan struct{}
	endOnce   sync.Once
	closeOnce sync.Once
}

var _ router.Env = (*remoteEnv)(nil)

// endLocked marks the environment gone: Done closes and the front stops
// keeping it. Placer.mu is held.
func (e *remoteEnv) endLocked(why string) {
	e.endOnce.Do(func() {
		close(e.done)
		delete(e.p.envs, e.id)
		e.p.log.Debug("environment on a host ended", "env", e.id, "host", e.host, "reason", why)
	})
}

func (e *remoteEnv) end(why string) {
	e.p.mu.Lock()
	e.endLocked(why)
	e.p.mu.Unlock()
}

// Done is closed once the environment, or its agent or host, is gone.
func (e *remoteEnv) Done() <-chan struct{} { return e.done }

// Invoke runs one invocation on the environment, over the agent's
// connection. As in this process, an invocation the environment never took
// returns env.ErrClosed (the router places it again) and one that finds it
// busy env.ErrBusy.
func (e *remoteEnv) Invoke(ctx context.Context, inv env.Invocation) (env.Result, error) {
	select {
	case <-e.done:
		return env.Result{}, env.ErrClosed
	default:
	}
	in, hb, ok := e.p.instance(e.agentID)
	if !ok || !hb.StartedAt.Equal(e.incarnation) {
		e.end("its agent is gone")
		return env.Result{}, env.ErrClosed
	}
	conn, err := e.p.deps.Pool.Conn(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return env.Result{}, ctx.Err()
		}
		e.p.broken(e.agentID, err) // ends this environment too
		return env.Result{}, env.ErrClosed
	}
	e.p.watch(e.agentID, conn)
	res, err := conn.Invoke(ctx, e.id, inv)
	if err == nil {
		if res.Replace {
			e.end("its invocation ended it")
		}
		return res, nil
	}
	if r, ok := wire.AsRefused(err); ok {
		switch r.Reason {
		case wire.ReasonConcurrency, wire.ReasonCPU, wire.ReasonMemory:
			return env.Result{}, env.ErrBusy
		}
		e.end("its agent refused an invocation: " + r.Reason)
		return env.Result{}, env.ErrClosed
	}
	if ctx.Err() != nil {
		return env.Result{}, ctx.Err()
	}
	var ce *wire.ConnError
	if errors.As(err, &ce) || errors.Is(err, wire.ErrClosed) {
		// Sent, and the connection broke: whether it ran is unknown, and
		// the agent is most likely gone.
		e.p.broken(e.agentID, err)
	}
	return env.Result{}, err
}

// Close stops the environment on its agent: no new invocations; in-flight
// ones (another front's, for a shared provisioned one) finish until ctx ends.
func (e *remoteEnv) Close(ctx context.Context) error {
	var err error
	e.closeOnce.Do(func() {
		e.end("closed")
		err = e.stopOnAgent(ctx)
	})
	return err
}

// stopOnAgent asks the agent to stop the environment; an agent that is gone
// took it with it.
func (e *remoteEnv) stopOnAgent(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	err := e.p.agents.StopEnvironment(ctx, e.agentID, e.id)
	if err != nil && !errors.Is(err, agent.ErrNoAgent) {
		e.p.log.Warn("environment on a host not stopped; its agent stops it when nobody keeps it",
			"env", e.id, "host", e.host, "err", err)
		return err
	}
	return nil
}
