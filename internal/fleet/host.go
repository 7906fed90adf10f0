package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/clock"
)

// A host is a machine that offers its capacity (vCPUs, memory) to a
// cluster's fleet, in one zone. It runs the instances the fleet's leader asks
// it for, as `shoal agent` processes in cgroups of their types' sizes (a
// Local of its own), and heartbeats its capacity and what it uses.
//
//	shoal.host.hb.<name>   HostStatus, every heartbeat
//	shoal.host.<name>.cmd  HostCommand → HostReply (launch, terminate)

// Subjects of hosts.
const (
	HostHeartbeatPrefix   = "shoal.host.hb."
	HostHeartbeatWildcard = HostHeartbeatPrefix + "*"
)

// FollowHostAddrs calls add with the address of each host that heartbeats,
// at each of its heartbeats, until the subscription ends. Only nodes and
// hosts may publish host heartbeats.
func FollowHostAddrs(nc *nats.Conn, add func(addr string)) (*nats.Subscription, error) {
	return nc.Subscribe(HostHeartbeatWildcard, func(m *nats.Msg) {
		var st struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(m.Data, &st) == nil && st.Addr != "" {
			add(st.Addr)
		}
	})
}

// HostHeartbeatSubject is where host name publishes its HostStatus.
func HostHeartbeatSubject(name string) string { return HostHeartbeatPrefix + name }

// HostCommandSubject is where host name answers HostCommands.
func HostCommandSubject(name string) string { return "shoal.host." + name + ".cmd" }

// HostStatus is a host as its heartbeat reports it.
type HostStatus struct {
	Name string `json:"name"`
	Zone string `json:"zone"`
	// Addr is the address the other machines use for the host.
	Addr     string `json:"addr,omitempty"`
	VCPU     int    `json:"vcpu"`
	MemoryMB int    `json:"memory_mb"`
	// UsedVCPU and UsedMemoryMB are what its instances take (pending,
	// running and draining ones).
	UsedVCPU     int `json:"used_vcpu"`
	UsedMemoryMB int `json:"used_memory_mb"`
	Instances    int `json:"instances"`
	// Classic names the agent that serves the host's on-demand and
	// Provisioned Concurrency environments to every front ("" when none);
	// ClassicVCPU, ClassicMemoryMB and ClassicEnvironments are what those
	// environments take (their CPU quotas and memory), with those the node
	// on the host runs in its own process.
	Classic             string    `json:"classic,omitempty"`
	ClassicVCPU         float64   `json:"classic_vcpu,omitempty"`
	ClassicMemoryMB     int       `json:"classic_memory_mb,omitempty"`
	ClassicEnvironments int       `json:"classic_environments,omitempty"`
	Time                time.Time `json:"time"`
	// LastHeartbeat is when the fleet last heard of it (set by the receiver).
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Draining says the host takes no more instances and is stopping the
	// ones it has; Left, in its last heartbeat, that it stopped serving.
	Draining bool `json:"draining,omitempty"`
	Left     bool `json:"left,omitempty"`
	// State is set by the receiver: "up", "draining", "left", or "lost"
	// once its heartbeats stopped without its leaving.
	State string `json:"state,omitempty"`
}

// Host states, as the fleet sees them.
const (
	HostUp       = "up"
	HostDraining = "draining"
	HostLeft     = "left"
	HostLost     = "lost"
)

// HostCommand asks a host to launch or terminate an instance.
type HostCommand struct {
	Op   string       `json:"op"` // "launch" or "terminate"
	Spec InstanceSpec `json:"spec,omitzero"`
	ID   string       `json:"id,omitempty"`
}

// HostReply answers a HostCommand.
type HostReply struct {
	Error string `json:"error,omitempty"`
}

// HostConfig configures a Host.
type HostConfig struct {
	Name     string
	Zone     string
	VCPU     int
	MemoryMB int
	// Heartbeat is the interval of the host's heartbeats (default 1 s).
	Heartbeat time.Duration
	// Advertise is the address the other machines use for this one; the
	// heartbeats carry it (HostStatus.Addr).
	Advertise string
}

// Host serves a cluster's fleet on this machine.
//
// Its life: up (answers launches) → draining (Drain: refuses launches,
// terminates its instances, heartbeats go on) → closed (Close: a last
// heartbeat says it left, then none).
//
// Concurrency: everything but draining and what classicMu guards is set by
// NewHost and immutable; Local is safe for concurrent use.
type Host struct {
	cfg      HostConfig
	local    *Local
	nc       *nats.Conn
	log      *slog.Logger
	clock    clock.Clock
	sub      *nats.Subscription
	beat     chan struct{} // a heartbeat now
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	draining atomic.Bool

	classicMu sync.Mutex // guards classic and classicUse
	// classic is the agent of the host's classic environments; classicUse
	// says what they take (SetClassic).
	classic    string
	classicUse func() ClassicUse
}

// ClassicUse is what a host's on-demand and Provisioned Concurrency
// environments take.
type ClassicUse struct {
	VCPU         float64
	MemoryMB     int
	Environments int
}

// SetClassic names the agent that serves the host's classic environments
// and how to read what they take; the heartbeats carry both.
func (h *Host) SetClassic(agentID string, use func() ClassicUse) {
	h.classicMu.Lock()
	h.classic, h.classicUse = agentID, use
	h.classicMu.Unlock()
}

// Free is the host's capacity less what its instances and classic
// environments take; negative when they take more than it offers.
func (h *Host) Free() (vcpu float64, memoryMB int) {
	st := h.Status()
	return float64(st.VCPU-st.UsedVCPU) - st.ClassicVCPU, st.MemoryMB - st.UsedMemoryMB - st.ClassicMemoryMB
}

// NewHost starts answering the fleet's commands and heartbeating. local runs
// the instances; its Host must be cfg.Name.
func NewHost(cfg HostConfig, local *Local, nc *nats.Conn, logger *slog.Logger, clk clock.Clock) (*Host, error) {
	if cfg.Name == "" || cfg.Zone == "" || cfg.VCPU <= 0 || cfg.MemoryMB <= 0 {
		return nil, errors.New("fleet: a host needs a name, a zone, vCPUs and memory")
	}
	if local.cfg.Host != cfg.Name {
		return nil, fmt.Errorf("fleet: host %s runs a fleet of host %q", cfg.Name, local.cfg.Host)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	h := &Host{cfg: cfg, local: local, nc: nc, log: logger.With("component", "host", "host", cfg.Name),
		clock: clk, beat: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	h.sub, err = nc.Subscribe(HostCommandSubject(cfg.Name), func(m *nats.Msg) { go h.command(m) })
	if err != nil {
		return nil, fmt.Errorf("fleet: host: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = h.sub.Unsubscribe()
		return nil, fmt.Errorf("fleet: host: %w", err)
	}
	go h.heartbeat()
	return h, nil
}

// Status is what the host's heartbeat says now.
func (h *Host) Status() HostStatus {
	st := HostStatus{Name: h.cfg.Name, Zone: h.cfg.Zone, Addr: h.cfg.Advertise, VCPU: h.cfg.VCPU, MemoryMB: h.cfg.MemoryMB, Time: h.clock.Now(),
		Draining: h.draining.Load()}
	for _, in := range h.local.Instances() {
		if in.State == StatePending || in.State == StateRunning || in.State == StateDraining {
			st.UsedVCPU += in.VCPU
			st.UsedMemoryMB += in.MemoryMB
			st.Instances++
		}
	}
	h.classicMu.Lock()
	st.Classic = h.classic
	use := h.classicUse
	h.classicMu.Unlock()
	if use != nil {
		u := use()
		st.ClassicVCPU, st.ClassicMemoryMB, st.ClassicEnvironments = u.VCPU, u.MemoryMB, u.Environments
	}
	return st
}

func (h *Host) heartbeat() {
	defer close(h.done)
	t := h.clock.NewTicker(h.cfg.Heartbeat)
	defer t.Stop()
	for {
		h.send(h.Status())
		select {
		case <-h.stop:
			// The last one: the fleet forgets this host at once instead
			// of finding it lost.
			st := h.Status()
			st.Left = true
			h.send(st)
			_ = h.nc.Flush()
			return
		case <-h.beat:
		case <-t.C():
		}
	}
}

func (h *Host) send(st HostStatus) {
	body, err := json.Marshal(st)
	if err != nil {
		return
	}
	if err := h.nc.Publish(HostHeartbeatSubject(h.cfg.Name), body); err != nil {
		h.log.Warn("host heartbeat not sent", "err", err)
	}
}

// Drain makes the host take no more instances and terminates the ones it
// has, each after its in-flight invocations: the fleet's leader, told by
// the next heartbeat (sent at once), places nothing here any more and
// replaces them elsewhere. The host goes on heartbeating until Close, so
// that its instances are never taken for lost while they drain. It returns
// once every instance is terminated, or when ctx ends.
func (h *Host) Drain(ctx context.Context) error {
	if !h.draining.Swap(true) {
		h.log.Info("host draining")
	}
	select {
	case h.beat <- struct{}{}:
	default:
	}
	for {
		var live []Instance
		for _, in := range h.local.Instances() {
			if in.State != StateTerminated {
				live = append(live, in)
			}
		}
		if len(live) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		for _, in := range live {
			wg.Go(func() {
				if err := h.local.Terminate(ctx, in.ID); err != nil {
					h.log.Warn("instance not terminated", "instance", in.ID, "err", err)
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fleet: host %s: drain: %w", h.cfg.Name, err)
		}
	}
}

// command carries out one request of the fleet.
func (h *Host) command(m *nats.Msg) {
	var cmd HostCommand
	rep := HostReply{}
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		rep.Error = "bad command: " + err.Error()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		switch cmd.Op {
		case "launch":
			if cmd.Spec.Zone == "" {
				cmd.Spec.Zone = h.cfg.Zone
			}
			if h.draining.Load() {
				rep.Error = fmt.Sprintf("host %s is draining", h.cfg.Name)
			} else if cmd.Spec.Zone != h.cfg.Zone {
				rep.Error = fmt.Sprintf("host %s is in zone %s, not %s", h.cfg.Name, h.cfg.Zone, cmd.Spec.Zone)
			} else if err := h.local.Launch(ctx, cmd.Spec); err != nil {
				rep.Error = err.Error()
			}
		case "terminate":
			if err := h.local.Terminate(ctx, cmd.ID); err != nil {
				rep.Error = err.Error()
			}
		default:
			rep.Error = "unknown operation " + cmd.Op
		}
		cancel()
	}
	body, _ := json.Marshal(rep)
	if m.Reply != "" {
		_ = m.Respond(body)
	}
}

// Close stops answering and heartbeating, with a last heartbeat that says
// the host left. The instances keep running, as with Local.Close: Drain
// first to stop them.
func (h *Host) Close() error {
	h.once.Do(func() {
		_ = h.sub.Unsubscribe()
		close(h.stop)
		<-h.done
	})
	return nil
}

// MachineCapacity reads this machine's vCPUs and memory (MiB), what a host
// offers unless told otherwise.
func MachineCapacity() (vcpu, memoryMB int) {
	vcpu = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kb int
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				memoryMB = kb / 1024
			}
		}
	}
	return vcpu, memoryMB
}
