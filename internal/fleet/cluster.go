package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// Cluster is the fleet of a cluster of machines: the instances of every
// host, as their records (kept by each host's Local) and their agents'
// heartbeats show them, and the hosts, as their own heartbeats show them.
//
// Every node of the cluster keeps one, to route invocations to any instance.
// The leader also acts through it: Launch places an instance on a host with
// room in the zone asked for and asks that host to run it; Terminate asks
// the instance's host to stop it; and once a host stops heartbeating, the
// leader's Cluster marks that host's instances lost, so that they are
// replaced elsewhere.
//
// Concurrency: cfg, nc, kv, log and clock are immutable after NewCluster; mu
// guards the rest.
type Cluster struct {
	cfg     ClusterConfig
	nc      *nats.Conn
	kv      jetstream.KeyValue
	history jetstream.KeyValue
	log     *slog.Logger
	clock   clock.Clock
	catalog *pricing.Catalog
	subs    []*nats.Subscription
	watcher jetstream.KeyWatcher
	stop    chan struct{}
	done    sync.WaitGroup

	mu       sync.Mutex
	records  map[string]record // by instance id, as the hosts wrote them
	beats    map[string]agent.Heartbeat
	beatAt   map[string]time.Time
	hosts    map[string]*HostStatus
	reserved map[string]reservation // launches asked for and not yet recorded, by instance id
	watchers map[chan Event]struct{}
	leader   bool
	closed   bool
}

// reservation holds a host's room for an instance between the launch and its record.
type reservation struct {
	host      string
	vcpu, mem int
	at        time.Time
}

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Bucket is the KV bucket of instance records (default "shoal_fleet").
	Bucket string
	// HistoryBucket keeps the life of every terminated instance (default
	// "shoal_fleet_history"), as LocalConfig.HistoryBucket.
	HistoryBucket string
	// Replicas of the buckets.
	Replicas int
	// HostTimeout marks a host lost, and its instances with it, when no
	// heartbeat of it came for this long (default 5 s).
	HostTimeout time.Duration
}

// ClusterDeps are a Cluster's dependencies.
type ClusterDeps struct {
	NATS   *nats.Conn
	Logger *slog.Logger
	Clock  clock.Clock
}

var _ Provider = (*Cluster)(nil)

// NewCluster starts following the records and heartbeats.
func NewCluster(cfg ClusterConfig, deps ClusterDeps) (*Cluster, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = "shoal_fleet"
	}
	if cfg.HistoryBucket == "" {
		cfg.HistoryBucket = "shoal_fleet_history"
	}
	if cfg.HostTimeout <= 0 {
		cfg.HostTimeout = 5 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	js, err := bus.NewJetStream(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := bus.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: cfg.Bucket, History: 1, Replicas: max(1, cfg.Replicas)})
	if err != nil {
		return nil, fmt.Errorf("fleet: instance records: %w", err)
	}
	history, err := openHistory(ctx, js, cfg.HistoryBucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, nc: deps.NATS, kv: kv, history: history, log: deps.Logger.With("component", "cluster-fleet"), clock: deps.Clock,
		catalog: pricing.Default(), stop: make(chan struct{}),
		records: map[string]record{}, beats: map[string]agent.Heartbeat{}, beatAt: map[string]time.Time{},
		hosts: map[string]*HostStatus{}, reserved: map[string]reservation{}, watchers: map[chan Event]struct{}{},
	}
	c.watcher, err = kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("fleet: watch instance records: %w", err)
	}
	for _, s := range []struct {
		subject string
		f       nats.MsgHandler
	}{{agent.HeartbeatWildcard, c.onAgentHeartbeat}, {HostHeartbeatWildcard, c.onHostHeartbeat}} {
		sub, err := deps.NATS.Subscribe(s.subject, s.f)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("fleet: subscribe %s: %w", s.subject, err)
		}
		c.subs = append(c.subs, sub)
	}
	c.done.Add(2)
	go c.watchRecords()
	go c.monitor()
	return c, nil
}

// SetLeader says whether this node leads: only the leader marks the
// instances of a lost host lost.
func (c *Cluster) SetLeader(leader bool) {
	c.mu.Lock()
	c.leader = leader
	c.mu.Unlock()
}

// Close stops following; watchers' channels are closed.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for ch := range c.watchers {
		close(ch)
	}
	c.watchers = nil
	c.mu.Unlock()
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
	if c.watcher != nil {
		_ = c.watcher.Stop()
	}
	close(c.stop)
	c.done.Wait()
	return nil
}

// watchRecords follows the instance records.
func (c *Cluster) watchRecords() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case e, ok := <-c.watcher.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the initial values are all in
			}
			c.mu.Lock()
			id := e.Key()
			before, had := c.instanceLocked(id)
			if e.Operation() != jetstream.KeyValuePut {
				delete(c.records, id)
				delete(c.beats, id)
				delete(c.beatAt, id)
			} else {
				var rec record
				if json.Unmarshal(e.Value(), &rec) == nil && rec.ID == id {
					rec.rev = e.Revision()
					c.records[id] = rec
					delete(c.reserved, id)
				}
			}
			after, has := c.instanceLocked(id)
			c.emitChangeLocked(before, had, after, has)
			c.mu.Unlock()
		}
	}
}

func (c *Cluster) onAgentHeartbeat(m *nats.Msg) {
	hb, ok := agent.ReadHeartbeat(m.Subject, m.Data)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before, had := c.instanceLocked(hb.ID)
	c.beats[hb.ID] = hb
	c.beatAt[hb.ID] = c.clock.Now()
	after, has := c.instanceLocked(hb.ID)
	if had && has && (before.State != after.State || envsChanged(before.Environments, after.Environments) ||
		before.InvokeAddr != after.InvokeAddr) {
		c.emitChangeLocked(before, had, after, has)
	}
}

func (c *Cluster) onHostHeartbeat(m *nats.Msg) {
	var st HostStatus
	if json.Unmarshal(m.Data, &st) != nil || st.Name == "" {
		return
	}
	st.LastHeartbeat = c.clock.Now()
	switch {
	case st.Left:
		st.State = HostLeft
	case st.Draining:
		st.State = HostDraining
	default:
		st.State = HostUp
	}
	c.mu.Lock()
	if old := c.hosts[st.Name]; old != nil && old.State != st.State {
		c.log.Info("host "+st.State, "host", st.Name, "was", old.State)
	}
	c.hosts[st.Name] = &st
	c.mu.Unlock()
}

// gone reports whether h serves no more: it left, or it is lost.
func (h *HostStatus) gone() bool { return h.State == HostLeft || h.State == HostLost }

// instanceLocked is instance id as the records and heartbeats show it.
func (c *Cluster) instanceLocked(id string) (Instance, bool) {
	rec, ok := c.records[id]
	if !ok {
		return Instance{}, false
	}
	in := rec.Instance.clone()
	hb, ok := c.beats[id]
	if !ok || in.State == StateLost || in.State == StateTerminated {
		return in, true
	}
	in.InvokeNetwork, in.InvokeAddr = hb.InvokeNetwork, hb.InvokeAddr
	in.CPUUtilization, in.MetricsAddr = hb.CPUUtilization, hb.MetricsAddr
	in.NetworkRxBytes, in.NetworkTxBytes, in.OpenFDs = hb.NetworkRxBytes, hb.NetworkTxBytes, hb.OpenFDs
	if hb.MemoryMB > 0 {
		in.MemoryUtilization = float64(hb.MemoryUsedMB) / float64(hb.MemoryMB)
	}
	in.Environments = append([]EnvStatus(nil), hb.Environments...)
	applyBuilds(&in, hb)
	in.LastHeartbeat = c.beatAt[id]
	switch {
	case hb.State == agent.StateDraining && in.State != StateDraining:
		in.State, in.StateReason = StateDraining, "the agent is draining"
	case hb.State == agent.StateRunning && in.State == StatePending:
		in.State, in.StateReason = StateRunning, ""
	}
	return in, true
}

func (c *Cluster) emitChangeLocked(before Instance, had bool, after Instance, has bool) {
	switch {
	case has:
		prev := ""
		if had {
			prev = before.State
		}
		c.emitLocked(Event{Instance: after, Previous: prev})
	case had:
		prev := before.State
		before.State = StateTerminated
		c.emitLocked(Event{Instance: before, Previous: prev})
	}
}

func (c *Cluster) emitLocked(ev Event) {
	for ch := range c.watchers {
		select {
		case ch <- ev:
		default:
			c.log.Warn("fleet watcher is behind; event dropped", "instance", ev.Instance.ID)
		}
	}
}

// monitor marks hosts lost when their heartbeats stop and, on the leader,
// their instances with them (and those a host left behind); it forgets a
// host that left once none of its instances is recorded.
func (c *Cluster) monitor() {
	defer c.done.Done()
	t := c.clock.NewTicker(max(c.cfg.HostTimeout/5, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C():
		}
		now := c.clock.Now()
		var lost []record
		c.mu.Lock()
		onHost := map[string]bool{}
		for _, rec := range c.records {
			onHost[rec.Host] = true
		}
		for name, h := range c.hosts {
			switch {
			case h.State == HostLeft && !onHost[name]:
				delete(c.hosts, name)
			case !h.gone() && now.Sub(h.LastHeartbeat) > c.cfg.HostTimeout:
				h.State = HostLost
				c.log.Warn("host lost", "host", name, "last_heartbeat", h.LastHeartbeat)
			}
		}
		for id, r := range c.reserved {
			if now.Sub(r.at) > time.Minute {
				delete(c.reserved, id)
			}
		}
		if c.leader {
			for _, rec := range c.records {
				h := c.hosts[rec.Host]
				if h == nil || rec.State == StateLost || rec.State == StateTerminated {
					continue
				}
				// A host that left deleted the records of the instances it
				// stopped; what remains a heartbeat's timeout later, it
				// left behind.
				if h.State == HostLost || (h.State == HostLeft && now.Sub(h.LastHeartbeat) > c.cfg.HostTimeout) {
					rec.StateReason = "its host " + rec.Host + " stopped heartbeating"
					if h.State == HostLeft {
						rec.StateReason = "its host " + rec.Host + " left without stopping it"
					}
					lost = append(lost, rec)
				}
			}
		}
		c.mu.Unlock()
		for _, rec := range lost {
			c.markLost(rec)
		}
	}
}

// markLost writes rec back as lost, only over the record as it was read
// (rec.rev): one that changed since (its host came back, or it was
// terminated and deleted) is looked at again on the monitor's next round,
// and a deleted one stays deleted.
func (c *Cluster) markLost(rec record) {
	rec.State = StateLost
	body, err := json.Marshal(rec)
	if err != nil {
		return
	}
	_, err = c.kv.Update(context.Background(), rec.ID, body, rec.rev)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		c.log.Debug("instance record changed before it was marked lost", "instance", rec.ID)
	case err != nil:
		c.log.Warn("instance not marked lost", "instance", rec.ID, "err", err)
	}
}

// Instances lists the instances that are not terminated, by id.
func (c *Cluster) Instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Instance, 0, len(c.records))
	for id := range c.records {
		if in, ok := c.instanceLocked(id); ok && in.State != StateTerminated {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Hosts lists the hosts heard of, by name.
func (c *Cluster) Hosts() []HostStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]HostStatus, 0, len(c.hosts))
	for _, h := range c.hosts {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b HostStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Zones lists the zones of the hosts that are up, sorted.
func (c *Cluster) Zones() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zones []string
	for _, h := range c.hosts {
		if h.State == HostUp && !slices.Contains(zones, h.Zone) {
			zones = append(zones, h.Zone)
		}
	}
	slices.Sort(zones)
	return zones
}

// Watch delivers changes until ctx ends or the Cluster closes.
func (c *Cluster) Watch(ctx context.Context) <-chan Event {
	return addWatcher(ctx, &c.mu, &c.watchers, c.stop)
}

// ErrNoRoom is returned by Launch when no host of the zone has room for the
// instance.
var ErrNoRoom = errors.New("fleet: no host has room")

// Launch places the instance on the host of its zone (or, without one, of
// the zone with the fewest instances of its capacity provider) with the
// most room, and asks that host to run it.
func (c *Cluster) Launch(ctx context.Context, spec InstanceSpec) error {
	it, err := c.catalog.InstanceType(spec.Type)
	if err != nil {
		return fmt.Errorf("fleet: launch: %w", err)
	}
	if spec.ID == "" {
		spec.ID = NewInstanceID()
	}
	mem := it.MemoryGiB * 1024
	c.mu.Lock()
	host := c.placeLocked(spec, it.VCPU, mem)
	if host == "" {
		c.mu.Unlock()
		return fmt.Errorf("%w for a %s (%d vCPU, %d MiB) in zone %q", ErrNoRoom, it.Name, it.VCPU, mem, spec.Zone)
	}
	c.reserved[spec.ID] = reservation{host: host, vcpu: it.VCPU, mem: mem, at: c.clock.Now()}
	zone := c.hosts[host].Zone
	c.mu.Unlock()
	spec.Zone = zone
	if err := c.ask(ctx, host, HostCommand{Op: "launch", Spec: spec}); err != nil {
		c.mu.Lock()
		delete(c.reserved, spec.ID)
		c.mu.Unlock()
		return err
	}
	c.log.Info("instance placed", "instance", spec.ID, "host", host, "zone", zone, "type", it.Name)
	return nil
}

// placeLocked picks the host for an instance of vcpu and mem.
func (c *Cluster) placeLocked(spec InstanceSpec, vcpu, mem int) string {
	used := map[string][2]int{}
	for id := range c.records {
		in, _ := c.instanceLocked(id)
		if in.State == StatePending || in.State == StateRunning || in.State == StateDraining {
			u := used[in.Host]
			used[in.Host] = [2]int{u[0] + in.VCPU, u[1] + in.MemoryMB}
		}
	}
	for _, r := range c.reserved {
		u := used[r.host]
		used[r.host] = [2]int{u[0] + r.vcpu, u[1] + r.mem}
	}
	zone := spec.Zone
	if zone == "" {
		perZone := map[string]int{}
		for _, rec := range c.records {
			if rec.CapacityProvider == spec.CapacityProvider && rec.State != StateLost {
				perZone[rec.Zone]++
			}
		}
		best := -1
		for _, h := range c.hosts {
			if h.State == HostUp && (best < 0 || perZone[h.Zone] < best || (perZone[h.Zone] == best && h.Zone < zone)) {
				zone, best = h.Zone, perZone[h.Zone]
			}
		}
	}
	bestHost, bestFree := "", -1
	for name, h := range c.hosts {
		if h.State != HostUp || h.Zone != zone {
			continue
		}
		u := used[name]
		// What the host's on-demand and provisioned environments take is
		// taken (their vCPUs rounded up: an instance's are whole).
		freeCPU := h.VCPU - u[0] - int(math.Ceil(h.ClassicVCPU))
		freeMem := h.MemoryMB - u[1] - h.ClassicMemoryMB
		if freeCPU < vcpu || freeMem < mem {
			continue
		}
		if freeCPU > bestFree || (freeCPU == bestFree && name < bestHost) {
			bestHost, bestFree = name, freeCPU
		}
	}
	return bestHost
}

// Terminate asks the instance's host to stop it; an instance whose host is
// lost is forgotten, its history saved here with the host's last heartbeat
// as its end (its host saves the others').
func (c *Cluster) Terminate(ctx context.Context, id string) error {
	c.mu.Lock()
	rec, ok := c.records[id]
	h := c.hosts[rec.Host]
	var lastSeen time.Time
	if h != nil {
		lastSeen = h.LastHeartbeat
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("fleet: terminate: no instance %s", id)
	}
	if h == nil || h.gone() {
		gone := rec.Instance.clone()
		gone.State, gone.TerminatedAt = StateTerminated, lastSeen
		if gone.TerminatedAt.IsZero() || gone.TerminatedAt.Before(gone.LaunchedAt) {
			gone.TerminatedAt = c.clock.Now()
		}
		if gone.StateReason == "" {
			gone.StateReason = "its host " + rec.Host + " was lost"
		}
		writeHistory(c.history, c.log, gone)
		if err := c.kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("fleet: terminate %s: %w", id, err)
		}
		return nil
	}
	return c.ask(ctx, rec.Host, HostCommand{Op: "terminate", ID: id})
}

// Terminated lists the instances terminated at or after since, as the
// history has them, by terminate time then id.
func (c *Cluster) Terminated(ctx context.Context, since time.Time) ([]Instance, error) {
	return readHistory(ctx, c.history, c.log, since)
}

func (c *Cluster) ask(ctx context.Context, host string, cmd HostCommand) error {
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, HostCommandSubject(host), body)
	if err != nil {
		return fmt.Errorf("fleet: host %s: %s: %w", host, cmd.Op, err)
	}
	var rep HostReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return fmt.Errorf("fleet: host %s: bad reply: %w", host, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("fleet: host %s: %s: %s", host, cmd.Op, rep.Error)
	}
	return nil
}
