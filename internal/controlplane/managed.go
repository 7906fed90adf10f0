package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/runtimes"
)

// managedPlane is the Managed Instances side of shoal up: the fleet of
// `shoal agent` processes, the router that sends invocations to their
// environments over persistent connections, and the scaler loop.
//
// Alone, the fleet is this machine's (a Local) and the scaler always runs.
// In a cluster, the fleet is the cluster's (every host's instances), this
// machine offers its own capacity as a host when asked to, and the scaler
// runs on the node that holds the lease only.
type managedPlane struct {
	fleet   fleet.Provider // what the scaler launches on and the router reads
	local   *fleet.Local   // this machine's instances; nil on a node that is no host
	host    *fleet.Host    // in a cluster: this machine's host server
	cluster *fleet.Cluster // in a cluster: every host's instances
	lease   *lease         // in a cluster: who leads
	pool    *fleet.Pool
	router  *router.Managed
	loop    *scaleLoop

	ctx    context.Context // ends with the plane
	cancel context.CancelFunc
	wg     sync.WaitGroup

	loopMu     sync.Mutex // guards loopCancel
	loopCancel context.CancelFunc
}

func (s *Server) startManaged(ctx context.Context, dataDir string) error {
	cfg := s.cfg
	bin := cfg.AgentBinary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("managed instances: finding the shoal binary: %w", err)
		}
		bin = exe
	}
	m := &managedPlane{}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.managed = m
	localCfg := fleet.LocalConfig{
		NATSURL:     s.bus.ClientURL(),
		Binary:      bin,
		WorkDir:     filepath.Join(dataDir, "fleet"),
		Zones:       cfg.Zones,
		LaunchDelay: cfg.LaunchDelay,
		Heartbeat:   cfg.Heartbeat,
		NoConfine:   !cfg.Isolate,
		NoMeter:     cfg.NoMeter,
		Secret:      s.secret,
		Replicas:    s.replicas,
	}
	localDeps := fleet.LocalDeps{Logger: s.logger, Clock: s.clock, NATS: s.bus.Conn(), Usage: usageRecorder(s.meter)}
	cc := cfg.Cluster
	if cc == nil || cc.Host {
		if cc != nil {
			localCfg.Zones, localCfg.Host = []string{cc.Zone}, hostName(cc.Node)
			localCfg.TLS, localCfg.Advertise = s.tls.ca, cc.Advertise
			localCfg.External = cc.External
		}
		var lf *fleet.Local
		err := s.retrying(ctx, "the instance records", func(ctx context.Context) (err error) {
			lf, err = fleet.NewLocal(localCfg, localDeps)
			return err
		})
		if err != nil {
			return fmt.Errorf("managed instances: %w", err)
		}
		m.local, m.fleet = lf, lf
	}
	m.pool = fleet.NewPool(s.wireKey)
	zones := func() []string { return cfg.Zones }
	if cc != nil {
		m.pool.UseTLS(s.tls.ca.ClientConfig(s.tls.cert))
		var err error
		if m.local != nil {
			m.host, err = fleet.NewHost(fleet.HostConfig{Name: hostName(cc.Node), Zone: cc.Zone, VCPU: cc.VCPU,
				MemoryMB: cc.MemoryMB, Heartbeat: cfg.Heartbeat, Advertise: cc.Advertise}, m.local, s.bus.Conn(), s.logger, s.clock)
			if err != nil {
				return fmt.Errorf("managed instances: %w", err)
			}
		}
		err = s.retrying(ctx, "the cluster's fleet", func(ctx context.Context) (err error) {
			m.cluster, err = fleet.NewCluster(fleet.ClusterConfig{Replicas: s.replicas,
				HostTimeout: 5 * max(cfg.Heartbeat, time.Second)}, fleet.ClusterDeps{NATS: s.bus.Conn(), Logger: s.logger, Clock: s.clock})
			return err
		})
		if err != nil {
			return fmt.Errorf("managed instances: %w", err)
		}
		m.fleet, zones = m.cluster, m.cluster.Zones
	}
	m.router = router.NewManaged(m.pool)
	var err error
	loopCfg := scaleLoopConfig{Zones: cfg.Zones, ZonesOf: zones, Isolate: cfg.Isolate, Interval: cfg.ScaleInterval,
		MaxInstanceLifetime: cfg.MaxInstanceLifetime, PeakWindow: cfg.ScalePeakWindow, ScaleInInterval: cfg.ScaleInInterval}
	if cc == nil && cfg.AgentBinary == "" {
		// Alone, the fleet launches agents from this very binary.
		loopCfg.Bootstrap = runtimes.BootstrapHash()
	}
	m.loop, err = newScaleLoop(loopCfg,
		scaleLoopDeps{
			Registry:     s.reg,
			Fleet:        m.fleet,
			Environments: agent.NewClient(s.bus.Conn()),
			Demand: func(key string) (int64, time.Duration, int64) {
				st := m.router.Stats(key)
				return st.Invocations.Load(), time.Duration(st.BusyNanos.Load()),
					st.ThrottlesConcurrency.Load() + st.ThrottlesCPU.Load() + st.ThrottlesMemory.Load()
			},
			Spec:   func(v *registry.Version) env.Spec { return targetFor(v, cfg).Spec },
			Clock:  s.clock,
			Logger: s.logger,
		})
	if err != nil {
		return fmt.Errorf("managed instances: %w", err)
	}
	events := m.fleet.Watch(m.ctx)
	m.router.Update(m.fleet.Instances())
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for ev := range events {
			_ = guard.Run(s.logger, "fleet event", func() {
				if ev.Instance.State == fleet.StateLost || ev.Instance.State == fleet.StateTerminated {
					m.pool.Forget(ev.Instance.ID)
				}
				m.router.Update(m.fleet.Instances())
			})
		}
	}()
	if cc == nil {
		m.startLoop()
		return nil
	}
	err = s.retrying(ctx, "the leader's lease", func(ctx context.Context) (err error) {
		m.lease, err = openLease(ctx, s.bus.JetStream(), s.bus.ServerName(), hostName(cc.Node), s.replicas, s.logger, s.clock, func(leading bool) {
			m.cluster.SetLeader(leading)
			if leading {
				m.startLoop()
			} else {
				m.stopLoop()
			}
			s.leaderChanged()
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("managed instances: %w", err)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.lease.run(m.ctx)
	}()
	return nil
}

// startLoop runs the scaler until stopLoop or the plane's end.
func (m *managedPlane) startLoop() {
	m.loopMu.Lock()
	defer m.loopMu.Unlock()
	if m.loopCancel != nil || m.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.loopCancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.loop.Run(ctx)
	}()
}

func (m *managedPlane) stopLoop() {
	m.loopMu.Lock()
	defer m.loopMu.Unlock()
	if m.loopCancel != nil {
		m.loopCancel()
		m.loopCancel = nil
	}
}

// leading reports whether this node runs the scaler: alone always, in a
// cluster while it holds the lease.
func (m *managedPlane) leading() bool { return m.lease == nil || m.lease.isLeading() }

// serveFleet answers GET /shoal/v1/fleet: every instance with its environments,
// and the Managed Instances invocation and throttle counts per version. With
// terminated_since=RFC3339 it adds "terminated": the instances terminated
// since then, from the fleet's history.
func (s *Server) serveFleet(w http.ResponseWriter, r *http.Request) {
	var terminated []fleet.Instance
	if v := r.URL.Query().Get("terminated_since"); v != "" {
		since, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			http.Error(w, "terminated_since: not an RFC 3339 time", http.StatusBadRequest)
			return
		}
		if terminated, err = s.managed.fleet.Terminated(r.Context(), since); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if terminated == nil {
			terminated = []fleet.Instance{}
		}
	}
	type versionStats struct {
		Version              string `json:"version"`
		Environments         int    `json:"environments"`
		Invocations          int64  `json:"invocations"`
		ThrottlesConcurrency int64  `json:"throttles_concurrency"`
		ThrottlesCPU         int64  `json:"throttles_cpu"`
		ThrottlesMemory      int64  `json:"throttles_memory"`
	}
	instances := s.managed.fleet.Instances()
	// Each instance with when it is due for replacement: launched plus its
	// capacity provider's maximum lifetime.
	views := make([]fleet.InstanceView, len(instances))
	lifetimes := map[string]time.Duration{}
	for i, in := range instances {
		d, ok := lifetimes[in.CapacityProvider]
		if !ok {
			d = s.managed.loop.lifetime(r.Context(), in.CapacityProvider)
			lifetimes[in.CapacityProvider] = d
		}
		views[i] = fleet.InstanceView{Instance: in}
		if !in.LaunchedAt.IsZero() {
			views[i].RotationDue = in.LaunchedAt.Add(d)
		}
	}
	keys := map[string]bool{}
	for _, in := range instances {
		for _, e := range in.Environments {
			keys[e.Function+":"+e.Version] = true
		}
	}
	var versions []versionStats
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		st := s.managed.router.Stats(k)
		versions = append(versions, versionStats{Version: k, Environments: s.managed.router.Environments(k),
			Invocations: st.Invocations.Load(), ThrottlesConcurrency: st.ThrottlesConcurrency.Load(),
			ThrottlesCPU: st.ThrottlesCPU.Load(), ThrottlesMemory: st.ThrottlesMemory.Load()})
	}
	doc := map[string]any{"instances": views, "versions": versions}
	if terminated != nil {
		doc["terminated"] = terminated
	}
	if s.managed.cluster != nil {
		doc["hosts"] = s.managed.cluster.Hosts()
	}
	if classic := s.classicAgents(); classic != nil {
		doc["classic"] = classic
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// close stops the scaler, drains and stops this machine's instances (alone:
// every instance), and closes the fleet. In a cluster, the others' instances
// go on; the leader replaces this machine's elsewhere. This machine's host
// drains before it leaves, so that its instances are never taken for lost
// while their invocations finish.
func (m *managedPlane) close(ctx context.Context) error {
	m.cancel()
	m.wg.Wait()
	switch {
	case m.host != nil:
		_ = m.host.Drain(ctx) // what is left when ctx ends, the leader finds lost
		_ = m.host.Close()
	case m.local != nil:
		var wg sync.WaitGroup
		for _, in := range m.local.Instances() {
			wg.Go(func() { _ = m.local.Terminate(ctx, in.ID) })
		}
		wg.Wait()
	}
	m.pool.Close()
	var errs []error
	if m.cluster != nil {
		errs = append(errs, m.cluster.Close())
	}
	if m.local != nil {
		errs = append(errs, m.local.Close())
	}
	return errors.Join(errs...)
}

// wireKey is the key of the invoke connection to the agent of instance id.
func (s *Server) wireKey(id string) []byte {
	creds, err := s.secret.CredentialsFor(bus.AgentIdentity(id))
	if err != nil {
		return nil // the dial then fails at the agent's handshake
	}
	return creds.WireKey()
}

// usageRecorder is rec as a fleet.UsageRecorder, nil when metering is off.
func usageRecorder(rec *ledger.Recorder) fleet.UsageRecorder {
	if rec == nil {
		return nil
	}
	return rec
}
