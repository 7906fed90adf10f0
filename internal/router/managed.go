package router

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/wire"
)

// ManagedInvoker gives the invoke connection of an instance's agent; *fleet.Pool
// implements it.
type ManagedInvoker interface {
	Conn(ctx context.Context, in fleet.Instance) (*wire.Conn, error)
}

var _ ManagedInvoker = (*fleet.Pool)(nil)

// Managed routes invocations of Managed Instances versions to their environments
// on the fleet. It picks an environment with a free slot — the least outstanding
// first, starting from a rotating position so that zones share the load — and
// never waits behind a busy one: when an agent refuses, it tries the next
// environment at once, and when none can take the invocation the caller gets a
// 429 at once. It never scales: the scaler loop adds environments from the
// throttles it reads here (TakeStats).
type Managed struct {
	invoker ManagedInvoker

	mu     sync.RWMutex             // guards routes, envs and counts (the maps, not the counters)
	routes map[string]*managedRoute // by route key "function:version@revision" (RouteKey)
	envs   map[string]*managedEnv   // by environment id, to keep counters across updates
	counts map[string]int           // routable environments by version key, every revision
	stats  map[string]*ManagedStats // by version key "function:version"
}

type managedRoute struct {
	envs []*managedEnv
	next atomic.Uint32
}

type managedEnv struct {
	id string
	// instance and slots are replaced by Update while invocations read them.
	instance atomic.Pointer[fleet.Instance]
	slots    atomic.Int32
	// outstanding counts invocations this router has in flight on the environment.
	outstanding atomic.Int32
	// broken is set when the instance could not be reached; cleared by the next update.
	broken atomic.Bool
}

// ManagedStats counts what happened to one version's invocations since the
// scaler last took them. Fields are updated atomically.
type ManagedStats struct {
	Invocations atomic.Int64
	// BusyNanos sums the durations of served invocations.
	BusyNanos atomic.Int64
	// Throttles counts invocations answered 429, by cause.
	ThrottlesConcurrency, ThrottlesCPU, ThrottlesMemory atomic.Int64
}

// NewManaged returns a router for Managed Instances that sends invocations through inv.
func NewManaged(inv ManagedInvoker) *Managed {
	return &Managed{invoker: inv, routes: map[string]*managedRoute{}, envs: map[string]*managedEnv{},
		counts: map[string]int{}, stats: map[string]*ManagedStats{}}
}

// RouteKey names the environments of one revision of a version:
// "function:version@revision", or "function:version" without a revision.
// Republishing $LATEST.PUBLISHED in place changes its revision, and an
// invocation only goes to environments of the revision it resolved.
func RouteKey(function, version, revision string) string {
	if revision == "" {
		return function + ":" + version
	}
	return function + ":" + version + "@" + revision
}

// Update replaces the routing table with the ready environments of the running
// instances. Counters of environments that remain are kept.
func (m *Managed) Update(instances []fleet.Instance) {
	routes := map[string]*managedRoute{}
	envs := map[string]*managedEnv{}
	counts := map[string]int{}
	m.mu.RLock()
	for _, in := range instances {
		if in.State != fleet.StateRunning || in.InvokeAddr == "" {
			continue
		}
		for _, es := range in.Environments {
			if es.State != "ready" {
				continue
			}
			e := m.envs[es.ID]
			if e == nil || e.instance.Load().ID != in.ID {
				e = &managedEnv{id: es.ID}
			}
			inst := in
			e.instance.Store(&inst)
			e.slots.Store(int32(max(es.Slots, 1)))
			e.broken.Store(false)
			envs[es.ID] = e
			counts[es.Function+":"+es.Version]++
			key := RouteKey(es.Function, es.Version, es.Revision)
			rt := routes[key]
			if rt == nil {
				rt = &managedRoute{}
				if old := m.routes[key]; old != nil {
					rt.next.Store(old.next.Load())
				}
				routes[key] = rt
			}
			rt.envs = append(rt.envs, e)
		}
	}
	m.mu.RUnlock()
	m.mu.Lock()
	m.routes, m.envs, m.counts = routes, envs, counts
	m.mu.Unlock()
}

// Environments reports how many environments of the version are routable.
func (m *Managed) Environments(versionKey string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.counts[versionKey]
}

// Stats returns the live counters of a version.
func (m *Managed) Stats(versionKey string) *ManagedStats {
	m.mu.RLock()
	s := m.stats[versionKey]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.stats[versionKey]; s == nil {
		s = &ManagedStats{}
		m.stats[versionKey] = s
	}
	return s
}

// Invoke runs inv on an environment of the route with key routeKey (RouteKey);
// its counters go to the version's.
func (m *Managed) Invoke(ctx context.Context, routeKey string, inv env.Invocation) (env.Result, error) {
	res, _, err := m.InvokeEither(ctx, routeKey, "", inv)
	return res, err
}

// InvokeEither runs inv on an environment of route routeKey or, when that
// route has none that could take it — none is routable, its instances
// cannot be reached, its environments are draining — on one of route
// alternate (a rollout's other side; "" for none). It reports whether the
// alternate ran it. Environments that are busy (all slots taken, their
// instance's CPU or memory above its threshold) do not send it to the
// alternate: the caller gets a 429 at once, counted against routeKey's
// version.
func (m *Managed) InvokeEither(ctx context.Context, routeKey, alternate string, inv env.Invocation) (env.Result, bool, error) {
	versionKey, _, _ := strings.Cut(routeKey, "@")
	stats := m.Stats(versionKey)
	res, sent, cause, err := m.try(ctx, routeKey, stats, inv)
	if sent || err != nil {
		return res, false, err
	}
	if alternate != "" && cause == "" {
		altVersion, _, _ := strings.Cut(alternate, "@")
		res, sent, _, err = m.try(ctx, alternate, m.Stats(altVersion), inv)
		if sent || err != nil {
			return res, true, err
		}
	}
	switch cause {
	case wire.ReasonCPU:
		stats.ThrottlesCPU.Add(1)
	case wire.ReasonMemory:
		stats.ThrottlesMemory.Add(1)
	default:
		stats.ThrottlesConcurrency.Add(1)
		cause = wire.ReasonConcurrency
	}
	throttle := awserr.Throttled(awserr.ReasonConcurrentInvocationLimitExceeded, "Rate Exceeded.")
	throttle.Err = throttleCause(cause)
	return env.Result{}, false, throttle
}

// try offers inv to the environments of one route. It reports whether one
// took it (then res and err are its answer) and, when none did, why the last
// busy one refused (wire.ReasonConcurrency, ReasonCPU or ReasonMemory; ""
// when none of them was busy: none routable, unreachable or draining).
func (m *Managed) try(ctx context.Context, routeKey string, stats *ManagedStats, inv env.Invocation) (res env.Result, sent bool, cause string, err error) {
	m.mu.RLock()
	rt := m.routes[routeKey]
	m.mu.RUnlock()
	if rt == nil || len(rt.envs) == 0 {
		return env.Result{}, false, "", nil
	}
	n := len(rt.envs)
	start := int(rt.next.Add(1)) % n
	tried := make([]bool, n)
	for range n {
		i := pick(rt.envs, start, tried)
		if i < 0 {
			if cause == "" && anyFull(rt.envs, tried) {
				cause = wire.ReasonConcurrency
			}
			break
		}
		tried[i] = true
		e := rt.envs[i]
		if e.outstanding.Add(1) > e.slots.Load() {
			e.outstanding.Add(-1)
			if cause == "" {
				cause = wire.ReasonConcurrency
			}
			continue
		}
		conn, err := m.invoker.Conn(ctx, *e.instance.Load())
		if err == nil && isClosed(conn) {
			err = errors.New("connection closed")
		}
		if err != nil {
			// The instance cannot be reached: nothing was sent, try the others.
			e.outstanding.Add(-1)
			if ctx.Err() != nil {
				return env.Result{}, false, "", ctx.Err()
			}
			e.broken.Store(true)
			continue
		}
		t0 := time.Now()
		res, err := conn.Invoke(ctx, e.id, inv)
		e.outstanding.Add(-1)
		if err == nil {
			stats.Invocations.Add(1)
			stats.BusyNanos.Add(int64(time.Since(t0)))
			return res, true, "", nil
		}
		if r, ok := wire.AsRefused(err); ok {
			switch r.Reason {
			case wire.ReasonCPU, wire.ReasonMemory:
				cause = r.Reason
			case wire.ReasonConcurrency:
				if cause == "" {
					cause = r.Reason
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return env.Result{}, false, "", ctx.Err()
		}
		// The invocation was sent and its instance went away, or the agent failed.
		return env.Result{}, false, "", awserr.Service(err, "The function could not be invoked: its instance failed.")
	}
	return env.Result{}, false, cause, nil
}

// anyFull reports whether an untried, reachable environment has every slot taken.
func anyFull(envs []*managedEnv, tried []bool) bool {
	for i, e := range envs {
		if !tried[i] && !e.broken.Load() && e.outstanding.Load() >= e.slots.Load() {
			return true
		}
	}
	return false
}

// throttleCause is the cause kept in a Managed Instances throttle: the
// wire.Reason… of the limit that refused it. Clients never see it; Lambda
// reports it only in its throttle metrics.
type throttleCause string

func (c throttleCause) Error() string { return "throttled by " + string(c) }

// ThrottleCause reports why a Managed Instances invocation was throttled:
// wire.ReasonCPU, wire.ReasonMemory or wire.ReasonConcurrency; "" when err
// carries no cause.
func ThrottleCause(err error) string {
	var c throttleCause
	if errors.As(err, &c) {
		return string(c)
	}
	return ""
}

// pick returns the untried, reachable environment with the fewest outstanding
// invocations per slot, scanning from start so that ties rotate; -1 if none has
// a free slot.
func pick(envs []*managedEnv, start int, tried []bool) int {
	best, bestLoad := -1, 2.0
	n := len(envs)
	for k := range n {
		i := (start + k) % n
		e := envs[i]
		if tried[i] || e.broken.Load() {
			continue
		}
		out, slots := e.outstanding.Load(), e.slots.Load()
		if out >= slots {
			continue
		}
		if load := float64(out) / float64(slots); load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best
}

func isClosed(c *wire.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}
