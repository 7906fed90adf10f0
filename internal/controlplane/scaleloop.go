package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	fleetpkg "github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/runtimes"
	"github.com/shoal-dev/shoal/internal/scaler"
)

// The loop that applies the decider's plans to the live fleet. Every tick it reads
// the capacity providers and their function versions from the registry and the
// instances (with their environments, as their agents heartbeat them) from the
// fleet, builds a scaler.Snapshot per capacity provider, asks that provider's scaler.Decider for
// a scaler.Plan and carries it out: launch instances, start environments (asynchronously:
// an environment's init may take minutes), drain environments and instances. It
// also writes back what users see: a capacity provider becomes Active, a version
// Pending until its minimum environments are ready, then Active.

// scaleRegistry is what the loop reads and reports; *registry.Registry implements it.
type scaleRegistry interface {
	ListCapacityProviders(ctx context.Context) ([]*registry.CapacityProvider, error)
	CapacityProviderTags(ctx context.Context, name string) (map[string]string, error)
	ListManagedVersions(ctx context.Context) ([]registry.ManagedVersion, error)
	SetCapacityProviderState(ctx context.Context, name, state, reason string) error
	SetVersionStatus(ctx context.Context, function, version string, s registry.VersionStatus) error
}

// scaleFleet launches and stops instances; fleet.Provider implements it.
type scaleFleet interface {
	Launch(ctx context.Context, spec fleetpkg.InstanceSpec) error
	Terminate(ctx context.Context, id string) error
	Instances() []fleetpkg.Instance
}

// scaleEnvironments starts and stops environments on instances; *agent.Client implements it.
type scaleEnvironments interface {
	StartEnvironment(ctx context.Context, id string, req agent.StartEnv) (agent.EnvStatus, error)
	StopEnvironment(ctx context.Context, id, envID string) error
}

// scaleDemand reports, for a version key, the cumulative invocations served, their
// summed duration and the invocations throttled; the router keeps these counters.
type scaleDemand func(versionKey string) (served int64, busy time.Duration, throttled int64)

// scaleLoopConfig configures a scaleLoop.
type scaleLoopConfig struct {
	// Interval between two decisions (default 2 s).
	Interval time.Duration
	// Zones the fleet spreads over (default the decider's); ZonesOf, when
	// set, is asked at every tick instead (a cluster's zones are its hosts').
	Zones   []string
	ZonesOf func() []string
	// Isolate runs environments in namespaces (passed to the agents).
	Isolate bool
	// MaxInstanceLifetime is how long an instance runs before it is replaced,
	// unless its capacity provider's tag registry.MaxInstanceLifetimeTag says
	// otherwise (default 14 days).
	MaxInstanceLifetime time.Duration
	// PeakWindow and ScaleInInterval pace scale-in (scaler.Config; zero: the
	// scaler's defaults).
	PeakWindow, ScaleInInterval time.Duration
	// Bootstrap, when set, is the bootstraps' hash (runtimes.BootstrapHash) of
	// the agents the fleet launches now: an instance whose agent has other
	// bootstraps is outdated and replaced. Empty: an instance is outdated when
	// its bootstraps differ from those of the newest instance of its host.
	Bootstrap string
}

// scaleLoopDeps are the loop's collaborators.
type scaleLoopDeps struct {
	Registry     scaleRegistry
	Fleet        scaleFleet
	Environments scaleEnvironments
	Demand       scaleDemand
	// Spec builds the environment spec of a version (name, runtime, handler,
	// environment, timeout, ARN); the loop sets memory, vCPUs and slots.
	Spec    func(v *registry.Version) env.Spec
	Catalog *pricing.Catalog
	Clock   clock.Clock
	Logger  *slog.Logger
}

// scaleLoop scales the Managed Instances capacity providers.
type scaleLoop struct {
	cfg  scaleLoopConfig
	deps scaleLoopDeps
	log  *slog.Logger

	// Owned by the goroutine running Run (or the caller of Tick).
	deciders map[string]*providerState
	demand   map[string]demandSample // by version key, the counters at the last tick
	failed   map[string]failure      // version key + revision → why its init failed
	states   map[string]string       // last state reported per version key
	cpStates map[string]string

	// serving holds, by decider key, when a previous revision of
	// $LATEST.PUBLISHED (registry.ManagedVersion.Replaced) was last listed:
	// its environments are kept a little longer (rolloutGrace) once its
	// successor is Active, while the switch reaches every router.
	serving map[string]time.Time

	mu       sync.Mutex           // guards starting and stopping
	starting map[string]starting  // environment id → its start in progress
	stopping map[string]time.Time // environment or instance id → when its stop was asked
	wg       sync.WaitGroup       // asynchronous starts and stops
}

type providerState struct {
	decider *scaler.Decider
	cfg     scaler.Config
}

// rolloutGrace is how long the environments of a version that stopped
// serving are kept before they drain: long enough for the switch to reach
// every router (a registry watch, a routing table update).
func (l *scaleLoop) rolloutGrace() time.Duration { return max(2*l.cfg.Interval, time.Second) }

type demandSample struct {
	served, throttled int64
	busy              time.Duration
}

type starting struct {
	version, revision, instance, zone string
	since                             time.Time
}

// newScaleLoop returns a loop; run it with Run.
func newScaleLoop(cfg scaleLoopConfig, deps scaleLoopDeps) (*scaleLoop, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if deps.Registry == nil || deps.Fleet == nil || deps.Environments == nil || deps.Spec == nil {
		return nil, errors.New("scaler: loop needs a registry, a fleet, environments and a spec builder")
	}
	if deps.Catalog == nil {
		deps.Catalog = pricing.Default()
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Demand == nil {
		deps.Demand = func(string) (int64, time.Duration, int64) { return 0, 0, 0 }
	}
	return &scaleLoop{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "scaler"),
		deciders: map[string]*providerState{}, demand: map[string]demandSample{},
		failed: map[string]failure{}, states: map[string]string{}, cpStates: map[string]string{},
		serving: map[string]time.Time{}, starting: map[string]starting{}, stopping: map[string]time.Time{},
	}, nil
}

// Run ticks until ctx ends, then waits for the starts and stops under way.
func (l *scaleLoop) Run(ctx context.Context) {
	tk := l.deps.Clock.NewTicker(l.cfg.Interval)
	defer tk.Stop()
	defer l.wg.Wait()
	for {
		_ = guard.Run(l.log, "scaler round", func() { l.Tick(ctx) })
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
		}
	}
}

// Tick makes one round of decisions and starts carrying them out.
func (l *scaleLoop) Tick(ctx context.Context) {
	now := l.deps.Clock.Now()
	cps, err := l.deps.Registry.ListCapacityProviders(ctx)
	if err != nil {
		l.log.Warn("listing capacity providers", "err", err)
		return
	}
	versions, err := l.deps.Registry.ListManagedVersions(ctx)
	if err != nil {
		l.log.Warn("listing managed versions", "err", err)
		return
	}
	instances := l.deps.Fleet.Instances()
	l.cleanUp(ctx, instances, cps)

	for _, cp := range cps {
		name := cp.Name()
		if l.cpStates[name] != registry.CapacityProviderActive && cp.State != registry.CapacityProviderActive {
			if err := l.deps.Registry.SetCapacityProviderState(ctx, name, registry.CapacityProviderActive, ""); err == nil {
				l.cpStates[name] = registry.CapacityProviderActive
			}
		}
		var mine []registry.ManagedVersion
		for _, mv := range versions {
			if mv.CapacityProvider == name {
				mine = append(mine, mv)
			}
		}
		ps, err := l.provider(ctx, cp, mine)
		if err != nil {
			l.log.Warn("capacity provider cannot scale", "capacity_provider", name, "err", err)
			l.reportUnplaceable(ctx, mine, err)
			continue
		}
		snap, byKey := l.snapshot(name, mine, instances, now)
		plan := ps.decider.Decide(snap, now)
		l.apply(ctx, name, plan, byKey, instances)
		l.report(ctx, mine, snap, ps.cfg.WithDefaults())
	}
	for k, at := range l.serving {
		if now.Sub(at) > 10*l.rolloutGrace() {
			delete(l.serving, k)
		}
	}
}

// lifetime is the maximum lifetime of cp's instances: its tag's, or the
// loop's default.
func (l *scaleLoop) lifetime(ctx context.Context, cp string) time.Duration {
	if tags, err := l.deps.Registry.CapacityProviderTags(ctx, cp); err == nil {
		if v, ok := tags[registry.MaxInstanceLifetimeTag]; ok {
			if d, err := registry.ParseLifetime(v); err == nil {
				return d
			}
		}
	}
	if l.cfg.MaxInstanceLifetime > 0 {
		return l.cfg.MaxInstanceLifetime
	}
	return scaler.DefaultMaxInstanceLifetime
}

// provider returns the decider of cp, made anew when its configuration changed.
func (l *scaleLoop) provider(ctx context.Context, cp *registry.CapacityProvider, versions []registry.ManagedVersion) (*providerState, error) {
	zones := l.cfg.Zones
	if l.cfg.ZonesOf != nil {
		zones = l.cfg.ZonesOf()
	}
	cfg := scaler.Config{Mode: scaler.ModeAuto, MaxVCPU: cp.MaxVCpuCount(), Zones: zones,
		MaxInstanceLifetime: l.lifetime(ctx, cp.Name()), PeakWindow: l.cfg.PeakWindow, ScaleInInterval: l.cfg.ScaleInInterval}
	if sc := cp.CapacityProviderScalingConfig; sc != nil {
		if sc.ScalingMode == string(scaler.ModeManual) {
			cfg.Mode = scaler.ModeManual
			for _, p := range sc.ScalingPolicies {
				cfg.TargetCPUPercent = p.TargetValue
			}
		}
	}
	shape, err := l.instanceShape(cp, versions)
	if err != nil {
		return nil, err
	}
	cfg.Instance = shape
	ps := l.deciders[cp.Name()]
	if ps != nil && ps.cfg.Mode == cfg.Mode && ps.cfg.TargetCPUPercent == cfg.TargetCPUPercent &&
		ps.cfg.MaxVCPU == cfg.MaxVCPU && ps.cfg.Instance == cfg.Instance && slices.Equal(ps.cfg.Zones, cfg.Zones) &&
		ps.cfg.MaxInstanceLifetime == cfg.MaxInstanceLifetime {
		return ps, nil
	}
	d, err := scaler.New(cfg)
	if err != nil {
		return nil, err
	}
	ps = &providerState{decider: d, cfg: cfg}
	l.deciders[cp.Name()] = ps
	return ps, nil
}

// instanceShape picks the cheapest allowed instance type that holds the largest
// environment of the provider's versions.
func (l *scaleLoop) instanceShape(cp *registry.CapacityProvider, versions []registry.ManagedVersion) (scaler.InstanceShape, error) {
	var allowed, excluded []string
	if r := cp.InstanceRequirements; r != nil {
		allowed, excluded = r.AllowedInstanceTypes, r.ExcludedInstanceTypes
	}
	arch, err := pricing.ParseArch(cp.Architecture())
	if err != nil {
		return scaler.InstanceShape{}, err
	}
	needVCPU, needMiB := 0, 0
	for _, mv := range versions {
		needVCPU = max(needVCPU, mv.VCPUs)
		needMiB = max(needMiB, mv.MemoryMB)
	}
	for _, it := range pricing.MatchInstanceTypes(l.deps.Catalog, arch, allowed, excluded) {
		mib := it.MemoryGiB * 1024
		if it.VCPU >= needVCPU && mib >= needMiB {
			return scaler.InstanceShape{Type: it.Name, VCPU: float64(it.VCPU), MemoryMiB: mib}, nil
		}
	}
	return scaler.InstanceShape{}, fmt.Errorf("no allowed %s instance type holds an environment of %d vCPU and %d MiB", arch, needVCPU, needMiB)
}

func managedVersionKey(function, version string) string { return function + ":" + version }

// deciderKey names a managed version for the decider: "function:version",
// and for the previous revision of $LATEST.PUBLISHED, which serves beside
// its successor until that is Active, "function:version@revision".
func deciderKey(mv registry.ManagedVersion) string {
	k := managedVersionKey(mv.Version.FunctionName, mv.Version.Version)
	if mv.Replaced {
		k += "@" + mv.Version.RevisionId
	}
	return k
}

// snapshot builds the decider's view of one capacity provider. Environments
// of a version's older revision (republishing $LATEST.PUBLISHED replaces it in
// place) and of versions that are gone are strays: each group is a version of
// no environments, so that the decider drains them while counting the room
// they hold — but a previous revision that served until a moment ago keeps
// its environments for rolloutGrace more. Environments on a new runtime
// build's instance (for versions that take runtime updates) are stale, and
// instances whose agents run older bootstraps outdated: the decider
// replaces them.
func (l *scaleLoop) snapshot(cp string, versions []registry.ManagedVersion, instances []fleetpkg.Instance, now time.Time) (scaler.Snapshot, map[string]registry.ManagedVersion) {
	var snap scaler.Snapshot
	byKey := make(map[string]registry.ManagedVersion, len(versions))
	for _, mv := range versions {
		byKey[deciderKey(mv)] = mv
		if mv.Replaced {
			l.serving[deciderKey(mv)] = now
		}
	}
	bootstrap := l.bootstraps(cp, instances)
	envsOf := map[string][]scaler.Environment{}
	seen := map[string]bool{}
	var strayKeys []string
	strays := map[string]*scaler.Version{}
	for _, in := range instances {
		if in.CapacityProvider != cp {
			continue
		}
		var st scaler.InstanceState
		switch in.State {
		case fleetpkg.StatePending:
			st = scaler.InstancePending
		case fleetpkg.StateRunning:
			st = scaler.InstanceRunning
		case fleetpkg.StateDraining:
			st = scaler.InstanceDraining
		default:
			continue // lost or terminated: its environments are gone
		}
		si := scaler.Instance{ID: in.ID, Zone: in.Zone, Type: in.Type, State: st,
			VCPU: float64(in.VCPU), MemoryMiB: in.MemoryMB, CPUUtilization: in.CPUUtilization, LaunchedAt: in.LaunchedAt}
		if want := bootstrap[in.Host]; want != "" && in.Bootstrap != "" && in.Bootstrap != want {
			si.Outdated = fmt.Sprintf("instance %s runs older bootstraps than the fleet launches now", in.ID)
		}
		snap.Instances = append(snap.Instances, si)
		for _, es := range in.Environments {
			seen[es.ID] = true
			var est scaler.EnvState
			switch es.State {
			case "initializing":
				est = scaler.EnvInitializing
			case "ready":
				est = scaler.EnvReady
			case "draining":
				est = scaler.EnvDraining
			default:
				continue // failed: the decider places a replacement
			}
			key := managedVersionKey(es.Function, es.Version)
			e := scaler.Environment{ID: es.ID, Instance: in.ID, State: est, InFlight: float64(es.PeakInFlight), CPUUtilization: es.CPUUtilization}
			mv, ok := byKey[key]
			if ok && (es.Revision == "" || es.Revision == mv.Version.RevisionId) {
				e.Stale = staleness(mv, es, in, si.Outdated)
				envsOf[key] = append(envsOf[key], e)
				continue
			}
			if prev, ok := byKey[key+"@"+es.Revision]; ok && es.Revision != "" {
				e.Stale = staleness(prev, es, in, si.Outdated)
				envsOf[key+"@"+es.Revision] = append(envsOf[key+"@"+es.Revision], e)
				continue
			}
			stray := key + " (gone)"
			if ok {
				stray = key + " (revision " + es.Revision + ", replaced)"
			}
			sv := strays[stray]
			if sv == nil {
				sv = &scaler.Version{Key: stray, EnvVCPU: max(es.VCPU, 1), EnvMemoryMiB: max(es.MemoryMB, 1), EnvSlots: max(es.Slots, 1)}
				if ok && es.VCPU == 0 {
					sv.EnvVCPU, sv.EnvMemoryMiB = float64(max(mv.VCPUs, 1)), mv.MemoryMB
				}
				strays[stray] = sv
				strayKeys = append(strayKeys, stray)
			}
			if at, ok := l.serving[key+"@"+es.Revision]; ok && now.Sub(at) < l.rolloutGrace() && est != scaler.EnvDraining {
				// It served until a moment ago: hold it a little longer.
				sv.MinEnvironments++
				sv.MaxEnvironments++
			}
			sv.Environments = append(sv.Environments, e)
		}
	}
	// Starts the agents have not reported yet count as initialising.
	l.mu.Lock()
	for id, s := range l.starting {
		if mv, ok := byKey[s.version]; !seen[id] && ok && s.revision == mv.Version.RevisionId {
			envsOf[s.version] = append(envsOf[s.version], scaler.Environment{ID: id, Instance: s.instance, State: scaler.EnvInitializing})
		}
	}
	l.mu.Unlock()
	for _, mv := range versions {
		v := mv.Version
		key := deciderKey(mv)
		minEnv, maxEnv := mv.MinEnvironments, mv.MaxEnvironments
		if _, failed := l.failed[key+"@"+v.RevisionId]; failed {
			minEnv, maxEnv = 0, 0 // its init fails: start nothing more until it changes
		}
		sv := scaler.Version{
			Key: key, MinEnvironments: minEnv, MaxEnvironments: maxEnv,
			EnvVCPU: float64(max(mv.VCPUs, 1)), EnvMemoryMiB: mv.MemoryMB, EnvSlots: max(mv.MaxConcurrency, 1),
			Environments: envsOf[key],
		}
		if !mv.Replaced {
			sv.Unserved = l.unserved(key)
		}
		// Sized for the traffic it is about to take over.
		for _, c := range mv.Carries {
			ck := managedVersionKey(c.FunctionName, c.Version)
			if cur, ok := byKey[ck]; !ok || cur.Version.RevisionId != c.RevisionId {
				ck += "@" + c.RevisionId
			}
			cmv := byKey[ck]
			for _, e := range envsOf[ck] {
				if e.State == scaler.EnvReady {
					sv.Carried += e.InFlight
					sv.CarriedVCPU += e.CPUUtilization * float64(max(cmv.VCPUs, 1))
				}
			}
		}
		snap.Versions = append(snap.Versions, sv)
	}
	for _, k := range strayKeys {
		snap.Versions = append(snap.Versions, *strays[k])
	}
	return snap, byKey
}

// staleness says why environment es of mv on instance in should move to a
// newer runtime build, "" when it should not: only versions that take runtime
// updates (Auto) move, when their instance has a newer build of their runtime
// or is outdated (provided runtimes use nothing of shoal's bootstraps, so
// their environments leave an outdated instance whatever their mode).
func staleness(mv registry.ManagedVersion, es fleetpkg.EnvStatus, in fleetpkg.Instance, outdated string) string {
	kind := runtimes.KindOf(mv.Version.Runtime)
	if outdated != "" && kind == runtimes.Provided {
		return outdated
	}
	if mv.UpdateRuntimeOn != "" && mv.UpdateRuntimeOn != registry.UpdateRuntimeAuto {
		return ""
	}
	if outdated != "" {
		return outdated
	}
	if cur := in.Runtimes[kind.String()]; es.Build != "" && cur != "" && es.Build != cur {
		return fmt.Sprintf("a new build of %s is on instance %s", mv.Version.Runtime, in.ID)
	}
	return ""
}

// bootstraps returns, by host, the bootstraps the fleet launches agents with
// now: the loop's Bootstrap when set, else those of the newest running
// instance of the host (any capacity provider's), so that an instance is
// outdated only when a newer one shows that something newer is launched.
func (l *scaleLoop) bootstraps(cp string, instances []fleetpkg.Instance) map[string]string {
	out := map[string]string{}
	newest := map[string]time.Time{}
	for _, in := range instances {
		if l.cfg.Bootstrap != "" {
			out[in.Host] = l.cfg.Bootstrap
			continue
		}
		if in.State != fleetpkg.StateRunning || in.Bootstrap == "" {
			continue
		}
		if at, ok := newest[in.Host]; !ok || in.LaunchedAt.After(at) {
			newest[in.Host], out[in.Host] = in.LaunchedAt, in.Bootstrap
		}
	}
	return out
}

// unserved turns the throttles since the last tick into concurrency: throttled
// invocations × their mean duration ÷ the interval.
func (l *scaleLoop) unserved(key string) float64 {
	served, busy, throttled := l.deps.Demand(key)
	last := l.demand[key]
	l.demand[key] = demandSample{served: served, busy: busy, throttled: throttled}
	dThrottled := throttled - last.throttled
	if dThrottled <= 0 {
		return 0
	}
	mean := 100 * time.Millisecond // when nothing was served yet, assume a short invocation
	if dServed := served - last.served; dServed > 0 {
		mean = (busy - last.busy) / time.Duration(dServed)
	}
	return float64(dThrottled) * mean.Seconds() / l.cfg.Interval.Seconds()
}

// apply carries out a plan: instances are launched at once; environments start
// and stop in the background.
func (l *scaleLoop) apply(ctx context.Context, cp string, plan scaler.Plan, byKey map[string]registry.ManagedVersion, instances []fleetpkg.Instance) {
	for _, a := range plan.AddInstances {
		if err := l.deps.Fleet.Launch(ctx, fleetpkg.InstanceSpec{CapacityProvider: cp, Type: a.Type, Zone: a.Zone}); err != nil {
			l.log.Warn("launching an instance", "capacity_provider", cp, "type", a.Type, "zone", a.Zone, "err", err)
			continue
		}
		l.log.Info("launched an instance", "capacity_provider", cp, "type", a.Type, "zone", a.Zone, "reason", a.Reason)
	}
	for _, a := range plan.AddEnvironments {
		mv, ok := byKey[a.Version]
		if !ok {
			continue
		}
		l.startEnvironment(ctx, cp, mv, a)
	}
	for _, r := range plan.RemoveEnvironments {
		l.stop(r.Environment, func(ctx context.Context) error {
			return l.deps.Environments.StopEnvironment(ctx, r.Instance, r.Environment)
		}, "removing an environment", r.Reason)
	}
	for _, d := range plan.DrainInstances {
		l.stop(d.Instance, func(ctx context.Context) error { return l.deps.Fleet.Terminate(ctx, d.Instance) },
			"draining an instance", d.Reason)
	}
}

func (l *scaleLoop) startEnvironment(ctx context.Context, cp string, mv registry.ManagedVersion, a scaler.AddEnvironment) {
	v := mv.Version
	spec := l.deps.Spec(v)
	spec.MemoryMB = mv.MemoryMB
	spec.CPUs = float64(mv.VCPUs)
	spec.MaxConcurrency = mv.MaxConcurrency
	spec.InitType = env.InitManagedInstances
	spec.Isolate = l.cfg.Isolate
	id := "e-" + randid.Hex(8)
	l.mu.Lock()
	l.starting[id] = starting{version: a.Version, revision: v.RevisionId, instance: a.Instance, zone: a.Zone, since: l.deps.Clock.Now()}
	l.mu.Unlock()
	l.log.Info("starting an environment", "capacity_provider", cp, "version", a.Version, "instance", a.Instance,
		"environment", id, "reason", a.Reason)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var err error
		if perr := guard.Run(l.log, "starting an environment", func() {
			_, err = l.deps.Environments.StartEnvironment(context.WithoutCancel(ctx), a.Instance, agent.StartEnv{
				EnvID: id, CapacityProvider: cp, CodeSha256: v.CodeSha256, Revision: v.RevisionId, Spec: spec,
			})
		}); perr != nil {
			err = perr
		}
		l.mu.Lock()
		delete(l.starting, id)
		l.mu.Unlock()
		var ie *env.InitError
		if errors.As(err, &ie) {
			l.log.Warn("environment failed to initialise", "version", a.Version, "environment", id, "err", err)
			l.mu.Lock()
			l.failed[a.Version+"@"+v.RevisionId] = failure{reason: ie.ErrorType + ": " + ie.Message, code: initFailureCode(ie.ErrorType)}
			l.mu.Unlock()
			return
		}
		if err != nil {
			l.log.Warn("starting an environment", "version", a.Version, "environment", id, "err", err)
		}
	}()
}

// stop runs a stop in the background, once per id at a time.
func (l *scaleLoop) stop(id string, f func(context.Context) error, what, reason string) {
	l.mu.Lock()
	if _, ok := l.stopping[id]; ok {
		l.mu.Unlock()
		return
	}
	l.stopping[id] = l.deps.Clock.Now()
	l.mu.Unlock()
	l.log.Info(what, "id", id, "reason", reason)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		var err error
		if perr := guard.Run(l.log, what, func() { err = f(ctx) }); perr != nil {
			err = perr
		}
		if err != nil {
			l.log.Warn(what, "id", id, "err", err)
		}
		l.mu.Lock()
		delete(l.stopping, id)
		l.mu.Unlock()
	}()
}

// cleanUp terminates lost instances (their records and cgroups go), instances of
// capacity providers that no longer exist, and stops failed environments.
func (l *scaleLoop) cleanUp(ctx context.Context, instances []fleetpkg.Instance, cps []*registry.CapacityProvider) {
	exists := map[string]bool{}
	for _, cp := range cps {
		exists[cp.Name()] = true
	}
	for _, in := range instances {
		switch {
		case in.State == fleetpkg.StateLost:
			l.stop(in.ID, func(ctx context.Context) error { return l.deps.Fleet.Terminate(ctx, in.ID) },
				"cleaning up a lost instance", in.StateReason)
		case !exists[in.CapacityProvider] && in.State != fleetpkg.StateTerminated:
			l.stop(in.ID, func(ctx context.Context) error { return l.deps.Fleet.Terminate(ctx, in.ID) },
				"draining an instance", "its capacity provider was deleted")
		default:
			for _, es := range in.Environments {
				if es.State == "failed" {
					l.stop(es.ID, func(ctx context.Context) error {
						return l.deps.Environments.StopEnvironment(ctx, in.ID, es.ID)
					}, "removing a failed environment", es.Error)
				}
			}
		}
	}
}

// report writes each version's state: Pending until its minimum environments are
// ready, then Active; Deactivating then Deactivated when min = max = 0; Failed
// when its environments cannot initialise or the capacity provider's
// MaxVCpuCount cannot hold its minimum.
func (l *scaleLoop) report(ctx context.Context, versions []registry.ManagedVersion, snap scaler.Snapshot, cfg scaler.Config) {
	for i, mv := range versions {
		if mv.Replaced {
			continue // its state is its successor's to report
		}
		v := mv.Version
		key := managedVersionKey(v.FunctionName, v.Version)
		sv := snap.Versions[i]
		ready, live := 0, 0
		for _, e := range sv.Environments {
			if e.State == scaler.EnvReady {
				ready++
			}
			if e.State != scaler.EnvDraining {
				live++
			}
		}
		state, reason, code := mv.State, "", ""
		l.mu.Lock()
		why, failed := l.failed[key+"@"+v.RevisionId]
		l.mu.Unlock()
		holds := cfg.Holds(float64(mv.VCPUs), mv.MemoryMB)
		// A version about to take over others' traffic is ready once it has
		// the slots for what they have in flight, as far as it may grow.
		need := max(mv.MinEnvironments, int(math.Ceil(sv.Carried/float64(max(sv.EnvSlots, 1))-1e-9)))
		need = min(need, max(mv.MinEnvironments, min(mv.MaxEnvironments, holds)))
		switch {
		case failed:
			state, reason, code = registry.StateFailed, why.reason, why.code
		case mv.MinEnvironments > holds:
			// The capacity provider's MaxVCpuCount can never hold the minimum:
			// the version fails until the provider's limit is raised.
			state, code = registry.StateFailed, ReasonScalingLimit
			reason = fmt.Sprintf("The capacity provider's MaxVCpuCount (%d) holds at most %d execution environments of %d vCPU and %d MB (on %s instances), fewer than the version's minimum of %d.",
				cfg.MaxVCPU, holds, mv.VCPUs, mv.MemoryMB, cfg.Instance.Type, mv.MinEnvironments)
		case mv.MinEnvironments == 0 && mv.MaxEnvironments == 0:
			state = registry.StateDeactivated
			if live > 0 || len(sv.Environments) > 0 {
				state = registry.StateDeactivating
			}
		case ready >= need && ready > 0:
			state = registry.StateActive
		case mv.State == registry.StateActive:
			// An active version stays active while the decider replaces what
			// it lost; until then the router throttles (429), as Lambda does
			// when capacity is short, rather than answering Pending (409).
		default:
			state = registry.StatePending
		}
		// An active version whose scaling config was put again is reported
		// once its environments are within the new bounds, so that the
		// applied config follows the requested one.
		reapply := state == registry.StateActive && !mv.AppliedIsRequested &&
			ready >= mv.MinEnvironments && live <= mv.MaxEnvironments
		l.setStatus(ctx, mv, registry.VersionStatus{State: state, Reason: reason, ReasonCode: code}, reapply)
	}
}

// setStatus reports a version's status unless it is the one the version
// already shows; force reports it anyway.
func (l *scaleLoop) setStatus(ctx context.Context, mv registry.ManagedVersion, st registry.VersionStatus, force bool) {
	v := mv.Version
	key := managedVersionKey(v.FunctionName, v.Version)
	if !force && st.State == mv.State && l.states[key] == st.State && (st.State != registry.StateFailed || st.Reason == mv.StateReason) {
		return
	}
	if err := l.deps.Registry.SetVersionStatus(ctx, v.FunctionName, v.Version, st); err != nil {
		l.log.Warn("reporting a version's state", "version", key, "err", err)
		return
	}
	l.states[key] = st.State
}

// failure is why a version's environments failed to initialise, with Lambda's
// StateReasonCode for it.
type failure struct{ reason, code string }

// reportUnplaceable fails the versions of a capacity provider that cannot
// scale at all: no allowed instance type holds their environments, or one
// instance is beyond its MaxVCpuCount.
func (l *scaleLoop) reportUnplaceable(ctx context.Context, versions []registry.ManagedVersion, cause error) {
	code := ReasonInsufficientCapacity
	if errors.Is(cause, scaler.ErrScalingLimit) {
		code = ReasonScalingLimit
	}
	st := registry.VersionStatus{State: registry.StateFailed, Reason: strings.TrimPrefix(cause.Error(), "scaler: "), ReasonCode: code}
	for _, mv := range versions {
		if mv.MinEnvironments == 0 && mv.MaxEnvironments == 0 || mv.Replaced {
			continue // deactivated: it needs no capacity
		}
		l.setStatus(ctx, mv, st, false)
	}
}

// Lambda's StateReasonCode values of a Managed Instances version that failed.
const (
	ReasonScalingLimit         = "CapacityProviderScalingLimitExceeded"
	ReasonInsufficientCapacity = "InsufficientCapacity"
)

// initFailureCode is the StateReasonCode of a version whose environments
// failed to initialise with errorType.
func initFailureCode(errorType string) string {
	switch errorType {
	case "Sandbox.Timedout":
		return "FunctionError.InitTimeout"
	case "Runtime.InvalidEntrypoint":
		return "FunctionError.InvalidEntryPoint"
	case "Runtime.OutOfMemory":
		return "FunctionError.InitResourceExhausted"
	default:
		return "FunctionError.RuntimeInitError"
	}
}
