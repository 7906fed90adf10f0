package fleet

// Lifecycle of a local instance:
//
//	Launch ──► pending ──(LaunchDelay) spawn, first heartbeat──► running ──Terminate──► draining
//	              │                                                 │                       │
//	              │ no heartbeat within BootTimeout,                │ no heartbeat within    │ agent drained
//	              │ spawn failed, process died                      │ HeartbeatTimeout,      │ and exited
//	              ▼                                                 ▼ process died           ▼
//	             lost ◄─────────────────────────────────────────────┘                   terminated
//	              │                                                                   (record deleted)
//	              └──Terminate──► terminated
//
// A lost instance's processes are killed at once and its record kept until
// Terminate, so the control plane sees the loss and replaces the instance.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/pki"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/scratch"
)

// LocalConfig configures the local provider.
type LocalConfig struct {
	// NATSURL is the bus address the agents connect to. Required.
	NATSURL string
	// External, when set, says the bus is a NATS someone else runs: agents
	// connect to it with its user credentials and authorities.
	External *bus.External
	// Binary is the shoal binary (default os.Executable()); Args come before
	// the agent's flags (default ["agent"]).
	Binary string
	Args   []string
	// WorkDir holds a directory per instance (its work dir, socket and log). Required.
	WorkDir string
	// Zones instances are spread over (default us-east-1a, us-east-1b, us-east-1c).
	Zones []string
	// LaunchDelay emulates a real machine's boot: the agent starts this long
	// after Launch.
	LaunchDelay time.Duration
	// Heartbeat is the agents' heartbeat interval (default 1 s).
	Heartbeat time.Duration
	// HeartbeatTimeout marks an instance lost when no heartbeat came for this
	// long (default 5 × Heartbeat).
	HeartbeatTimeout time.Duration
	// BootTimeout marks an instance lost when its first heartbeat does not
	// come within this long after its spawn (default 60 s).
	BootTimeout time.Duration
	// Bucket is the JetStream KV bucket of instance records (default "shoal_fleet").
	Bucket string
	// HistoryBucket keeps the life of every terminated instance (default
	// "shoal_fleet_history"; see history.go).
	HistoryBucket string
	// Replicas of the bucket (1 on one machine, 3 in a cluster).
	Replicas int
	// NoConfine runs agents without a cgroup of their type's size.
	NoConfine bool
	// Env is added to the agents' environment.
	Env []string
	// UsageCheckpoint is how often open instance-time segments are recorded
	// (default 5 s). The next control plane records what a dying one left
	// open (see checkpointUsage).
	UsageCheckpoint time.Duration
	// NoMeter starts agents without the usage ledger.
	NoMeter bool
	// Host names this machine in a cluster ("" alone): its instances carry
	// it, and a Local manages only the records of its own host.
	Host string
	// TLS, in a cluster, gives each agent a certificate of the cluster's
	// authority: it then reaches the bus over TLS and serves invocations over
	// TLS on Advertise (an address of this machine that the other machines
	// reach), instead of a Unix socket.
	TLS       *pki.Authority
	Advertise string
	// Secret is the bus's: each agent gets the credentials of its own
	// identity on the bus (bus.AgentIdentity), in a file of its directory
	// (mode 0600). Nil starts agents without credentials.
	Secret bus.Secret
}

func (c *LocalConfig) setDefaults() {
	if c.Binary == "" {
		c.Binary, _ = os.Executable()
	}
	if c.Args == nil {
		c.Args = []string{"agent"}
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 5 * c.Heartbeat
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = time.Minute
	}
	if c.Bucket == "" {
		c.Bucket = "shoal_fleet"
	}
	if c.HistoryBucket == "" {
		c.HistoryBucket = "shoal_fleet_history"
	}
	if c.UsageCheckpoint == 0 {
		c.UsageCheckpoint = 5 * time.Second
	}
}

// Validate fills defaults and checks the configuration.
func (c *LocalConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.NATSURL == "":
		return errors.New("fleet: NATS URL is required (the bus must listen on TCP)")
	case c.Binary == "":
		return errors.New("fleet: shoal binary not found")
	case c.WorkDir == "" || !filepath.IsAbs(c.WorkDir):
		return fmt.Errorf("fleet: work dir %q must be an absolute path", c.WorkDir)
	case c.LaunchDelay < 0 || c.Heartbeat <= 0 || c.HeartbeatTimeout <= c.Heartbeat || c.BootTimeout <= 0:
		return errors.New("fleet: LaunchDelay ≥ 0, Heartbeat > 0, HeartbeatTimeout > Heartbeat and BootTimeout > 0 are required")
	}
	return nil
}

// LocalDeps are the local provider's dependencies.
type LocalDeps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// NATS is the control plane's connection to the bus. Required.
	NATS *nats.Conn
	// Usage, if set, records each instance's time in each state.
	Usage UsageRecorder
}

// Local runs instances as `shoal agent` child processes on this machine.
//
// Concurrency: cfg, log, clock, nc, kv, history, agents and catalog are immutable
// after NewLocal. mu guards insts, watchers and closed. Records are written
// to KV outside mu, by the goroutine that made the change.
type Local struct {
	cfg     LocalConfig
	log     *slog.Logger
	clock   clock.Clock
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	history jetstream.KeyValue // terminated instances (history.go)
	saveMu  sync.Mutex         // serialises record saves (see save)
	usage   UsageRecorder
	agents  *agent.Client
	catalog *pricing.Catalog
	sub     *nats.Subscription
	stop    chan struct{}
	loopEnd chan struct{}

	mu       sync.Mutex
	insts    map[string]*localInst
	watchers map[chan Event]struct{}
	segs     map[string]*segment // open instance-time segments, by instance
	closed   bool
	// undeleted holds the records of gone instances whose delete failed (a
	// cluster without its majority): the monitor tries again, from
	// nextDeleteTry on, so that no other node keeps seeing them.
	undeleted     map[string]bool
	nextDeleteTry time.Time
}

var _ Provider = (*Local)(nil)

// localInst is one instance. Its fields are guarded by Local.mu, except
// exited (closed once the child has been reaped) and the immutable ones.
type localInst struct {
	info    Instance
	dir     string
	socket  string
	pid     int
	box     *sandbox.Sandbox // nil when unconfined or adopted
	cmd     *exec.Cmd        // nil when adopted
	exited  chan struct{}    // nil when adopted
	cancel  chan struct{}    // closed to abandon a delayed spawn
	cgroups []string         // the instance's cgroup directories, for a later cleanup
	// cleaning is closed when the cleanup of the instance's processes and
	// files has finished; nil until one starts.
	cleaning chan struct{}
	// terminating is set by Terminate: neither a missed heartbeat nor the
	// process's exit makes the instance lost then.
	terminating bool
	hbPid       int
	hbSeq       uint64
}

// NewLocal opens the instance records, adopts or cleans up the instances of
// an earlier run, and starts watching heartbeats.
func NewLocal(cfg LocalConfig, deps LocalDeps) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.NATS == nil {
		return nil, errors.New("fleet: a NATS connection is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	js, err := bus.NewJetStream(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := bus.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: cfg.Bucket, History: 1, Replicas: max(1, cfg.Replicas)})
	if err != nil {
		return nil, fmt.Errorf("fleet: instance records: %w", err)
	}
	history, err := openHistory(ctx, js, cfg.HistoryBucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	l := &Local{
		cfg: cfg, log: deps.Logger.With("component", "fleet"), clock: deps.Clock, nc: deps.NATS, js: js, kv: kv, history: history,
		usage: deps.Usage, segs: make(map[string]*segment),
		agents: agent.NewClient(deps.NATS), catalog: pricing.Default(),
		stop: make(chan struct{}), loopEnd: make(chan struct{}),
		insts: make(map[string]*localInst), watchers: make(map[chan Event]struct{}),
		undeleted: make(map[string]bool),
	}
	l.drainOrphans()
	if err := l.recover(ctx); err != nil {
		return nil, err
	}
	l.cleanStrays()
	l.sub, err = deps.NATS.Subscribe(agent.HeartbeatWildcard, l.onHeartbeat)
	if err != nil {
		return nil, fmt.Errorf("fleet: subscribe heartbeats: %w", err)
	}
	go l.monitor()
	return l, nil
}

// Close stops watching; the instances keep running (a later NewLocal on the
// same bucket finds them). Watch channels are closed.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for ch := range l.watchers {
		close(ch)
	}
	l.watchers = nil
	l.mu.Unlock()
	_ = l.sub.Unsubscribe()
	close(l.stop)
	<-l.loopEnd
	l.closeUsage()
	return nil
}

// Instances lists the instances that are not terminated, by id.
func (l *Local) Instances() []Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Instance, 0, len(l.insts))
	for id, li := range l.insts {
		in := li.info.clone()
		in.MeteredUntil = l.meteredUntilLocked(id)
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Instance returns one instance.
func (l *Local) Instance(id string) (Instance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	li := l.insts[id]
	if li == nil {
		return Instance{}, false
	}
	in := li.info.clone()
	in.MeteredUntil = l.meteredUntilLocked(id)
	return in, true
}

// Watch delivers changes until ctx ends or the provider closes. A watcher
// that falls more than 1024 events behind loses the oldest ones (Instances
// always has the current state).
func (l *Local) Watch(ctx context.Context) <-chan Event {
	return addWatcher(ctx, &l.mu, &l.watchers, l.stop)
}

// emitLocked records a change of li's state: it stamps the instance's life
// (LaunchedAt, StartedAt, TerminatedAt) and its usage segments with one
// reading of the clock, so the fleet's record and the ledger's segments meet
// exactly, and sends an event to every watcher. l.mu is held.
func (l *Local) emitLocked(li *localInst, prev string) {
	now := l.clock.Now()
	in := &li.info
	switch {
	case prev == "":
		in.LaunchedAt = now
	case in.State == StateTerminated:
		in.TerminatedAt = now
	}
	if in.StartedAt.IsZero() && in.State != StatePending && in.State != StateTerminated {
		in.StartedAt = now
	}
	l.meterLocked(*in, now)
	ev := Event{Instance: in.clone(), Previous: prev}
	ev.Instance.MeteredUntil = l.meteredUntilLocked(in.ID)
	for ch := range l.watchers {
		select {
		case ch <- ev:
		default:
			l.log.Warn("fleet watcher is behind; event dropped", "instance", in.ID, "state", in.State)
		}
	}
}

// pickZoneLocked returns the zone with the fewest live instances of cp.
func (l *Local) pickZoneLocked(cp string) string {
	count := make(map[string]int)
	for _, li := range l.insts {
		if li.info.CapacityProvider == cp && (li.info.State == StatePending || li.info.State == StateRunning) {
			count[li.info.Zone]++
		}
	}
	best := l.cfg.Zones[0]
	for _, z := range l.cfg.Zones[1:] {
		if count[z] < count[best] {
			best = z
		}
	}
	return best
}

// Launch records a pending instance and spawns its agent after LaunchDelay.
func (l *Local) Launch(ctx context.Context, spec InstanceSpec) error {
	if spec.CapacityProvider == "" {
		return errors.New("fleet: launch: capacity provider is required")
	}
	it, err := l.catalog.InstanceType(spec.Type)
	if err != nil {
		return fmt.Errorf("fleet: launch: %w", err)
	}
	if spec.Zone != "" && !slices.Contains(l.cfg.Zones, spec.Zone) {
		return fmt.Errorf("fleet: launch: zone %q is not one of %v", spec.Zone, l.cfg.Zones)
	}
	if spec.ID == "" {
		spec.ID = NewInstanceID()
	}
	dir := filepath.Join(l.cfg.WorkDir, spec.ID)
	li := &localInst{dir: dir, socket: socketPath(dir, spec.ID), cancel: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("fleet: provider closed")
	}
	if _, dup := l.insts[spec.ID]; dup {
		l.mu.Unlock()
		return fmt.Errorf("fleet: launch: instance %s exists", spec.ID)
	}
	if spec.Zone == "" {
		spec.Zone = l.pickZoneLocked(spec.CapacityProvider)
	}
	li.info = Instance{
		ID: spec.ID, CapacityProvider: spec.CapacityProvider, Type: it.Name, Zone: spec.Zone, Host: l.cfg.Host, State: StatePending,
		VCPU: it.VCPU, MemoryMB: it.MemoryGiB * 1024,
	}
	l.insts[spec.ID] = li
	l.emitLocked(li, "")
	rec := l.recordLocked(li)
	l.mu.Unlock()
	l.save(ctx, rec)
	l.log.Info("instance launched", "instance", spec.ID, "type", it.Name, "zone", spec.Zone,
		"capacity_provider", spec.CapacityProvider, "launch_delay", l.cfg.LaunchDelay)
	go l.spawnAfterDelay(li, it)
	return nil
}

// socketPath keeps a Unix socket path within sun_path's 108 bytes.
func socketPath(dir, id string) string {
	p := filepath.Join(dir, "agent.sock")
	if len(p) < 100 {
		return p
	}
	return filepath.Join(os.TempDir(), "shoal-"+id+".sock")
}

func (l *Local) spawnAfterDelay(li *localInst, it pricing.InstanceType) {
	if l.cfg.LaunchDelay > 0 {
		t := l.clock.NewTimer(l.cfg.LaunchDelay)
		select {
		case <-t.C():
		case <-li.cancel:
			t.Stop()
			return
		case <-l.stop:
			t.Stop()
			return
		}
	}
	if err := l.spawn(li, it); err != nil {
		l.log.Error("instance failed to start", "instance", li.info.ID, "err", err)
		l.markLost(li.info.ID, "the agent failed to start: "+err.Error())
	}
}

// spawn starts the agent process, in a cgroup of the type's size.
func (l *Local) spawn(li *localInst, it pricing.InstanceType) error {
	l.mu.Lock()
	if li.info.State != StatePending {
		l.mu.Unlock()
		return nil // terminated before it booted
	}
	info := li.info
	l.mu.Unlock()
	work := filepath.Join(li.dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(li.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append(slices.Clone(l.cfg.Args),
		"--nats", l.cfg.NATSURL, "--id", info.ID, "--capacity-provider", info.CapacityProvider,
		"--type", info.Type, "--zone", info.Zone, "--work", work,
		"--heartbeat", l.cfg.Heartbeat.String())
	if l.cfg.TLS != nil {
		cert, err := l.cfg.TLS.Issue(bus.AgentIdentity(info.ID), []string{l.cfg.Advertise})
		if err != nil {
			return err
		}
		if err := l.cfg.TLS.WriteFiles(li.dir, cert); err != nil {
			return err
		}
		args = append(args, "--tls-dir", li.dir, "--listen", net.JoinHostPort(l.cfg.Advertise, "0"))
	} else {
		args = append(args, "--socket", li.socket)
	}
	if l.cfg.NoMeter {
		args = append(args, "--no-meter")
	}
	if l.cfg.Secret != nil {
		creds, err := l.cfg.Secret.CredentialsFor(bus.AgentIdentity(info.ID))
		if err != nil {
			return err
		}
		path := filepath.Join(li.dir, "bus.creds")
		if err := creds.WriteFile(path); err != nil {
			return err
		}
		args = append(args, "--nats-creds", path)
	}
	if ext := l.cfg.External; ext != nil {
		args = append(args, "--external-nats")
		if ext.CredsFile != "" {
			args = append(args, "--nats-user-creds", ext.CredsFile)
		}
		if ext.CAFile != "" {
			args = append(args, "--nats-ca", ext.CAFile)
		}
	}
	cmd := exec.Command(l.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), l.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = li.dir
	var box *sandbox.Sandbox
	if !l.cfg.NoConfine {
		box, err = sandbox.New(sandbox.Config{
			ID: "instance-" + info.ID, MemoryMB: it.MemoryGiB * 1024, CPUs: float64(it.VCPU),
			PidsMax: 1 << 16, CodeDir: li.dir, TmpDir: filepath.Join(li.dir, "tmp"),
		}, l.log)
		if err != nil {
			return fmt.Errorf("confine: %w", err)
		}
		if why := box.Limited(); why != "" {
			l.log.Warn("instance not confined to its type's size", "instance", info.ID, "reason", why)
		}
		err = box.Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		if box != nil {
			_ = box.Close()
		}
		return err
	}
	exited := make(chan struct{})
	l.mu.Lock()
	li.box, li.cmd, li.exited, li.pid = box, cmd, exited, cmd.Process.Pid
	if box != nil {
		li.cgroups = cgroupDirsOf(cmd.Process.Pid, "instance-"+info.ID)
	}
	rec := l.recordLocked(li)
	l.mu.Unlock()
	l.save(context.Background(), rec)
	go func() {
		err := cmd.Wait()
		close(exited)
		l.onExit(info.ID, err)
	}()
	return nil
}

// onExit handles the end of an agent process.
func (l *Local) onExit(id string, err error) {
	l.mu.Lock()
	li := l.insts[id]
	terminating := li != nil && li.terminating
	l.mu.Unlock()
	if li == nil || terminating {
		return // Terminate is waiting for it
	}
	l.markLost(id, fmt.Sprintf("the agent process exited: %v", err))
}

// markLost records the loss of an instance and kills what is left of it.
func (l *Local) markLost(id, why string) {
	l.mu.Lock()
	li := l.insts[id]
	if li == nil || li.info.State == StateLost || li.info.State == StateTerminated {
		l.mu.Unlock()
		return
	}
	prev := li.info.State
	li.info.State, li.info.StateReason = StateLost, why
	l.emitLocked(li, prev)
	rec := l.recordLocked(li)
	l.mu.Unlock()
	l.log.Warn("instance lost", "instance", id, "reason", why, "agent_log_tail", logTail(filepath.Join(li.dir, "agent.log"), 2048))
	l.save(context.Background(), rec)
	go l.cleanup(li) // not on the caller's goroutine: heartbeats keep flowing
}

// Terminate drains the instance, asks its agent to exit, waits for it (or
// kills it when ctx ends first) and forgets the instance.
func (l *Local) Terminate(ctx context.Context, id string) error {
	l.mu.Lock()
	li := l.insts[id]
	if li == nil {
		l.mu.Unlock()
		return fmt.Errorf("fleet: terminate: no instance %s", id)
	}
	li.terminating = true
	prev := li.info.State
	live := prev == StateRunning || prev == StateDraining || (prev == StatePending && li.pid != 0)
	if prev == StatePending {
		select {
		case <-li.cancel:
		default:
			close(li.cancel)
		}
	}
	if live && prev != StateDraining {
		li.info.State, li.info.StateReason = StateDraining, "terminating"
		l.emitLocked(li, prev)
	}
	rec := l.recordLocked(li)
	l.mu.Unlock()
	if live {
		l.save(ctx, rec)
		l.log.Info("instance draining", "instance", id)
		if hb, err := l.agents.Shutdown(ctx, id); err != nil {
			l.log.Warn("instance did not drain; stopping it", "instance", id, "err", err)
		} else {
			l.mu.Lock()
			applyBuilds(&li.info, hb) // its last drain counts go into the history
			l.mu.Unlock()
		}
		l.waitExit(ctx, li)
	}
	l.cleanup(li)
	l.mu.Lock()
	prev = li.info.State
	li.info.State, li.info.StateReason = StateTerminated, ""
	delete(l.insts, id)
	l.emitLocked(li, prev)
	gone := li.info.clone()
	l.mu.Unlock()
	// The history entry is written before the record is deleted, so that an
	// instance is always in one or the other (a control plane that dies in
	// between finds the record and writes the entry itself).
	l.saveHistory(gone)
	l.deleteRecord(context.Background(), id)
	l.log.Info("instance terminated", "instance", id)
	return nil
}

// waitExit waits for the agent to exit after its shutdown: the child process
// to be reaped, or for an adopted agent its last heartbeat.
func (l *Local) waitExit(ctx context.Context, li *localInst) {
	l.mu.Lock()
	exited, pid := li.exited, li.pid
	l.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
		case <-ctx.Done():
		}
		return
	}
	// Adopted: not our child; watch its pid go away.
	if pid <= 0 {
		return
	}
	t := l.clock.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for syscall.Kill(pid, 0) == nil {
		select {
		case <-t.C():
		case <-ctx.Done():
			return
		}
	}
}

// cleanup kills the instance's processes and removes its cgroup and files.
// Every caller returns once the one cleanup has finished.
func (l *Local) cleanup(li *localInst) {
	l.mu.Lock()
	if li.cleaning != nil {
		done := li.cleaning
		l.mu.Unlock()
		<-done
		return
	}
	li.cleaning = make(chan struct{})
	defer close(li.cleaning)
	box, cmd, exited, pid, id, cgs := li.box, li.cmd, li.exited, li.pid, li.info.ID, li.cgroups
	l.mu.Unlock()
	switch {
	case box != nil:
		_ = box.Kill()
		<-exited
		if err := removeCgroupTrees(cgs, false); err != nil {
			l.log.Warn("environment cgroups not removed", "instance", id, "err", err)
		}
		if err := box.Close(); err != nil {
			l.log.Warn("instance cgroup not removed", "instance", id, "err", err)
		}
	case cmd != nil:
		_ = cmd.Process.Kill()
		<-exited
	default: // adopted, or recorded by an earlier run
		if pid > 0 {
			killAgent(pid, id)
		}
		if err := removeCgroupTrees(cgs, true); err != nil {
			l.log.Warn("instance cgroups not removed", "instance", id, "err", err)
		}
	}
	_ = os.Remove(li.socket)
	l.drainJournal(li.dir, id)
	// The /tmp volumes of its environments (and the ones it kept ready)
	// are mounts of the host's: they outlive a killed agent.
	scratch.Clean(filepath.Join(li.dir, "work", "scratch"))
	_ = os.RemoveAll(li.dir)
}

// logTail returns the last limit bytes of a file ("" when unreadable): what a
// lost agent last said, before its directory is removed.
func logTail(path string, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-limit)
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return string(buf[:n])
}
