package scaler

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Decider turns snapshots into plans. It remembers the recent demand of each
// version (to size for the peak of the last PeakWindow) and when it last scaled
// in, so scale-in stays gradual; that memory is all its state.
//
// A Decider is not safe for concurrent use: one loop (or one replay) owns it and
// calls Decide with non-decreasing times.
type Decider struct {
	cfg Config // immutable after New

	hist        map[string]*history
	lastScaleIn map[string]time.Time
	lastDrain   time.Time
	drained     bool
}

// New returns a decider for a capacity provider configured by cfg (zero fields
// take their defaults).
func New(cfg Config) (*Decider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Decider{cfg: cfg, hist: map[string]*history{}, lastScaleIn: map[string]time.Time{}}, nil
}

// Config returns the decider's configuration with its defaults filled in.
func (d *Decider) Config() Config { return d.cfg }

type sample struct {
	at         time.Time
	slots, cpu float64
}

// history keeps the demand samples of one version inside the peak window.
type history struct{ s []sample }

func (h *history) push(now time.Time, window time.Duration, slots, cpu float64) (peakSlots, peakCPU float64) {
	cut := 0
	for cut < len(h.s) && now.Sub(h.s[cut].at) > window {
		cut++
	}
	if cut > 0 {
		h.s = append(h.s[:0], h.s[cut:]...)
	}
	h.s = append(h.s, sample{at: now, slots: slots, cpu: cpu})
	for _, x := range h.s {
		peakSlots = math.Max(peakSlots, x.slots)
		peakCPU = math.Max(peakCPU, x.cpu)
	}
	return peakSlots, peakCPU
}

// ceil rounds up, forgiving the float noise of sums (2.0000000001 is 2).
func ceil(x float64) int {
	if !(x > 0) {
		return 0
	}
	return int(math.Ceil(x - 1e-9))
}

// slot is the decider's working view of one instance.
type slot struct {
	in      *Instance
	zone    int
	freeCPU float64
	freeMem int
	envs    int // environments of any state on it, as planned so far
	hosted  int // environments of any state on it in the snapshot
}

type work struct {
	d     *Decider
	now   time.Time
	zones []string
	insts []slot
	byID  map[string]int
	plan  Plan
	// fleetVCPU is the vCPUs of every instance that exists or was asked for.
	fleetVCPU float64
	// wanted are the environments no running instance had room for.
	wanted []want
}

type want struct {
	v      *Version
	reason string
}

// Decide works out the plan for snapshot s at time now.
func (d *Decider) Decide(s Snapshot, now time.Time) Plan {
	w := &work{d: d, now: now, byID: make(map[string]int, len(s.Instances))}
	w.zones = append(w.zones, d.cfg.Zones...)
	for i := range s.Instances {
		in := &s.Instances[i]
		w.insts = append(w.insts, slot{
			in: in, zone: w.zoneIndex(in.Zone),
			freeCPU: in.VCPU - d.cfg.ReservedVCPU,
			freeMem: in.MemoryMiB - d.cfg.ReservedMemoryMiB,
		})
		w.byID[in.ID] = i
		w.fleetVCPU += in.VCPU
	}
	for vi := range s.Versions {
		v := &s.Versions[vi]
		for _, e := range v.Environments {
			if i, ok := w.byID[e.Instance]; ok {
				w.insts[i].freeCPU -= v.EnvVCPU
				w.insts[i].freeMem -= v.EnvMemoryMiB
				w.insts[i].envs++
				w.insts[i].hosted++
			}
		}
	}
	live := map[string]bool{}
	for vi := range s.Versions {
		live[s.Versions[vi].Key] = true
		w.version(&s.Versions[vi])
	}
	for k := range d.hist {
		if !live[k] {
			delete(d.hist, k)
			delete(d.lastScaleIn, k)
		}
	}
	w.instances()
	return w.plan
}

func (w *work) zoneIndex(z string) int {
	for i, x := range w.zones {
		if x == z {
			return i
		}
	}
	w.zones = append(w.zones, z)
	return len(w.zones) - 1
}

// version sizes one version and plans its environments.
func (w *work) version(v *Version) {
	cfg := &w.d.cfg
	var slots, cpu float64
	current := 0
	for _, e := range v.Environments {
		if e.State == EnvDraining {
			continue
		}
		current++
		if e.State == EnvReady {
			slots += e.InFlight
			cpu += e.CPUUtilization * v.EnvVCPU
		}
	}
	// Refused work is demand too; its CPU is estimated at the served work's rate.
	if v.Unserved > 0 {
		if slots > 0 {
			cpu *= (slots + v.Unserved) / slots
		}
		slots += v.Unserved
	}
	h := w.d.hist[v.Key]
	if h == nil {
		h = &history{}
		w.d.hist[v.Key] = h
	}
	peakSlots, peakCPU := h.push(w.now, cfg.PeakWindow, slots, cpu)

	t := Target{Version: v.Key, Current: current}
	var why string
	switch {
	case v.MinEnvironments == 0 && v.MaxEnvironments == 0:
		t.Desired, why = 0, "deactivated (min = max = 0)"
	case v.EnvSlots <= 0 || !(v.EnvVCPU > 0):
		t.Desired, why = current, "environment shape unknown; holding"
	case cfg.Mode == ModeManual:
		target := cfg.TargetCPUPercent / 100
		byCPU := ceil(peakCPU / (target * v.EnvVCPU))
		bySlots := ceil(peakSlots / float64(v.EnvSlots))
		t.Desired = max(byCPU, bySlots)
		why = fmt.Sprintf("manual: peak %.2f vCPU over %v at %.0f%% target needs %d, peak %.1f in-flight needs %d (of %d slots)",
			peakCPU, cfg.PeakWindow, cfg.TargetCPUPercent, byCPU, peakSlots, bySlots, v.EnvSlots)
	default:
		bySlots := ceil(cfg.Headroom * peakSlots / float64(v.EnvSlots))
		byCPU := ceil(cfg.Headroom * peakCPU / v.EnvVCPU)
		t.Desired = max(byCPU, bySlots)
		why = fmt.Sprintf("auto: peak %.1f in-flight and %.2f vCPU over %v with %gx headroom need %d for slots (%d each) and %d for CPU (%g vCPU each)",
			peakSlots, peakCPU, cfg.PeakWindow, cfg.Headroom, bySlots, v.EnvSlots, byCPU, v.EnvVCPU)
	}
	if !(v.MinEnvironments == 0 && v.MaxEnvironments == 0) {
		if t.Desired < v.MinEnvironments {
			t.Desired = v.MinEnvironments
			why += fmt.Sprintf("; raised to the minimum %d", v.MinEnvironments)
		}
		if v.MaxEnvironments > 0 && t.Desired > v.MaxEnvironments {
			t.Desired = v.MaxEnvironments
			why += fmt.Sprintf("; capped at the maximum %d", v.MaxEnvironments)
		}
	}
	t.Reason = why
	switch {
	case t.Desired > current:
		reason := fmt.Sprintf("scale out %s %d→%d: %s", v.Key, current, t.Desired, why)
		for i := current; i < t.Desired; i++ {
			if !w.place(v, reason) {
				t.Unplaced++
				w.wanted = append(w.wanted, want{v: v, reason: reason})
			}
		}
	case t.Desired < current:
		w.scaleIn(v, current, t.Desired, why)
	}
	w.plan.Targets = append(w.plan.Targets, t)
}

// place puts one environment of v on the running instance that keeps v best
// spread over zones and, among those, fits it most tightly.
func (w *work) place(v *Version, reason string) bool {
	perZone := w.versionZones(v)
	best := -1
	for i := range w.insts {
		s := &w.insts[i]
		if s.in.State != InstanceRunning || s.freeCPU < v.EnvVCPU-1e-9 || s.freeMem < v.EnvMemoryMiB {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := &w.insts[best]
		switch {
		case perZone[s.zone] != perZone[b.zone]:
			if perZone[s.zone] < perZone[b.zone] {
				best = i
			}
		case s.freeCPU != b.freeCPU:
			if s.freeCPU < b.freeCPU {
				best = i
			}
		case s.in.ID < b.in.ID:
			best = i
		}
	}
	if best < 0 {
		return false
	}
	s := &w.insts[best]
	s.freeCPU -= v.EnvVCPU
	s.freeMem -= v.EnvMemoryMiB
	s.envs++
	w.plan.AddEnvironments = append(w.plan.AddEnvironments, AddEnvironment{
		Version: v.Key, Instance: s.in.ID, Zone: s.in.Zone, Reason: reason,
	})
	return true
}

// versionZones counts v's live environments, planned ones included, per zone.
func (w *work) versionZones(v *Version) []int {
	n := make([]int, len(w.zones))
	for _, e := range v.Environments {
		if e.State == EnvDraining {
			continue
		}
		if i, ok := w.byID[e.Instance]; ok {
			n[w.insts[i].zone]++
		}
	}
	for _, a := range w.plan.AddEnvironments {
		if a.Version == v.Key {
			n[w.insts[w.byID[a.Instance]].zone]++
		}
	}
	return n
}

// scaleIn removes at most one step of v's environments, if the last step is
// far enough behind.
func (w *work) scaleIn(v *Version, current, desired int, why string) {
	cfg := &w.d.cfg
	if last, ok := w.d.lastScaleIn[v.Key]; ok && w.now.Sub(last) < cfg.ScaleInInterval {
		return
	}
	step := max(1, int(cfg.ScaleInStep*float64(current)))
	n := min(current-desired, step)
	cands := make([]int, 0, current)
	for i, e := range v.Environments {
		if e.State != EnvDraining {
			cands = append(cands, i)
		}
	}
	perZone := w.versionZones(v)
	envsOn := func(e *Environment) int {
		if i, ok := w.byID[e.Instance]; ok {
			return w.insts[i].envs
		}
		return 0
	}
	zoneOf := func(e *Environment) int {
		if i, ok := w.byID[e.Instance]; ok {
			return perZone[w.insts[i].zone]
		}
		return math.MaxInt
	}
	// Initializing environments serve nothing yet; then the ones whose removal
	// empties an instance soonest, from the most crowded zone, least busy first.
	sort.SliceStable(cands, func(a, b int) bool {
		ea, eb := &v.Environments[cands[a]], &v.Environments[cands[b]]
		if (ea.State == EnvInitializing) != (eb.State == EnvInitializing) {
			return ea.State == EnvInitializing
		}
		if x, y := envsOn(ea), envsOn(eb); x != y {
			return x < y
		}
		if x, y := zoneOf(ea), zoneOf(eb); x != y {
			return x > y
		}
		if ea.InFlight != eb.InFlight {
			return ea.InFlight < eb.InFlight
		}
		return ea.ID < eb.ID
	})
	reason := fmt.Sprintf("scale in %s %d→%d (step of at most %d per %v): %s", v.Key, current, current-n, step, cfg.ScaleInInterval, why)
	for _, ci := range cands[:n] {
		e := &v.Environments[ci]
		if i, ok := w.byID[e.Instance]; ok {
			w.insts[i].envs--
		}
		w.plan.RemoveEnvironments = append(w.plan.RemoveEnvironments, RemoveEnvironment{
			Version: v.Key, Environment: e.ID, Instance: e.Instance, Reason: reason,
		})
	}
	w.d.lastScaleIn[v.Key] = w.now
}
