package controlplane

import (
	"context"
	"errors"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
)

// syncLoop keeps the router in step with the registry: the account's reserved
// concurrency, the provisioned environments each Provisioned Concurrency config
// asks for (and their status back in the registry), and the environments of
// configurations that no longer exist.
func (s *Server) syncLoop(ctx context.Context) {
	changes, err := s.reg.Watch(ctx)
	if err != nil {
		s.logger.Error("registry watch failed; provisioned concurrency will not be kept", "err", err)
		return
	}
	// provisioned maps each config ("function:qualifier") to the target it keeps.
	provisioned := make(map[string]*router.Target)
	tick := s.clock.NewTicker(usageCheckpoint)
	defer tick.Stop()
	// The stamp of this process's last second bounds, after a kill, the
	// provisioned time of the segments it left open (provisionedUsage).
	stamp := s.provUsage.openStamp()
	defer stamp.Close()
	stampTick := s.clock.NewTicker(time.Second)
	defer stampTick.Stop()
	stamp.Write(s.clock.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-stampTick.C():
			stamp.Write(now)
		case now := <-tick.C():
			_ = guard.Run(s.logger, "usage checkpoint", func() { s.provUsage.checkpoint(now, false) })
		case ch, ok := <-changes:
			if !ok {
				return
			}
			_ = guard.Run(s.logger, "registry sync", func() {
				s.syncReserved(ctx)
				s.syncFunction(ctx, ch)
				s.syncProvisioned(ctx, provisioned)
			})
		case <-s.router.ProvisionedChanged():
			_ = guard.Run(s.logger, "provisioned concurrency status", func() { s.reportProvisioned(ctx, provisioned) })
		}
	}
}

func (s *Server) syncReserved(ctx context.Context) {
	sum, err := s.reg.SumReservedConcurrency(ctx)
	if err != nil {
		s.logger.Warn("reading reserved concurrency", "err", err)
		return
	}
	s.router.SetReservedSum(sum)
}

// syncFunction retires the environments of a function's configurations that are
// gone: an older $LATEST, a deleted version, or the whole function.
func (s *Server) syncFunction(ctx context.Context, ch registry.Change) {
	keep := map[string]bool{}
	if !ch.Deleted {
		latest, err := s.reg.ResolveVersion(ctx, ch.Function, registry.Latest)
		if err != nil && !awserr.Is(err, awserr.CodeResourceNotFound) {
			s.logger.Warn("resolving $LATEST", "function", ch.Function, "err", err)
			return
		}
		if latest != nil {
			keep[targetKey(latest)] = true
		}
		versions, err := s.reg.ListVersions(ctx, ch.Function)
		if err != nil && !awserr.Is(err, awserr.CodeResourceNotFound) {
			s.logger.Warn("listing versions", "function", ch.Function, "err", err)
			return
		}
		for _, v := range versions {
			keep[targetKey(v)] = true
		}
	}
	s.router.Retire(ch.Function, keep)
}

// syncProvisioned makes the router keep what every Provisioned Concurrency
// config asks for, and stop what no config asks for any more.
func (s *Server) syncProvisioned(ctx context.Context, provisioned map[string]*router.Target) {
	configs, err := s.reg.ListProvisionedConcurrency(ctx)
	if err != nil {
		s.logger.Warn("listing provisioned concurrency", "err", err)
		return
	}
	seen := make(map[string]bool, len(configs))
	for _, c := range configs {
		id := c.FunctionName + ":" + c.Qualifier
		v, err := s.reg.ResolveVersion(ctx, c.FunctionName, c.Version)
		if err != nil {
			continue
		}
		t := targetFor(v, s.cfg)
		if old := provisioned[id]; old != nil && old.Key != t.Key {
			s.router.SetProvisioned(old, 0) // an alias moved to another version
		}
		seen[id] = true
		provisioned[id] = t
		s.router.SetProvisioned(t, c.Requested)
		s.provUsage.set(id, c.Qualifier, t, c.Requested, s.clock.Now())
	}
	for id, t := range provisioned {
		if !seen[id] {
			s.router.SetProvisioned(t, 0)
			s.provUsage.set(id, "", nil, 0, s.clock.Now())
			delete(provisioned, id)
		}
	}
	s.reportProvisioned(ctx, provisioned)
}

// reportProvisioned writes each config's allocated count and status back to the
// registry, where GetProvisionedConcurrencyConfig reads it.
func (s *Server) reportProvisioned(ctx context.Context, provisioned map[string]*router.Target) {
	configs, err := s.reg.ListProvisionedConcurrency(ctx)
	if err != nil {
		return
	}
	for _, c := range configs {
		t := provisioned[c.FunctionName+":"+c.Qualifier]
		if t == nil {
			continue
		}
		ready, startErr := s.router.ProvisionedStatus(t.Key)
		ready = min(ready, c.Requested)
		status, reason := registry.ProvisionedInProgress, ""
		switch {
		case ready >= c.Requested:
			status = registry.ProvisionedReady
		case startErr != nil:
			status, reason = registry.ProvisionedFailed, failureReason(startErr)
		}
		if c.Allocated == ready && c.Available == ready && c.Status == status && c.StatusReason == reason {
			continue
		}
		if err := s.reg.SetProvisionedStatus(ctx, c.FunctionName, c.Qualifier, ready, ready, status, reason); err != nil {
			s.logger.Warn("reporting provisioned concurrency", "function", c.FunctionName, "qualifier", c.Qualifier, "err", err)
		}
	}
}

func failureReason(err error) string {
	var e *awserr.Error
	if errors.As(err, &e) {
		return "FUNCTION_ERROR_INIT_FAILURE: " + e.Message
	}
	return "FUNCTION_ERROR_INIT_FAILURE: " + err.Error()
}
