package controlplane

import (
	"context"
	"errors"
	"math"
	"sort"
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
	// provisioned maps each config ("function:qualifier") to what it keeps of
	// each version.
	provisioned := make(map[string][]provPart)
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
		case <-s.leaderCh:
			_ = guard.Run(s.logger, "provisioned concurrency", func() { s.syncProvisioned(ctx, provisioned) })
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

// provPart is what a Provisioned Concurrency config keeps of one version: all
// of it, or, for a weighted alias, each version's share.
type provPart struct {
	t *router.Target
	n int
	// qualifier is the config's; usageID names the part in the usage ledger: the
	// config ("function:qualifier") for its own version, "function:qualifier@N"
	// for a weighted alias's additional version N.
	qualifier, usageID string
}

// provShare is one version's share of a config's provisioned environments.
type provShare struct {
	version string
	n       int
}

// provisionedShares splits a config's requested environments among the versions
// its invocations run: all on version, or, for a weighted alias, each additional
// version its weight's share (rounded to the nearest environment) and the alias's
// own version the rest, so that each version has provisioned environments for
// its share of the traffic. Versions with no share are left out.
func provisionedShares(requested int, version string, weights map[string]float64) []provShare {
	rest := requested
	var extra []provShare
	vs := make([]string, 0, len(weights))
	for v := range weights {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	for _, v := range vs {
		n := min(int(math.Round(float64(requested)*weights[v])), rest)
		if n > 0 {
			extra = append(extra, provShare{v, n})
			rest -= n
		}
	}
	if rest == 0 {
		return extra
	}
	return append([]provShare{{version, rest}}, extra...)
}

// syncProvisioned makes the router keep what every Provisioned Concurrency
// config asks for of each version, and stop what no config asks for any more.
// Two configs that keep environments of one version (a version's own and a
// weighted alias's share of it) add up. In a cluster, the leader's router
// keeps them; the other nodes keep none.
func (s *Server) syncProvisioned(ctx context.Context, provisioned map[string][]provPart) {
	configs, err := s.reg.ListProvisionedConcurrency(ctx)
	if err != nil {
		s.logger.Warn("listing provisioned concurrency", "err", err)
		return
	}
	if !s.leading() {
		configs = nil
	}
	want := make(map[string][]provPart, len(configs))
	for _, c := range configs {
		id := c.FunctionName + ":" + c.Qualifier
		var parts []provPart
		for _, sh := range provisionedShares(c.Requested, c.Version, c.Weights) {
			v, err := s.reg.ResolveVersion(ctx, c.FunctionName, sh.version)
			if err != nil {
				parts = nil
				break
			}
			usageID := id
			if sh.version != c.Version {
				usageID += "@" + sh.version
			}
			parts = append(parts, provPart{t: targetFor(v, s.cfg), n: sh.n, qualifier: c.Qualifier, usageID: usageID})
		}
		if parts != nil {
			want[id] = parts
		}
	}
	sums := map[string]*provPart{}
	usage := map[string]bool{}
	for _, parts := range want {
		for _, p := range parts {
			if sums[p.t.Key] == nil {
				sums[p.t.Key] = &provPart{t: p.t}
			}
			sums[p.t.Key].n += p.n
			usage[p.usageID] = true
		}
	}
	now := s.clock.Now()
	for id, parts := range provisioned {
		for _, p := range parts {
			if sums[p.t.Key] == nil {
				s.router.SetProvisioned(p.t, 0) // a config gone, or an alias moved
			}
			if !usage[p.usageID] {
				s.provUsage.set(p.usageID, "", nil, 0, now)
			}
		}
		delete(provisioned, id)
	}
	for _, p := range sums {
		s.router.SetProvisioned(p.t, p.n)
	}
	for id, parts := range want {
		for _, p := range parts {
			s.provUsage.set(p.usageID, p.qualifier, p.t, p.n, now)
		}
		provisioned[id] = parts
	}
	s.reportProvisioned(ctx, provisioned)
}

// reportProvisioned writes each config's allocated count and status back to the
// registry, where GetProvisionedConcurrencyConfig reads it. The ready
// environments of a version are counted towards the configs that keep it in
// their order, each up to its share.
func (s *Server) reportProvisioned(ctx context.Context, provisioned map[string][]provPart) {
	if !s.leading() {
		return
	}
	configs, err := s.reg.ListProvisionedConcurrency(ctx)
	if err != nil {
		return
	}
	left := map[string]int{}
	failed := map[string]error{}
	for _, parts := range provisioned {
		for _, p := range parts {
			if _, seen := left[p.t.Key]; !seen {
				left[p.t.Key], failed[p.t.Key] = s.router.ProvisionedStatus(p.t.Key)
			}
		}
	}
	for _, c := range configs {
		parts := provisioned[c.FunctionName+":"+c.Qualifier]
		if parts == nil {
			continue
		}
		ready := 0
		var startErr error
		for _, p := range parts {
			got := min(p.n, left[p.t.Key])
			left[p.t.Key] -= got
			ready += got
			if got < p.n && failed[p.t.Key] != nil {
				startErr = failed[p.t.Key]
			}
		}
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

// leading reports whether this node leads: alone always.
func (s *Server) leading() bool { return s.managed == nil || s.managed.leading() }

// leaderChanged wakes the sync loop when this node gains or loses the lead.
func (s *Server) leaderChanged() {
	select {
	case s.leaderCh <- struct{}{}:
	default:
	}
}

func failureReason(err error) string {
	var e *awserr.Error
	if errors.As(err, &e) {
		return "FUNCTION_ERROR_INIT_FAILURE: " + e.Message
	}
	return "FUNCTION_ERROR_INIT_FAILURE: " + err.Error()
}
