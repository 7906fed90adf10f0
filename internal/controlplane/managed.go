package controlplane

import (
	"context"
	"encoding/json"
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
)

// managedPlane is the Managed Instances side of shoal up: the local fleet of
// `shoal agent` processes, the router that sends invocations to their
// environments over persistent connections, and the scaler loop.
type managedPlane struct {
	fleet  *fleet.Local
	pool   *fleet.Pool
	router *router.Managed
	loop   *scaleLoop

	cancel context.CancelFunc
	wg     sync.WaitGroup
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
	lf, err := fleet.NewLocal(fleet.LocalConfig{
		NATSURL:     s.bus.ClientURL(),
		Binary:      bin,
		WorkDir:     filepath.Join(dataDir, "fleet"),
		Zones:       cfg.Zones,
		LaunchDelay: cfg.LaunchDelay,
		Heartbeat:   cfg.Heartbeat,
		NoConfine:   !cfg.Isolate,
		NoMeter:     cfg.NoMeter,
		Secret:      s.secret,
	}, fleet.LocalDeps{Logger: s.logger, Clock: s.clock, NATS: s.bus.Conn(), Usage: usageRecorder(s.meter)})
	if err != nil {
		return fmt.Errorf("managed instances: %w", err)
	}
	m := &managedPlane{fleet: lf, pool: fleet.NewPool(s.wireKey)}
	m.router = router.NewManaged(m.pool)
	m.loop, err = newScaleLoop(scaleLoopConfig{Zones: cfg.Zones, Isolate: cfg.Isolate, Interval: cfg.ScaleInterval},
		scaleLoopDeps{
			Registry:     s.reg,
			Fleet:        lf,
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
		_ = lf.Close()
		return fmt.Errorf("managed instances: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	events := lf.Watch(loopCtx)
	m.router.Update(lf.Instances())
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		for ev := range events {
			_ = guard.Run(s.logger, "fleet event", func() {
				if ev.Instance.State == fleet.StateLost || ev.Instance.State == fleet.StateTerminated {
					m.pool.Forget(ev.Instance.ID)
				}
				m.router.Update(lf.Instances())
			})
		}
	}()
	go func() {
		defer m.wg.Done()
		m.loop.Run(loopCtx)
	}()
	s.managed = m
	return nil
}

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
	doc := map[string]any{"instances": instances, "versions": versions}
	if terminated != nil {
		doc["terminated"] = terminated
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// close stops the scaler, drains and stops every instance, and closes the fleet.
func (m *managedPlane) close(ctx context.Context) error {
	m.cancel()
	m.wg.Wait()
	var wg sync.WaitGroup
	for _, in := range m.fleet.Instances() {
		wg.Go(func() { _ = m.fleet.Terminate(ctx, in.ID) })
	}
	wg.Wait()
	m.pool.Close()
	return m.fleet.Close()
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
