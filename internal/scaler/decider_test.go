package scaler

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fleet is a small model of a capacity provider for driving the decider: it
// applies plans with launch and init delays, spreads demand over ready
// environments and counts what it could not serve.
type fleet struct {
	t         *testing.T
	d         *Decider
	now       time.Time
	launch    time.Duration // instance boot
	init      time.Duration // environment init
	cpuPerInv float64       // vCPU one in-flight invocation uses

	insts  []*simInst
	envs   []*simEnv
	nextID int
	ver    Version // shape and scaling config; Environments rebuilt per snapshot

	throttled   float64 // concurrency-seconds refused
	unserved    float64 // refused concurrency in the last interval
	plans       []Plan
	lastTargets []Target
}

type simInst struct {
	id, zone   string
	readyAt    time.Time
	launchedAt time.Time
	outdated   string
	draining   bool
}

type simEnv struct {
	id, inst string
	readyAt  time.Time
	inFlight float64
	cpu      float64
	stale    string
}

func newFleet(t *testing.T, cfg Config, v Version) *fleet {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fleet{t: t, d: d, now: t0, launch: 90 * time.Second, init: 20 * time.Second, cpuPerInv: 0.05, ver: v}
}

func (f *fleet) id(p string) string { f.nextID++; return fmt.Sprintf("%s-%03d", p, f.nextID) }

func (f *fleet) snapshot() Snapshot {
	var s Snapshot
	for _, in := range f.insts {
		st := InstanceRunning
		if in.draining {
			st = InstanceDraining
		} else if f.now.Before(in.readyAt) {
			st = InstancePending
		}
		s.Instances = append(s.Instances, Instance{ID: in.id, Zone: in.zone, Type: "m7i.large", State: st, VCPU: 2, MemoryMiB: 8192,
			LaunchedAt: in.launchedAt, Outdated: in.outdated})
	}
	v := f.ver
	v.Environments = nil
	for _, e := range f.envs {
		st := EnvReady
		if f.now.Before(e.readyAt) {
			st = EnvInitializing
		}
		v.Environments = append(v.Environments, Environment{ID: e.id, Instance: e.inst, State: st, InFlight: e.inFlight, CPUUtilization: e.cpu, Stale: e.stale})
	}
	v.Unserved = f.unserved
	s.Versions = []Version{v}
	return s
}

func (f *fleet) apply(p Plan) {
	for _, a := range p.AddInstances {
		f.insts = append(f.insts, &simInst{id: f.id("i"), zone: a.Zone, readyAt: f.now.Add(f.launch), launchedAt: f.now})
	}
	for _, a := range p.AddEnvironments {
		found := false
		for _, in := range f.insts {
			if in.id == a.Instance && !in.draining && !f.now.Before(in.readyAt) {
				found = true
				if in.outdated != "" {
					f.t.Fatalf("plan places an environment on %s, which is outdated", a.Instance)
				}
			}
		}
		if !found {
			f.t.Fatalf("plan places an environment on %s, which is not running", a.Instance)
		}
		f.envs = append(f.envs, &simEnv{id: f.id("e"), inst: a.Instance, readyAt: f.now.Add(f.init)})
	}
	deactivated := f.ver.MinEnvironments == 0 && f.ver.MaxEnvironments == 0
	scaledIn := 0
	for _, r := range p.RemoveEnvironments {
		if !r.Replaced {
			scaledIn++
		}
	}
	if scaledIn > max(1, len(f.envs)/10) && !deactivated {
		f.t.Fatalf("one plan scales in %d of %d environments", scaledIn, len(f.envs))
	}
	for _, r := range p.RemoveEnvironments {
		kept := f.envs[:0]
		for _, e := range f.envs {
			if e.id != r.Environment {
				kept = append(kept, e)
			}
		}
		f.envs = kept
	}
	for _, dr := range p.DrainInstances {
		kept := f.insts[:0]
		for _, in := range f.insts {
			if in.id == dr.Instance {
				for _, e := range f.envs {
					if e.inst == in.id {
						f.t.Fatalf("drained instance %s still hosts %s", in.id, e.id)
					}
				}
				continue
			}
			kept = append(kept, in)
		}
		f.insts = kept
	}
	for _, r := range [][]string{reasonsOf(p)} {
		for _, why := range r {
			if why == "" {
				f.t.Fatalf("plan action without a reason: %+v", p)
			}
		}
	}
}

func reasonsOf(p Plan) []string {
	var r []string
	for _, a := range p.AddInstances {
		r = append(r, a.Reason)
	}
	for _, a := range p.AddEnvironments {
		r = append(r, a.Reason)
	}
	for _, a := range p.RemoveEnvironments {
		r = append(r, a.Reason)
	}
	for _, a := range p.DrainInstances {
		r = append(r, a.Reason)
	}
	return r
}

// run drives the fleet for d in one-second steps with concurrency demand(t);
// the decider runs every 10 seconds.
func (f *fleet) run(d time.Duration, demand func(time.Duration) float64) {
	end := f.now.Add(d)
	var refused, served float64
	for tick := 0; f.now.Before(end); tick++ {
		c := demand(f.now.Sub(t0))
		var ready []*simEnv
		for _, e := range f.envs {
			if !f.now.Before(e.readyAt) {
				ready = append(ready, e)
			}
		}
		capSlots := float64(len(ready) * f.ver.EnvSlots)
		capCPU := float64(len(ready)) * f.ver.EnvVCPU / f.cpuPerInv
		now := math.Min(c, math.Min(capSlots, capCPU))
		served += now
		if c > now+1e-9 {
			f.throttled += c - now
			refused += c - now
		}
		if tick%10 == 9 {
			// What the agents report: in-flight and CPU averaged over the interval.
			for _, e := range ready {
				e.inFlight = served / 10 / float64(len(ready))
				e.cpu = e.inFlight * f.cpuPerInv / f.ver.EnvVCPU
			}
			f.unserved = refused / 10
			refused, served = 0, 0
			p := f.d.Decide(f.snapshot(), f.now)
			f.plans = append(f.plans, p)
			f.lastTargets = p.Targets
			f.apply(p)
		}
		f.now = f.now.Add(time.Second)
	}
}

func (f *fleet) readyEnvs() int {
	n := 0
	for _, e := range f.envs {
		if !f.now.Before(e.readyAt) {
			n++
		}
	}
	return n
}

func (f *fleet) zones() map[string]int {
	z := map[string]int{}
	for _, in := range f.insts {
		z[in.zone]++
	}
	return z
}

func autoCfg() Config {
	return Config{Instance: InstanceShape{Type: "m7i.large", VCPU: 2, MemoryMiB: 8192}}
}

// One environment: 1 vCPU, 2 GiB, 16 slots.
func version(min, max int) Version {
	return Version{Key: "fn:1", MinEnvironments: min, MaxEnvironments: max, EnvVCPU: 1, EnvMemoryMiB: 2048, EnvSlots: 16}
}

func TestAutoAbsorbsDoublingWithinFiveMinutes(t *testing.T) {
	tests := []struct {
		name      string
		demand    func(time.Duration) float64
		throttles bool
	}{
		{"2x step", step(30*time.Minute, 60, 120), false},
		{"2x ramp over 5 minutes", ramp(30*time.Minute, 5*time.Minute, 60, 120), false},
		{"2x ramp over 1 minute", ramp(30*time.Minute, time.Minute, 60, 120), false},
		{"3x step", step(30*time.Minute, 60, 180), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, autoCfg(), version(3, 0))
			// Traffic arrives on a fresh fleet at once (an infinite step), so the
			// first minutes throttle; from then on the fleet holds its headroom.
			f.run(5*time.Minute, tc.demand)
			f.throttled = 0
			f.run(25*time.Minute, tc.demand)
			if f.throttled > 0 {
				t.Fatalf("throttled %.1f concurrency-seconds at steady traffic", f.throttled)
			}
			if capSlots := f.readyEnvs() * 16; capSlots != 128 {
				t.Fatalf("steady at 60 in-flight with %d slots; want 128 (⌈2 × 60 / 16⌉ environments)", capSlots)
			}
			f.run(20*time.Minute, tc.demand)
			if got := f.throttled > 0; got != tc.throttles {
				t.Fatalf("throttled %.1f concurrency-seconds; want throttles: %v", f.throttled, tc.throttles)
			}
			// After it settles, the fleet has its headroom back: capacity ≥ 2× demand.
			if capSlots := f.readyEnvs() * 16; float64(capSlots) < 2*tc.demand(50*time.Minute) {
				t.Fatalf("settled at %d slots for demand %.0f", capSlots, tc.demand(50*time.Minute))
			}
		})
	}
}

func TestAutoMinimumFleetAcrossZones(t *testing.T) {
	f := newFleet(t, autoCfg(), version(3, 0))
	f.run(5*time.Minute, func(time.Duration) float64 { return 0 })
	if len(f.insts) != 3 || len(f.envs) != 3 {
		t.Fatalf("idle fleet: %d instances, %d environments; want 3 and 3", len(f.insts), len(f.envs))
	}
	z := f.zones()
	if len(z) != 3 {
		t.Fatalf("instances in zones %v; want one in each of 3", z)
	}
	envZones := map[string]int{}
	for _, e := range f.envs {
		for _, in := range f.insts {
			if in.id == e.inst {
				envZones[in.zone]++
			}
		}
	}
	if len(envZones) != 3 {
		t.Fatalf("environments in zones %v; want spread over 3", envZones)
	}
}

func TestSustainedDropScalesInGradually(t *testing.T) {
	f := newFleet(t, autoCfg(), version(3, 0))
	high := func(time.Duration) float64 { return 400 }
	f.run(15*time.Minute, high)
	peakEnvs, peakInsts := len(f.envs), len(f.insts)
	if peakEnvs < 50 || f.readyEnvs()*16 < 800 {
		t.Fatalf("at 400 in-flight: %d environments", peakEnvs)
	}
	low := func(time.Duration) float64 { return 40 }
	f.throttled = 0
	// Within the peak window nothing is removed.
	f.run(4*time.Minute, low)
	if len(f.envs) != peakEnvs {
		t.Fatalf("scaled in to %d of %d within the peak window", len(f.envs), peakEnvs)
	}
	prev := len(f.envs)
	var counts []int
	for i := 0; i < 40; i++ {
		f.run(time.Minute, low)
		counts = append(counts, len(f.envs))
		if prev-len(f.envs) > max(1, prev/10) {
			t.Fatalf("minute %d: removed %d of %d environments at once", i, prev-len(f.envs), prev)
		}
		prev = len(f.envs)
	}
	want := 5 // ⌈2 × 40 / 16⌉
	if got := len(f.envs); got != want {
		t.Fatalf("after 40 minutes: %d environments (trajectory %v); want %d", got, counts, want)
	}
	if f.throttled > 0 {
		t.Fatalf("throttled %.1f while scaling in", f.throttled)
	}
	if len(f.insts) >= peakInsts || len(f.insts) < 3 {
		t.Fatalf("instances %d → %d; want fewer, at least 3", peakInsts, len(f.insts))
	}
	for _, p := range f.plans {
		if len(p.DrainInstances) > 1 {
			t.Fatalf("drained %d instances in one plan", len(p.DrainInstances))
		}
	}
}

func TestManualConvergesToCPUTarget(t *testing.T) {
	for _, target := range []float64{30, 50, 70} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			cfg := autoCfg()
			cfg.Mode, cfg.TargetCPUPercent = ModeManual, target
			f := newFleet(t, cfg, version(3, 0))
			f.cpuPerInv = 0.5 // CPU-bound: 200 in-flight use 100 vCPU
			demand := func(time.Duration) float64 { return 40 }
			f.run(10*time.Minute, demand)
			f.run(20*time.Minute, func(time.Duration) float64 { return 200 })
			var used, alloc float64
			for _, e := range f.envs {
				used += e.cpu * f.ver.EnvVCPU
				alloc += f.ver.EnvVCPU
			}
			got := 100 * used / alloc
			if math.Abs(got-target) > 2 {
				t.Fatalf("CPU utilisation %.1f%% with %d environments; want %.0f%% ± 2", got, len(f.envs), target)
			}
			if tg := f.lastTargets[0]; tg.Desired != len(f.envs) || tg.ForCPU != tg.Desired {
				t.Fatalf("target %+v with %d environments", f.lastTargets[0], len(f.envs))
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("max environments", func(t *testing.T) {
		f := newFleet(t, autoCfg(), version(3, 6))
		f.run(10*time.Minute, func(time.Duration) float64 { return 1000 })
		if len(f.envs) != 6 {
			t.Fatalf("%d environments; want the maximum 6", len(f.envs))
		}
		if f.lastTargets[0].Bound != BoundMax {
			t.Fatalf("target %+v; want it bound by the maximum", f.lastTargets[0])
		}
		var last string
		for _, p := range f.plans {
			for _, a := range p.AddEnvironments {
				last = a.Reason
			}
		}
		if !strings.Contains(last, "capped at the maximum 6") {
			t.Fatalf("last scale-out reason %q", last)
		}
	})
	t.Run("min environments", func(t *testing.T) {
		f := newFleet(t, autoCfg(), version(8, 0))
		f.run(10*time.Minute, func(time.Duration) float64 { return 1 })
		if len(f.envs) != 8 {
			t.Fatalf("%d environments; want the minimum 8", len(f.envs))
		}
	})
	t.Run("MaxVCpuCount", func(t *testing.T) {
		cfg := autoCfg()
		cfg.MaxVCPU = 10
		f := newFleet(t, cfg, version(3, 0))
		f.run(10*time.Minute, func(time.Duration) float64 { return 1000 })
		if len(f.insts) != 5 || len(f.envs) != 10 {
			t.Fatalf("%d instances, %d environments; want 5 and 10 under 10 vCPUs", len(f.insts), len(f.envs))
		}
		if !strings.Contains(f.lastTargets[0].Reason, "MaxVCpuCount 10 reached") {
			t.Fatalf("reason %q", f.lastTargets[0].Reason)
		}
	})
	t.Run("deactivated", func(t *testing.T) {
		f := newFleet(t, autoCfg(), version(3, 0))
		f.run(5*time.Minute, func(time.Duration) float64 { return 10 })
		f.ver.MinEnvironments, f.ver.MaxEnvironments = 0, 0
		f.run(10*time.Second, func(time.Duration) float64 { return 0 })
		if len(f.envs) != 0 {
			t.Fatalf("deactivated: %d environments left after one decision; want none", len(f.envs))
		}
		f.run(10*time.Minute, func(time.Duration) float64 { return 0 })
		if len(f.envs) != 0 || len(f.insts) != 0 {
			t.Fatalf("deactivated: %d environments on %d instances; want none", len(f.envs), len(f.insts))
		}
		// Reactivating brings the minimum fleet back.
		f.ver.MinEnvironments, f.ver.MaxEnvironments = 3, 0
		f.run(5*time.Minute, func(time.Duration) float64 { return 10 })
		if len(f.envs) != 3 || len(f.insts) != 3 || len(f.zones()) != 3 {
			t.Fatalf("reactivated: %d environments on %d instances in %d zones; want 3 on 3 in 3", len(f.envs), len(f.insts), len(f.zones()))
		}
	})
}

func TestConfigValidate(t *testing.T) {
	shape := InstanceShape{Type: "m7i.large", VCPU: 2, MemoryMiB: 8192}
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Instance: shape}, ""},
		{"manual without target", Config{Mode: ModeManual, Instance: shape}, "target CPU"},
		{"bad mode", Config{Mode: "Sometimes", Instance: shape}, "unknown scaling mode"},
		{"no instance", Config{}, "instance shape"},
		{"max vcpu", Config{MaxVCPU: 1, Instance: shape}, "MaxVCpuCount"},
		{"min fleet over max", Config{MaxVCPU: 4, MinInstances: 3, Instance: shape}, "exceed MaxVCpuCount"},
		{"default min fleet within max", Config{MaxVCPU: 4, Instance: shape}, ""},
		{"one instance over max", Config{MaxVCPU: 2, Instance: InstanceShape{Type: "m7i.xlarge", VCPU: 4, MemoryMiB: 16384}}, "exceed MaxVCpuCount"},
		{"headroom", Config{Headroom: 0.5, Instance: shape}, "headroom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestFleetLimits: the default minimum fleet shrinks to what MaxVCpuCount
// allows, and Holds counts the environments the largest fleet takes.
func TestFleetLimits(t *testing.T) {
	shape := InstanceShape{Type: "m7i.large", VCPU: 2, MemoryMiB: 8192}
	for _, tc := range []struct {
		max, wantMin int
	}{{2, 1}, {4, 2}, {5, 2}, {6, 3}, {400, 3}} {
		if got := (Config{MaxVCPU: tc.max, Instance: shape}).WithDefaults().MinInstances; got != tc.wantMin {
			t.Errorf("MaxVCPU %d: minimum fleet %d, want %d", tc.max, got, tc.wantMin)
		}
	}
	if _, err := New(Config{MaxVCPU: 2, Instance: InstanceShape{Type: "m7i.xlarge", VCPU: 4, MemoryMiB: 16384}}); !errors.Is(err, ErrScalingLimit) {
		t.Errorf("one instance over MaxVCpuCount: %v, want ErrScalingLimit", err)
	}
	for _, tc := range []struct {
		max, reserveMiB int
		vcpu            float64
		mib, want       int
	}{
		{2, 0, 1, 2048, 2},     // one instance, two by vCPU
		{6, 0, 1, 2048, 6},     // three instances
		{7, 0, 1, 2048, 6},     // a partial instance does not count
		{6, 0, 0.5, 4096, 6},   // memory bounds: two per instance
		{6, 1024, 1, 4096, 3},  // the reserve leaves one by memory
		{400, 0, 2, 4096, 200}, // one per instance by vCPU
	} {
		c := Config{MaxVCPU: tc.max, Instance: shape, ReservedMemoryMiB: tc.reserveMiB}
		if got := c.Holds(tc.vcpu, tc.mib); got != tc.want {
			t.Errorf("MaxVCPU %d, reserve %d MiB: holds %d environments of %g vCPU and %d MiB, want %d", tc.max, tc.reserveMiB, got, tc.vcpu, tc.mib, tc.want)
		}
	}
}

func step(at time.Duration, from, to float64) func(time.Duration) float64 {
	return func(t time.Duration) float64 {
		if t < at {
			return from
		}
		return to
	}
}

func ramp(at, over time.Duration, from, to float64) func(time.Duration) float64 {
	return func(t time.Duration) float64 {
		switch {
		case t < at:
			return from
		case t >= at+over:
			return to
		}
		return from + (to-from)*float64(t-at)/float64(over)
	}
}

func TestVersionsShareTheFleet(t *testing.T) {
	d, err := New(autoCfg())
	if err != nil {
		t.Fatal(err)
	}
	// Three running instances of 2 vCPU: room for six 1-vCPU environments.
	s := Snapshot{}
	for i, z := range DefaultZones {
		s.Instances = append(s.Instances, Instance{ID: fmt.Sprintf("i-%d", i), Zone: z, State: InstanceRunning, VCPU: 2, MemoryMiB: 8192})
	}
	a := version(3, 0)
	a.Key = "a:1"
	b := version(2, 0)
	b.Key, b.EnvVCPU, b.EnvMemoryMiB = "b:1", 2, 4096
	s.Versions = []Version{a, b}
	p := d.Decide(s, t0)
	perVersion := map[string]map[string]int{}
	for _, e := range p.AddEnvironments {
		if perVersion[e.Version] == nil {
			perVersion[e.Version] = map[string]int{}
		}
		perVersion[e.Version][e.Zone]++
	}
	if len(perVersion["a:1"]) != 3 {
		t.Fatalf("a:1 placed in zones %v; want one in each of 3", perVersion["a:1"])
	}
	// b needs 2 × 2 vCPU: with a's three on the three instances, neither fits now,
	// so the fleet grows by the instances b needs.
	placedB := perVersion["b:1"]
	if n := placedB["zone-a"] + placedB["zone-b"] + placedB["zone-c"]; n+p.Targets[1].Unplaced != 2 {
		t.Fatalf("b:1 placed %d and left %d unplaced; want 2 in all", n, p.Targets[1].Unplaced)
	}
	if got := len(p.AddInstances); got != p.Targets[1].Unplaced {
		t.Fatalf("%d instances asked for %d unplaced 2-vCPU environments", got, p.Targets[1].Unplaced)
	}
	for _, in := range p.AddInstances {
		if !strings.HasPrefix(in.Reason, "room for scale out b:1") {
			t.Fatalf("instance reason %q", in.Reason)
		}
	}
}

// TestMinimumWaitsForTheSlowZone: of the three instances of a new fleet, the
// one in zone-b boots last. The version's minimum of three environments
// waits for it rather than putting two in one zone.
func TestMinimumWaitsForTheSlowZone(t *testing.T) {
	d, err := New(autoCfg())
	if err != nil {
		t.Fatal(err)
	}
	v := version(3, 0)
	inst := func(id, zone string, st InstanceState) Instance {
		return Instance{ID: id, Zone: zone, Type: "m7i.large", State: st, VCPU: 2, MemoryMiB: 8192}
	}
	s := Snapshot{
		Instances: []Instance{inst("i-a", "zone-a", InstanceRunning), inst("i-b", "zone-b", InstancePending), inst("i-c", "zone-c", InstanceRunning)},
		Versions:  []Version{v},
	}
	placed := func(p Plan) []string {
		var out []string
		for _, a := range p.AddEnvironments {
			out = append(out, a.Instance)
		}
		return out
	}
	p := d.Decide(s, t0)
	if got := strings.Join(placed(p), ","); got != "i-a,i-c" {
		t.Fatalf("with zone-b booting, environments on %s; want i-a,i-c", got)
	}
	if len(p.AddInstances) != 0 {
		t.Fatalf("launches %+v: the booting instance has room", p.AddInstances)
	}
	// zone-b's instance runs: the third environment goes there.
	s.Instances[1].State = InstanceRunning
	s.Versions[0].Environments = []Environment{{ID: "e-1", Instance: "i-a", State: EnvInitializing}, {ID: "e-2", Instance: "i-c", State: EnvInitializing}}
	if got := strings.Join(placed(d.Decide(s, t0.Add(10*time.Second))), ","); got != "i-b" {
		t.Fatalf("once zone-b runs, environments on %s; want i-b", got)
	}
	// Past the minimum, scaling out does not wait for booting instances.
	d2, err := New(autoCfg())
	if err != nil {
		t.Fatal(err)
	}
	busy := version(2, 0)
	busy.Environments = []Environment{{ID: "e-1", Instance: "i-a", State: EnvReady, InFlight: 16}, {ID: "e-2", Instance: "i-c", State: EnvReady, InFlight: 16}}
	s = Snapshot{
		Instances: []Instance{inst("i-a", "zone-a", InstanceRunning), inst("i-b", "zone-b", InstancePending),
			inst("i-c", "zone-c", InstanceRunning), inst("i-d", "zone-a", InstanceRunning)},
		Versions: []Version{busy},
	}
	if got := placed(d2.Decide(s, t0)); len(got) == 0 {
		t.Fatal("scaling out past the minimum placed nothing; want running instances at once")
	}
}
