package scaler

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRotationReplacesEveryInstance: with a maximum lifetime, every instance
// is replaced in turn — a replacement first, then the old one's environments
// drain and it goes — and steady traffic is never short of capacity.
func TestRotationReplacesEveryInstance(t *testing.T) {
	cfg := autoCfg()
	cfg.MaxInstanceLifetime = 10 * time.Minute
	f := newFleet(t, cfg, version(3, 0))
	demand := func(time.Duration) float64 { return 60 }
	f.run(5*time.Minute, demand)
	first := map[string]bool{}
	for _, in := range f.insts {
		first[in.id] = true
	}
	if len(first) < 4 {
		t.Fatalf("%d instances at 60 in-flight; want at least 4", len(first))
	}
	f.throttled = 0
	f.plans = nil
	f.run(40*time.Minute, demand)
	for _, in := range f.insts {
		if first[in.id] {
			t.Errorf("instance %s (launched %v ago) was never replaced", in.id, f.now.Sub(in.launchedAt))
		}
		if age := f.now.Sub(in.launchedAt); age > cfg.MaxInstanceLifetime+5*time.Minute {
			t.Errorf("instance %s is %v old", in.id, age)
		}
	}
	if f.throttled > 0 {
		t.Fatalf("throttled %.1f concurrency-seconds while rotating", f.throttled)
	}
	rotations := 0
	for _, p := range f.plans {
		for _, d := range p.DrainInstances {
			if !d.Rotation || !strings.Contains(d.Reason, "maximum lifetime of 10m0s") {
				t.Fatalf("drain %+v; want a rotation for the maximum lifetime", d)
			}
			rotations++
		}
		for _, r := range p.RemoveEnvironments {
			if !r.Replaced || !strings.Contains(r.Reason, "maximum lifetime") {
				t.Fatalf("removal %+v at steady traffic; want only replaced environments", r)
			}
		}
	}
	if rotations < len(first) {
		t.Fatalf("%d rotations for %d instances", rotations, len(first))
	}
	if n := f.readyEnvs(); n != 8 {
		t.Fatalf("%d ready environments after the rotations; want 8 (⌈2 × 60 / 16⌉)", n)
	}
}

// TestRotationShare: of many instances past their lifetime, the oldest tenth
// are replaced at once; their environments leave only once their
// replacements are ready.
func TestRotationShare(t *testing.T) {
	cfg := autoCfg()
	cfg.MaxInstanceLifetime = time.Hour
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := version(20, 0)
	var s Snapshot
	for i := range 20 {
		id := fmt.Sprintf("i-%02d", i)
		s.Instances = append(s.Instances, Instance{ID: id, Zone: DefaultZones[i%3], State: InstanceRunning, VCPU: 2, MemoryMiB: 8192,
			LaunchedAt: t0.Add(-2*time.Hour + time.Duration(i)*time.Minute)})
		v.Environments = append(v.Environments, Environment{ID: "e-" + id, Instance: id, State: EnvReady})
	}
	s.Versions = []Version{v}
	p := d.Decide(s, t0)
	if len(p.AddInstances) != 0 || len(p.DrainInstances) != 0 || len(p.RemoveEnvironments) != 0 {
		t.Fatalf("first decision %+v; want only replacements placed", p)
	}
	if len(p.AddEnvironments) != 2 {
		t.Fatalf("%d replacements placed; want 2 (10 %% of 20 instances)", len(p.AddEnvironments))
	}
	for _, a := range p.AddEnvironments {
		if a.Instance == "i-00" || a.Instance == "i-01" {
			t.Fatalf("replacement placed on %s, which is being replaced", a.Instance)
		}
	}
	if tg := p.Targets[0]; tg.Current != 18 || tg.Replacing != 2 || tg.Desired != 20 {
		t.Fatalf("target %+v; want 18 current, 2 replacing, 20 desired", tg)
	}
	// The replacements initialise: nothing leaves yet.
	for i, a := range p.AddEnvironments {
		s.Versions[0].Environments = append(s.Versions[0].Environments, Environment{ID: fmt.Sprintf("n-%d", i), Instance: a.Instance, State: EnvInitializing})
	}
	if p := d.Decide(s, t0.Add(time.Second)); len(p.RemoveEnvironments) != 0 || len(p.AddEnvironments) != 0 {
		t.Fatalf("while the replacements initialise: %+v", p)
	}
	// One is ready: one old environment leaves, the oldest instance's.
	s.Versions[0].Environments[20].State = EnvReady
	p = d.Decide(s, t0.Add(2*time.Second))
	if len(p.RemoveEnvironments) != 1 || !p.RemoveEnvironments[0].Replaced {
		t.Fatalf("with one replacement ready: %+v", p.RemoveEnvironments)
	}
	// Both ready and the old ones gone: the two oldest instances drain.
	s.Versions[0].Environments[21].State = EnvReady
	s.Versions[0].Environments = s.Versions[0].Environments[2:]
	p = d.Decide(s, t0.Add(3*time.Second))
	var drained []string
	for _, dr := range p.DrainInstances {
		drained = append(drained, dr.Instance)
	}
	if fmt.Sprint(drained) != "[i-00 i-01]" {
		t.Fatalf("drained %v; want the two oldest, [i-00 i-01]", drained)
	}
}

// TestStaleEnvironmentsReplaced: environments whose runtime build is stale
// are replaced, new ones first, without a throttle; an outdated instance
// takes none and drains once the environments that stay on it are gone.
func TestStaleEnvironmentsReplaced(t *testing.T) {
	f := newFleet(t, autoCfg(), version(3, 0))
	demand := func(time.Duration) float64 { return 40 }
	f.run(5*time.Minute, demand)
	old := map[string]bool{}
	for _, e := range f.envs {
		e.stale = "nodejs20.x was updated on its instance"
		old[e.id] = true
	}
	f.throttled = 0
	f.plans = nil
	f.run(5*time.Minute, demand)
	for _, e := range f.envs {
		if old[e.id] {
			t.Fatalf("stale environment %s was not replaced", e.id)
		}
	}
	for _, p := range f.plans {
		if n := len(p.AddEnvironments); n > 1 {
			t.Fatalf("%d replacements in one plan for %d environments; want one at a time (a tenth)", n, len(old))
		}
	}
	if f.throttled > 0 {
		t.Fatalf("throttled %.1f concurrency-seconds while replacing", f.throttled)
	}

	// An outdated instance: its stale environment moves, the other stays.
	d, err := New(autoCfg())
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	for i, z := range DefaultZones {
		s.Instances = append(s.Instances, Instance{ID: fmt.Sprintf("i-%d", i), Zone: z, State: InstanceRunning, VCPU: 2, MemoryMiB: 8192, LaunchedAt: t0})
	}
	s.Instances[0].Outdated = "its agent runs an older build of shoal's runtimes"
	auto, manual := version(1, 0), version(1, 0)
	auto.Key, manual.Key = "auto:1", "manual:1"
	auto.Environments = []Environment{{ID: "e-auto", Instance: "i-0", State: EnvReady, Stale: s.Instances[0].Outdated}}
	manual.Environments = []Environment{{ID: "e-manual", Instance: "i-0", State: EnvReady}}
	s.Versions = []Version{auto, manual}
	p := d.Decide(s, t0)
	if len(p.AddInstances) != 1 || p.AddInstances[0].Zone != "zone-a" || len(p.AddEnvironments) != 0 {
		t.Fatalf("plan %+v; want an instance launched in the outdated one's zone, and the replacement waiting for it", p)
	}
	s.Instances = append(s.Instances, Instance{ID: "i-3", Zone: "zone-a", State: InstancePending, VCPU: 2, MemoryMiB: 8192, LaunchedAt: t0})
	if p := d.Decide(s, t0.Add(time.Second)); len(p.AddInstances) != 0 || len(p.AddEnvironments) != 0 {
		t.Fatalf("while the new instance boots: %+v", p)
	}
	s.Instances[3].State = InstanceRunning
	p = d.Decide(s, t0.Add(2*time.Second))
	if len(p.AddEnvironments) != 1 || p.AddEnvironments[0].Version != "auto:1" || p.AddEnvironments[0].Instance != "i-3" {
		t.Fatalf("placed %+v; want one auto:1 environment on i-3, in the outdated instance's zone", p.AddEnvironments)
	}
	s.Versions[0].Environments = append(s.Versions[0].Environments, Environment{ID: "e-new", Instance: "i-3", State: EnvReady})
	p = d.Decide(s, t0.Add(3*time.Second))
	if len(p.RemoveEnvironments) != 1 || p.RemoveEnvironments[0].Environment != "e-auto" || len(p.DrainInstances) != 0 {
		t.Fatalf("with the replacement ready: %+v", p)
	}
	s.Versions[0].Environments = s.Versions[0].Environments[1:]
	if p := d.Decide(s, t0.Add(4*time.Second)); len(p.DrainInstances) != 0 || len(p.RemoveEnvironments) != 0 {
		t.Fatalf("the manual:1 environment stays, and its instance: %+v", p)
	}
	s.Versions[1].Environments = nil
	p = d.Decide(s, t0.Add(5*time.Second))
	if len(p.DrainInstances) != 1 || p.DrainInstances[0].Instance != "i-0" || !p.DrainInstances[0].Rotation {
		t.Fatalf("empty outdated instance: drains %+v", p.DrainInstances)
	}
}

// TestCarriedDemand: a version about to take another's traffic is sized for it.
func TestCarriedDemand(t *testing.T) {
	d, err := New(autoCfg())
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	for i, z := range DefaultZones {
		s.Instances = append(s.Instances, Instance{ID: fmt.Sprintf("i-%d", i), Zone: z, State: InstanceRunning, VCPU: 2, MemoryMiB: 8192})
	}
	v := version(3, 0)
	v.Carried, v.CarriedVCPU = 80, 1
	s.Versions = []Version{v}
	p := d.Decide(s, t0)
	// ⌈2 × 80 / 16⌉ = 10 environments for the carried slots.
	if tg := p.Targets[0]; tg.Desired != 10 || tg.ForSlots != 10 {
		t.Fatalf("target %+v; want 10 environments for 80 carried in flight", tg)
	}
}

// TestRotationKeepsZones: a rotated instance's environments move to its
// replacement, in its zone, though other instances have room.
func TestRotationKeepsZones(t *testing.T) {
	cfg := autoCfg()
	cfg.MaxInstanceLifetime = 10 * time.Minute
	f := newFleet(t, cfg, version(3, 0))
	demand := func(time.Duration) float64 { return 5 }
	f.run(5*time.Minute, demand)
	if len(f.insts) != 3 || len(f.envs) != 3 {
		t.Fatalf("%d instances, %d environments; want 3 and 3", len(f.insts), len(f.envs))
	}
	f.throttled = 0
	for range 40 {
		f.run(time.Minute, demand)
		if len(f.envs) < 3 {
			t.Fatalf("%d environments during the rotation", len(f.envs))
		}
	}
	zones := map[string]int{}
	perInstance := map[string]int{}
	for _, e := range f.envs {
		perInstance[e.inst]++
		for _, in := range f.insts {
			if in.id == e.inst {
				zones[in.zone]++
			}
		}
	}
	if len(zones) != 3 || len(perInstance) != 3 {
		t.Fatalf("after the rotations: environments in zones %v on %d instances; want one in each zone and instance", zones, len(perInstance))
	}
	for _, in := range f.insts {
		if perInstance[in.id] == 0 && !f.now.Before(in.readyAt) {
			t.Fatalf("instance %s (launched %v ago) runs empty", in.id, f.now.Sub(in.launchedAt))
		}
	}
	if f.throttled > 0 {
		t.Fatalf("throttled %.1f", f.throttled)
	}
}
