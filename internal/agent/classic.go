package agent

// A classic agent (Config.Classic) serves the on-demand and Provisioned
// Concurrency environments a cluster's fronts place on its host: it runs in
// the host's own process, belongs to no capacity provider and is no
// instance of the fleet. Its environments are those of Lambda's classic
// compute: one invocation at a time, started with their own init type
// (on-demand or provisioned-concurrency) and init timeout, and metered as
// such. Each belongs to the front that started it, which keeps it
// (OpKeep) while it wants it; one its owner stops keeping (the front is
// gone) is stopped after Config.KeepTimeout.

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// checkClassic completes a start on a classic agent and says what is wrong
// with it ("" when nothing); an instance's starts pass as they are.
func (a *Agent) checkClassic(req *StartEnv) string {
	if !a.cfg.Classic {
		return ""
	}
	switch req.Spec.InitType {
	case "":
		req.Spec.InitType = env.InitOnDemand
	case env.InitOnDemand, env.InitProvisioned:
	default:
		return fmt.Sprintf("a classic agent runs on-demand and provisioned-concurrency environments, not %q", req.Spec.InitType)
	}
	req.Spec.MaxConcurrency = 1
	return ""
}

// kept records that the environment's owner wants it still.
func (e *hostedEnv) kept(now time.Time) { e.keptAt.Store(now.UnixNano()) }

// keep answers OpKeep: the environments named are kept; those the agent no
// longer serves are answered gone.
func (a *Agent) keep(ids []string) Reply {
	now := a.clock.Now()
	var gone []string
	a.mu.RLock()
	for _, id := range ids {
		e := a.envs[id]
		if e == nil {
			gone = append(gone, id)
			continue
		}
		switch e.getState() {
		case stFailed, stDraining:
			gone = append(gone, id)
			continue
		}
		e.kept(now)
	}
	a.mu.RUnlock()
	return Reply{OK: true, Gone: gone}
}

// reapUnkept stops the ready environments that nobody kept for KeepTimeout:
// their front is gone, and no other knows of them.
func (a *Agent) reapUnkept() {
	cutoff := a.clock.Now().Add(-a.cfg.KeepTimeout).UnixNano()
	var stale []*hostedEnv
	a.mu.RLock()
	for _, e := range a.envs {
		if e.getState() == stReady && e.keptAt.Load() < cutoff {
			stale = append(stale, e)
		}
	}
	a.mu.RUnlock()
	for _, e := range stale {
		a.log.Info("stopping an environment its front no longer keeps", "env", e.id, "function", e.function,
			"version", e.version, "kept", time.Unix(0, e.keptAt.Load()))
		e.markDraining()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
			defer cancel()
			e.stop(ctx, ctx, a.removeFunc(e))
		}()
	}
	if len(stale) > 0 {
		a.heartbeatNow()
	}
}

// Allocated is what the agent's live environments take of its host: vCPUs
// (their CPU quotas), memory in MiB, and how many there are. Failed ones,
// whose processes have ended, take nothing.
func (a *Agent) Allocated() (vcpu float64, memoryMB, n int) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, e := range a.envs {
		if e.getState() == stFailed {
			continue
		}
		vcpu += e.vcpu
		memoryMB += e.memMB
		n++
	}
	return vcpu, memoryMB, n
}
