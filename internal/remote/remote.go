// Package remote runs a cluster's on-demand and Provisioned Concurrency
// environments on any of its hosts, so that one machine's cores are not the
// ceiling of those compute types (docs/architecture.md, "On-demand and
// provisioned environments on hosts").
//
// On a host, Serve starts a classic agent (internal/agent, Config.Classic)
// in the host's own process: it serves the environments any front places
// there, over the invoke wire (TLS), one invocation at a time each, and
// meters their invocations as on-demand or provisioned.
//
// On a front, a Placer is the router's Starter: it places each new
// environment (Place) in this process or on a host's classic agent, starts
// it there, and hands the router an environment whose invocations cross the
// wire, whose Done closes when it or its agent is gone, and whose Close
// stops it. It keeps the environments it started (agents stop the ones no
// front keeps), and it is the router's Shared: the provisioned environments
// the leader keeps on the hosts serve the invocations of every front.
//
// The package decides where environments go and tracks them; admission,
// pools, keep-alive and Provisioned Concurrency counts stay the router's.
package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/wire"
)

// Config configures a Placer.
type Config struct {
	// Self is the name of this machine's host ("" when this node is no
	// host: it then runs environments itself only when no host serves any).
	Self string
	// Heartbeat is the agents' heartbeat interval (default 1 s); an agent
	// silent for five of them is gone, and its environments with it.
	Heartbeat time.Duration
	// KeepInterval is how often the front keeps its environments on their
	// agents (default 5 s; well within agent.Config.KeepTimeout).
	KeepInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.KeepInterval <= 0 {
		c.KeepInterval = 5 * time.Second
	}
}

// Deps are a Placer's dependencies.
type Deps struct {
	NATS *nats.Conn
	// Pool holds the invoke connections to agents (over TLS across machines).
	Pool *fleet.Pool
	// Hosts lists the cluster's hosts (fleet.Cluster.Hosts).
	Hosts func() []fleet.HostStatus
	// Start starts an environment in this process (env.Start, code unpacked here).
	Start router.Starter
	// Room is the room this machine has left (fleet.Host.Free); nil when
	// this node is no host.
	Room func() (vcpu float64, memoryMB int)
	// Usage records the invocations answered by a failed init on another
	// machine; nil without a ledger.
	Usage  env.UsageSink
	Logger *slog.Logger
	Clock  clock.Clock
}

// Placer places and tracks a front's environments on the cluster's hosts.
//
// Concurrency: cfg, deps, agents, log, clock and shared are immutable after
// New; sharedKeys and view are replaced atomically, under updMu; mu guards
// the rest.
type Placer struct {
	cfg    Config
	deps   Deps
	agents *agent.Client
	log    *slog.Logger
	clock  clock.Clock
	sub    *nats.Subscription
	// shared routes invocations to the provisioned environments on agents,
	// as the Managed Instances router does to an instance's environments.
	shared     *router.Managed
	sharedKeys atomic.Pointer[map[string]bool] // route keys with a ready provisioned environment
	// view is what Agents reports: the agents shared routes to, as of the
	// last update of the routes (so that what it shows can be invoked).
	view atomic.Pointer[[]AgentStatus]

	stop chan struct{}
	wg   sync.WaitGroup

	// updMu serialises updates of the shared routes, so that a later
	// update is never overwritten by an earlier one. Lock order: updMu, mu.
	updMu sync.Mutex

	mu      sync.Mutex
	dir     map[string]*agentState    // classic agents, by id
	envs    map[string]*remoteEnv     // this front's environments on agents, by id
	pending map[string]map[*pend]bool // placements on each host not yet in its heartbeat
	local   fleet.ClassicUse          // this process's environments
	watched map[string]*wire.Conn     // agents' connections being watched, by agent id
	closed  bool
}

// agentState is a classic agent as its heartbeats show it.
type agentState struct {
	hb agent.Heartbeat
	at time.Time // when its last heartbeat came
	// brokenAt is when its invoke connection failed (zero when it has
	// not): nothing is placed there until a heartbeat comes well after.
	brokenAt time.Time
}

// provisionedOf counts the agent's provisioned environments of the
// configuration key that are starting or ready.
func (a *agentState) provisionedOf(key string) int {
	n := 0
	for _, es := range a.hb.Environments {
		if es.InitType == env.InitProvisioned && es.Revision == key &&
			(es.State == agent.EnvReady || es.State == agent.EnvInitializing) {
			n++
		}
	}
	return n
}

// pend is one placement whose environment its host's heartbeats may not
// count yet.
type pend struct {
	need   Need
	doneAt time.Time // when its start returned; zero while it runs
}

var _ router.Shared = (*Placer)(nil)

// New starts following the classic agents' heartbeats and keeping the
// front's environments.
func New(cfg Config, deps Deps) (*Placer, error) {
	cfg.setDefaults()
	if deps.NATS == nil || deps.Pool == nil || deps.Hosts == nil || deps.Start == nil {
		return nil, errors.New("remote: NATS, a pool, the hosts and a local starter are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	p := &Placer{
		cfg: cfg, deps: deps, agents: agent.NewClient(deps.NATS), log: deps.Logger.With("component", "remote"),
		clock: deps.Clock, shared: router.NewManaged(deps.Pool), stop: make(chan struct{}),
		dir: map[string]*agentState{}, envs: map[string]*remoteEnv{}, pending: map[string]map[*pend]bool{},
		watched: map[string]*wire.Conn{},
	}
	p.sharedKeys.Store(&map[string]bool{})
	p.view.Store(&[]AgentStatus{})
	var err error
	p.sub, err = deps.NATS.Subscribe(agent.HeartbeatWildcard, p.onHeartbeat)
	if err != nil {
		return nil, fmt.Errorf("remote: subscribe heartbeats: %w", err)
	}
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

// Close stops following and keeping. The environments stay until the router
// closes them (or, on their agents, until nobody keeps them).
func (p *Placer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.sub.Unsubscribe()
	close(p.stop)
	p.wg.Wait()
}

// LocalUse is what the environments this process runs take of its machine.
func (p *Placer) LocalUse() fleet.ClassicUse {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.local
}

// onHeartbeat follows a classic agent.
func (p *Placer) onHeartbeat(m *nats.Msg) {
	if !strings.HasPrefix(m.Subject, agent.HeartbeatSubject(AgentID(""))) {
		return // an instance's agent: not decoded
	}
	hb, ok := agent.ReadHeartbeat(m.Subject, m.Data)
	if !ok || !hb.Classic {
		return
	}
	_ = guard.Run(p.log, "a classic agent's heartbeat", func() { p.heard(hb) })
}

func (p *Placer) heard(hb agent.Heartbeat) {
	now := p.clock.Now()
	p.mu.Lock()
	prev := p.dir[hb.ID]
	if prev != nil && (!prev.hb.StartedAt.Equal(hb.StartedAt) || prev.hb.Pid != hb.Pid) {
		// Another process of the agent: the environments of the last are gone.
		p.agentGoneLocked(hb.ID, "its agent restarted")
		prev = nil
	}
	if prev != nil && hb.Seq <= prev.hb.Seq {
		p.mu.Unlock()
		return // out of order
	}
	if hb.State == agent.StateTerminated {
		p.agentGoneLocked(hb.ID, "its agent stopped")
		delete(p.dir, hb.ID)
		p.mu.Unlock()
		p.updateShared()
		return
	}
	st := &agentState{hb: hb, at: now}
	if prev != nil && !prev.brokenAt.IsZero() && now.Sub(prev.brokenAt) < 2*p.cfg.Heartbeat {
		st.brokenAt = prev.brokenAt
	}
	p.dir[hb.ID] = st
	for _, es := range hb.Environments {
		if es.State == agent.EnvFailed || es.State == agent.EnvDraining {
			if e := p.envs[es.ID]; e != nil && e.agentID == hb.ID {
				e.endLocked("its environment " + es.State)
			}
		}
	}
	p.mu.Unlock()
	p.updateShared()
}

// agentGoneLocked ends every environment of the front on agent id. p.mu is held.
func (p *Placer) agentGoneLocked(id, why string) {
	for _, e := range p.envs {
		if e.agentID == id {
			e.endLocked(why)
		}
	}
}

// updateShared routes invocations to the ready provisioned environments of
// the agents that are alive.
func (p *Placer) updateShared() {
	p.updMu.Lock()
	defer p.updMu.Unlock()
	p.mu.Lock()
	instances := make([]fleet.Instance, 0, len(p.dir))
	keys := map[string]bool{}
	view := make([]AgentStatus, 0, len(p.dir))
	for id, a := range p.dir {
		if a.hb.State != agent.StateRunning || !a.brokenAt.IsZero() {
			continue
		}
		view = append(view, AgentStatus{Heartbeat: a.hb, At: a.at})
		in := fleet.Instance{ID: id, Host: a.hb.Host, Zone: a.hb.Zone, State: fleet.StateRunning,
			InvokeNetwork: a.hb.InvokeNetwork, InvokeAddr: a.hb.InvokeAddr}
		for _, es := range a.hb.Environments {
			if es.InitType == env.InitProvisioned && es.State == agent.EnvReady {
				in.Environments = append(in.Environments, es)
				keys[router.RouteKey(es.Function, es.Version, es.Revision)] = true
			}
		}
		instances = append(instances, in)
	}
	p.mu.Unlock()
	p.shared.Update(instances)
	p.sharedKeys.Store(&keys)
	slices.SortFunc(view, func(a, b AgentStatus) int { return strings.Compare(a.Heartbeat.ID, b.Heartbeat.ID) })
	p.view.Store(&view)
}

// loop keeps the front's environments on their agents, and ends those of
// agents that went silent or whose host was lost.
func (p *Placer) loop() {
	defer p.wg.Done()
	check := p.clock.NewTicker(p.cfg.Heartbeat)
	defer check.Stop()
	keep := p.clock.NewTicker(p.cfg.KeepInterval)
	defer keep.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-check.C():
			_ = guard.Run(p.log, "checking the classic agents", p.checkAgents)
		case <-keep.C():
			_ = guard.Run(p.log, "keeping environments", p.keepAll)
		}
	}
}

// checkAgents forgets the agents that stopped heartbeating or whose host is lost.
func (p *Placer) checkAgents() {
	lost := map[string]bool{}
	for _, h := range p.deps.Hosts() {
		if h.State == fleet.HostLost {
			lost[h.Name] = true
		}
	}
	now := p.clock.Now()
	changed := false
	p.mu.Lock()
	for id, a := range p.dir {
		switch {
		case now.Sub(a.at) > 5*p.cfg.Heartbeat:
			p.agentGoneLocked(id, "its agent stopped heartbeating")
		case lost[a.hb.Host]:
			p.agentGoneLocked(id, "its host "+a.hb.Host+" was lost")
		default:
			continue
		}
		delete(p.dir, id)
		changed = true
	}
	p.mu.Unlock()
	if changed {
		p.updateShared()
	}
}

// keepAll tells each agent which of its environments this front still
// wants; those it no longer serves end.
func (p *Placer) keepAll() {
	byAgent := map[string][]string{}
	p.mu.Lock()
	for id, e := range p.envs {
		byAgent[e.agentID] = append(byAgent[e.agentID], id)
	}
	p.mu.Unlock()
	for agentID, ids := range byAgent {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		gone, err := p.agents.Keep(ctx, agentID, ids)
		cancel()
		p.mu.Lock()
		switch {
		case errors.Is(err, agent.ErrNoAgent):
			p.agentGoneLocked(agentID, "its agent does not answer")
		case err != nil:
			p.log.Warn("environments not kept", "agent", agentID, "err", err)
		}
		for _, id := range gone {
			if e := p.envs[id]; e != nil {
				e.endLocked("its agent no longer serves it")
			}
		}
		p.mu.Unlock()
	}
}

// broken notes that the invoke connection to agent id failed: nothing is
// placed there for a while, and the front's environments there end.
func (p *Placer) broken(id string, err error) {
	p.mu.Lock()
	if a := p.dir[id]; a != nil {
		a.brokenAt = p.clock.Now()
	}
	p.agentGoneLocked(id, "its agent cannot be reached: "+err.Error())
	p.mu.Unlock()
	p.updateShared()
}

// watch ends the front's environments on agent id as soon as its invoke
// connection breaks (its host went away), without waiting for heartbeats.
func (p *Placer) watch(id string, c *wire.Conn) {
	p.mu.Lock()
	if p.closed || p.watched[id] == c {
		p.mu.Unlock()
		return
	}
	p.watched[id] = c
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		select {
		case <-c.Done():
		case <-p.stop:
			return
		}
		p.mu.Lock()
		if p.watched[id] == c {
			delete(p.watched, id)
		}
		p.mu.Unlock()
		p.broken(id, errors.New("its invoke connection broke"))
	}()
}

// instance is agent id as the pool dials it, if it is alive.
func (p *Placer) instance(id string) (fleet.Instance, agent.Heartbeat, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.dir[id]
	if a == nil {
		return fleet.Instance{}, agent.Heartbeat{}, false
	}
	return fleet.Instance{ID: id, Host: a.hb.Host, State: fleet.StateRunning,
		InvokeNetwork: a.hb.InvokeNetwork, InvokeAddr: a.hb.InvokeAddr}, a.hb, true
}

// AgentStatus is a classic agent as the front last heard of it.
type AgentStatus struct {
	Heartbeat agent.Heartbeat
	At        time.Time
}

// Agents lists the classic agents that are alive and reachable, by id, as
// the front last routed to them.
func (p *Placer) Agents() []AgentStatus { return *p.view.Load() }

// Invoke runs inv on a free provisioned environment of t on any host
// (router.Shared).
func (p *Placer) Invoke(ctx context.Context, t *router.Target, inv env.Invocation) (env.Result, bool, error) {
	key := router.RouteKey(t.Function, t.Version, t.Key)
	if !(*p.sharedKeys.Load())[key] {
		return env.Result{}, false, nil
	}
	res, err := p.shared.Invoke(ctx, key, inv)
	if err != nil && router.ThrottleCause(err) != "" {
		return env.Result{}, false, nil // none free: on demand
	}
	return res, true, err
}

// Shares reports that e is a provisioned environment on an agent, which
// every front invokes through Invoke (router.Shared).
func (p *Placer) Shares(e router.Env) bool {
	re, ok := e.(*remoteEnv)
	return ok && re.need.Provisioned
}

// Start places an environment of t and starts it there (a router.Starter).
func (p *Placer) Start(ctx context.Context, t *router.Target, spec env.Spec) (router.Env, error) {
	n := needOf(&spec)
	n.Key = t.Key
	tried := map[string]bool{}
	for {
		opt, ok := p.choose(n, tried)
		if !ok {
			return nil, errors.New("remote: no host can take the environment")
		}
		if opt.Agent == "" {
			return p.startLocal(ctx, t, spec, n)
		}
		e, err := p.startOn(ctx, opt, t, spec, n)
		var ie *env.InitError
		if err == nil || errors.As(err, &ie) || ctx.Err() != nil || len(tried) >= 2 {
			return e, err
		}
		// The agent failed to start it (it is going away, or cannot fetch
		// the code): another host may.
		p.log.Warn("environment not started on a host; trying another", "host", opt.Host, "function", t.Function, "err", err)
		tried[opt.Agent] = true
	}
}

// needOf is what an environment of spec takes.
func needOf(spec *env.Spec) Need {
	vcpu := spec.CPUs
	if vcpu <= 0 {
		vcpu = sandbox.CPUsForMemory(spec.MemoryMB)
	}
	return Need{VCPU: vcpu, MemoryMB: spec.MemoryMB, Provisioned: spec.InitType == env.InitProvisioned}
}

// choose gathers the options and places an environment of n, holding its
// room on the chosen host until the host's heartbeats count it.
func (p *Placer) choose(n Need, tried map[string]bool) (Option, bool) {
	hosts := map[string]fleet.HostStatus{}
	for _, h := range p.deps.Hosts() {
		hosts[h.Name] = h
	}
	var ownVCPU float64
	var ownMem int
	if p.deps.Room != nil {
		ownVCPU, ownMem = p.deps.Room()
	}
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var opts []Option
	for id, a := range p.dir {
		h, ok := hosts[a.hb.Host]
		switch {
		case tried[id] || !a.brokenAt.IsZero() || a.hb.State != agent.StateRunning || a.hb.InvokeAddr == "":
			continue
		case a.hb.Host == p.cfg.Self && p.cfg.Self != "":
			if !n.Provisioned {
				continue // this machine: in this process
			}
			opts = append(opts, Option{Agent: id, Host: a.hb.Host, FreeVCPU: ownVCPU, FreeMemoryMB: ownMem})
		case !ok || h.State != fleet.HostUp:
			continue
		default:
			opts = append(opts, Option{Agent: id, Host: a.hb.Host,
				FreeVCPU:     float64(h.VCPU-h.UsedVCPU) - h.ClassicVCPU,
				FreeMemoryMB: h.MemoryMB - h.UsedMemoryMB - h.ClassicMemoryMB})
		}
	}
	if p.deps.Room != nil || len(opts) == 0 {
		opts = append(opts, Option{Host: p.cfg.Self, FreeVCPU: ownVCPU, FreeMemoryMB: ownMem})
	}
	// A placement counts against its host until a heartbeat of the host
	// that counts it came (this machine's Room counts it at once).
	for host, pds := range p.pending {
		hb := hosts[host].LastHeartbeat
		for pd := range pds {
			if !pd.doneAt.IsZero() && (host == p.cfg.Self || hb.After(pd.doneAt.Add(p.cfg.Heartbeat)) ||
				now.Sub(pd.doneAt) > time.Minute) {
				delete(pds, pd)
			}
		}
		if len(pds) == 0 {
			delete(p.pending, host)
		}
	}
	for i := range opts {
		o := &opts[i]
		if o.Agent == "" {
			continue
		}
		for pd := range p.pending[o.Host] {
			o.FreeVCPU -= pd.need.VCPU
			o.FreeMemoryMB -= pd.need.MemoryMB
			if n.Provisioned && pd.need.Provisioned && pd.need.Key == n.Key {
				o.Same++
			}
		}
		if n.Provisioned {
			o.Same += p.dir[o.Agent].provisionedOf(n.Key)
		}
	}
	slices.SortFunc(opts, func(a, b Option) int { return strings.Compare(a.Agent, b.Agent) })
	i := Place(opts, n)
	if i < 0 {
		return Option{}, false
	}
	return opts[i], true
}

// startLocal starts an environment in this process.
func (p *Placer) startLocal(ctx context.Context, t *router.Target, spec env.Spec, n Need) (router.Env, error) {
	p.mu.Lock()
	p.local.VCPU += n.VCPU
	p.local.MemoryMB += n.MemoryMB
	p.local.Environments++
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		p.local.VCPU -= n.VCPU
		p.local.MemoryMB -= n.MemoryMB
		p.local.Environments--
		p.mu.Unlock()
	}
	e, err := p.deps.Start(ctx, t, spec)
	if err != nil {
		release()
		return nil, err
	}
	go func() {
		<-e.Done()
		release()
	}()
	return e, nil
}

// startOn starts an environment on a host's classic agent.
func (p *Placer) startOn(ctx context.Context, opt Option, t *router.Target, spec env.Spec, n Need) (router.Env, error) {
	pd := &pend{need: n}
	p.mu.Lock()
	if p.pending[opt.Host] == nil {
		p.pending[opt.Host] = map[*pend]bool{}
	}
	p.pending[opt.Host][pd] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		pd.doneAt = p.clock.Now()
		p.mu.Unlock()
	}()
	in, hb, ok := p.instance(opt.Agent)
	if !ok {
		return nil, fmt.Errorf("remote: agent %s is gone", opt.Agent)
	}
	// The connection is there before the first invocation, and its
	// breaking ends the environment at once.
	conn, err := p.deps.Pool.Conn(ctx, in)
	if err != nil {
		p.broken(opt.Agent, err)
		return nil, err
	}
	p.watch(opt.Agent, conn)
	id := newEnvID(n)
	started := p.clock.Now()
	_, err = p.agents.StartEnvironment(ctx, opt.Agent, agent.StartEnv{EnvID: id, CodeSha256: t.CodeSha256,
		Revision: t.Key, Spec: spec})
	var ie *env.InitError
	if errors.As(err, &ie) {
		if !n.Provisioned && p.deps.Usage != nil {
			// The invocation it answers is metered here, as a failed
			// init in this process would be.
			ie.Recording(spec, p.deps.Usage, p.clock.Now().Add(-ie.InitDuration))
		}
		return nil, ie
	}
	if err != nil {
		return nil, err
	}
	e := &remoteEnv{p: p, id: id, agentID: opt.Agent, host: opt.Host, incarnation: hb.StartedAt, need: n,
		done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = e.stopOnAgent(context.Background())
		return nil, errors.New("remote: closed")
	}
	p.envs[id] = e
	// An agent that went away meanwhile took the environment with it.
	if a := p.dir[opt.Agent]; a == nil || !a.hb.StartedAt.Equal(hb.StartedAt) {
		e.endLocked("its agent went away while it started")
	}
	p.mu.Unlock()
	p.log.Debug("environment started on a host", "function", t.Function, "version", t.Version, "host", opt.Host,
		"env", id, "init_type", spec.InitType, "took", p.clock.Now().Sub(started))
	return e, nil
}

// newEnvID names an environment on an agent: od- or pc-, and 24 hex digits.
func newEnvID(n Need) string {
	if n.Provisioned {
		return "pc-" + randid.Hex(12)
	}
	return "od-" + randid.Hex(12)
}
