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

	hist      map[string]*history // by version key
	lastDrain time.Time
	drained   bool
	gen       uint64 // Decide calls, to forget versions that left
	w         work   // scratch, reused between calls
}

// New returns a decider for a capacity provider configured by cfg (zero fields
// take their defaults).
func New(cfg Config) (*Decider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Decider{cfg: cfg, hist: map[string]*history{}}, nil
}

// Config returns the decider's configuration with its defaults filled in.
func (d *Decider) Config() Config { return d.cfg }

type sample struct {
	at         time.Time
	slots, cpu float64
}

// history is what the decider remembers of one version: its demand samples
// inside the peak window and its last scale-in.
type history struct {
	s           []sample
	lastScaleIn time.Time
	scaledIn    bool
	gen         uint64
}

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
	// retire says why the instance is being replaced ("" when it is not): it
	// takes no new environments and is drained once empty. With evict, every
	// environment on it leaves (it reached its maximum lifetime); without,
	// only its Stale ones (it is Outdated).
	retire string
	evict  bool
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
	// removed counts the environments the last scaleIn removed.
	removed int
	// active is set when some version is not deactivated.
	active bool
	// stale holds the ids of the current version's stale environments
	// replaced now (pickStale).
	stale map[string]bool
}

type want struct {
	v      *Version
	reason string
}

// Decide works out the plan for snapshot s at time now.
func (d *Decider) Decide(s Snapshot, now time.Time) Plan {
	d.gen++
	w := &d.w
	if w.byID == nil {
		w.byID = make(map[string]int, len(s.Instances))
		w.stale = map[string]bool{}
	}
	clear(w.byID)
	w.d, w.now, w.plan, w.fleetVCPU, w.active = d, now, Plan{}, 0, false
	w.zones = append(w.zones[:0], d.cfg.Zones...)
	w.insts, w.wanted = w.insts[:0], w.wanted[:0]
	for i := range s.Instances {
		in := &s.Instances[i]
		w.insts = append(w.insts, slot{
			in: in, zone: w.zoneIndex(in.Zone),
			freeCPU: in.VCPU - d.cfg.ReservedVCPU,
			freeMem: in.MemoryMiB - d.cfg.ReservedMemoryMiB,
		})
		w.byID[in.ID] = i
	}
	w.retire()
	for i := range w.insts {
		if w.insts[i].retire == "" {
			// Instances being replaced do not count: their replacements
			// may take the fleet beyond MaxVCpuCount for a while.
			w.fleetVCPU += w.insts[i].in.VCPU
		}
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
	for vi := range s.Versions {
		w.version(&s.Versions[vi])
	}
	for k, h := range d.hist {
		if h.gen != d.gen {
			delete(d.hist, k)
		}
	}
	w.instances()
	plan := w.plan
	w.plan, w.insts = Plan{}, w.insts[:0] // drop references to the caller's snapshot
	return plan
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

// leaving reports whether e is being replaced: it is Stale, or its instance
// is rotated out.
func (w *work) leaving(e *Environment) bool {
	if e.Stale != "" && w.stale[e.ID] {
		return true
	}
	i, ok := w.byID[e.Instance]
	return ok && w.insts[i].evict
}

// pickStale chooses which of v's stale environments are replaced now: as
// many as RotationShare of its environments (at least one), by id, so that a
// runtime update rolls through a version a part at a time and the choice is
// the same from one decision to the next.
func (w *work) pickStale(v *Version) {
	clear(w.stale)
	var ids []string
	live := 0
	for i := range v.Environments {
		e := &v.Environments[i]
		if e.State == EnvDraining {
			continue
		}
		live++
		if s, ok := w.byID[e.Instance]; e.Stale != "" && !(ok && w.insts[s].evict) {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	n := max(1, int(w.d.cfg.RotationShare*float64(live)+1e-9))
	for _, id := range ids[:min(n, len(ids))] {
		w.stale[id] = true
	}
}

// version sizes one version and plans its environments.
func (w *work) version(v *Version) {
	cfg := &w.d.cfg
	w.pickStale(v)
	var slots, cpu float64
	current, readyKept := 0, 0
	var leaving []int // indexes of environments being replaced
	for i := range v.Environments {
		e := &v.Environments[i]
		if e.State == EnvDraining {
			continue
		}
		if e.State == EnvReady {
			slots += e.InFlight
			cpu += e.CPUUtilization * v.EnvVCPU
		}
		if w.leaving(e) {
			leaving = append(leaving, i)
			continue
		}
		current++
		if e.State == EnvReady {
			readyKept++
		}
	}
	// Refused work is demand too; its CPU is estimated at the served work's rate.
	if v.Unserved > 0 {
		if slots > 0 {
			cpu *= (slots + v.Unserved) / slots
		}
		slots += v.Unserved
	}
	// So is the work of the versions this one is about to take over.
	slots += v.Carried
	cpu += v.CarriedVCPU
	h := w.d.hist[v.Key]
	if h == nil {
		h = &history{}
		w.d.hist[v.Key] = h
	}
	h.gen = w.d.gen
	peakSlots, peakCPU := h.push(w.now, cfg.PeakWindow, slots, cpu)
	t := Target{Version: v.Key, Current: current, Replacing: len(leaving), PeakInFlight: peakSlots, PeakVCPU: peakCPU}
	deactivated := v.MinEnvironments == 0 && v.MaxEnvironments == 0
	w.active = w.active || !deactivated
	switch {
	case deactivated:
	case v.EnvSlots <= 0 || !(v.EnvVCPU > 0):
		t.Desired = current + len(leaving)
	case cfg.Mode == ModeManual:
		target := cfg.TargetCPUPercent / 100
		t.ForCPU = ceil(peakCPU / (target * v.EnvVCPU))
		t.ForSlots = ceil(peakSlots / float64(v.EnvSlots))
		t.Desired = max(t.ForCPU, t.ForSlots)
	default:
		t.ForSlots = ceil(cfg.Headroom * peakSlots / float64(v.EnvSlots))
		t.ForCPU = ceil(cfg.Headroom * peakCPU / v.EnvVCPU)
		t.Desired = max(t.ForCPU, t.ForSlots)
	}
	if !deactivated && v.EnvSlots > 0 && v.EnvVCPU > 0 {
		if t.Desired < v.MinEnvironments {
			t.Desired, t.Bound = v.MinEnvironments, BoundMin
		}
		if v.MaxEnvironments > 0 && t.Desired > v.MaxEnvironments {
			t.Desired, t.Bound = v.MaxEnvironments, BoundMax
		}
	}
	switch {
	case deactivated && current+len(leaving) > 0:
		if w.scaleIn(v, h, current+len(leaving), 0, true) {
			t.Reason = w.explain(v, &t)
			n := len(w.plan.RemoveEnvironments)
			for i := n - w.removed; i < n; i++ {
				w.plan.RemoveEnvironments[i].Reason = fmt.Sprintf("scale in %s %d→0: %s", v.Key, current+len(leaving), t.Reason)
			}
		}
	case t.Desired > current:
		t.Reason = w.explain(v, &t)
		reason := fmt.Sprintf("scale out %s %d→%d: %s", v.Key, current, t.Desired, t.Reason)
		if len(leaving) > 0 {
			reason = fmt.Sprintf("replace %d of %s's environments (%s): %d→%d: %s", len(leaving), v.Key, w.leaveReason(&v.Environments[leaving[0]]), current, t.Desired, t.Reason)
		}
		// Replacements go to the zones of the environments they replace.
		need := make([]int, len(w.zones))
		for _, i := range leaving {
			if s, ok := w.byID[v.Environments[i].Instance]; ok {
				need[w.insts[s].zone]++
			}
		}
		for i := current; i < t.Desired; i++ {
			if !w.placeReplacing(v, reason, need) {
				t.Unplaced++
				w.wanted = append(w.wanted, want{v: v, reason: reason})
			}
		}
	case t.Desired < current:
		if w.scaleIn(v, h, current, t.Desired, false) {
			t.Reason = w.explain(v, &t)
			n := len(w.plan.RemoveEnvironments)
			reason := fmt.Sprintf("scale in %s %d→%d (at most %d per %v): %s", v.Key, current, current-w.removed, max(1, int(cfg.ScaleInStep*float64(current))), cfg.ScaleInInterval, t.Reason)
			for i := n - w.removed; i < n; i++ {
				w.plan.RemoveEnvironments[i].Reason = reason
			}
		}
	}
	if !deactivated {
		w.replace(v, leaving, readyKept, t.Desired)
	}
	w.plan.Targets = append(w.plan.Targets, t)
}

// replace removes the environments of v that are being replaced as their
// replacements become ready: those still initialising at once, the ready
// ones while the version keeps desired ready environments without them.
func (w *work) replace(v *Version, leaving []int, readyKept, desired int) {
	removable := readyKept - desired
	for _, i := range leaving {
		if v.Environments[i].State == EnvReady {
			removable++
		}
	}
	for _, i := range leaving {
		e := &v.Environments[i]
		if e.State == EnvReady {
			if removable <= 0 {
				continue
			}
			removable--
		}
		if s, ok := w.byID[e.Instance]; ok {
			w.insts[s].envs--
		}
		why := "its replacement is ready"
		if e.State != EnvReady {
			why = "it was still initialising"
		}
		w.plan.RemoveEnvironments = append(w.plan.RemoveEnvironments, RemoveEnvironment{
			Version: v.Key, Environment: e.ID, Instance: e.Instance, Replaced: true,
			Reason: fmt.Sprintf("replaced %s on %s (%s): %s", v.Key, e.Instance, w.leaveReason(e), why),
		})
	}
}

// leaveReason says why an environment is being replaced.
func (w *work) leaveReason(e *Environment) string {
	if i, ok := w.byID[e.Instance]; ok && w.insts[i].evict {
		return w.insts[i].retire
	}
	return e.Stale
}

// explain says why a version wants t.Desired environments.
func (w *work) explain(v *Version, t *Target) string {
	cfg := &w.d.cfg
	var why string
	switch {
	case v.MinEnvironments == 0 && v.MaxEnvironments == 0:
		return "deactivated (min = max = 0)"
	case v.EnvSlots <= 0 || !(v.EnvVCPU > 0):
		return "environment shape unknown; holding"
	case cfg.Mode == ModeManual:
		why = fmt.Sprintf("manual: peak %.2f vCPU over %v at %g%% target needs %d, peak %.1f in-flight needs %d (%d slots each)",
			t.PeakVCPU, cfg.PeakWindow, cfg.TargetCPUPercent, t.ForCPU, t.PeakInFlight, t.ForSlots, v.EnvSlots)
	default:
		why = fmt.Sprintf("auto: peak %.1f in-flight and %.2f vCPU over %v with %gx headroom need %d for slots (%d each) and %d for CPU (%g vCPU each)",
			t.PeakInFlight, t.PeakVCPU, cfg.PeakWindow, cfg.Headroom, t.ForSlots, v.EnvSlots, t.ForCPU, v.EnvVCPU)
	}
	switch t.Bound {
	case BoundMin:
		why += fmt.Sprintf("; raised to the minimum %d", v.MinEnvironments)
	case BoundMax:
		why += fmt.Sprintf("; capped at the maximum %d", v.MaxEnvironments)
	}
	return why
}

// place puts one environment of v on the running instance that keeps v best
// spread over zones and, among those, fits it most tightly.
func (w *work) place(v *Version, reason string) bool {
	perZone := w.versionZones(v)
	best := -1
	for i := range w.insts {
		s := &w.insts[i]
		if s.in.State != InstanceRunning || s.retire != "" || s.freeCPU < v.EnvVCPU-1e-9 || s.freeMem < v.EnvMemoryMiB {
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
	if w.awaitSpread(v, perZone, best) {
		return false
	}
	w.commit(v, best, reason)
	return true
}

// placeReplacing places one environment of v. While need counts
// environments being replaced in some zone, it goes to the one of those
// zones where v has fewest: on a running instance there with room, or, when
// only an instance still booting there has room, or the zone has no instance
// but those being replaced (the fleet launches their replacement there, the
// zone with fewest), nowhere yet — it waits for that instance. Otherwise
// place decides.
func (w *work) placeReplacing(v *Version, reason string, need []int) bool {
	perZone := w.versionZones(v)
	z := -1
	for i, n := range need {
		if n > 0 && (z < 0 || perZone[i] < perZone[z]) {
			z = i
		}
	}
	if z < 0 {
		return w.place(v, reason)
	}
	need[z]--
	best, booting, staying := -1, false, false
	for i := range w.insts {
		s := &w.insts[i]
		if s.zone != z || s.retire != "" || s.in.State == InstanceDraining {
			continue
		}
		staying = true
		if s.freeCPU < v.EnvVCPU-1e-9 || s.freeMem < v.EnvMemoryMiB {
			continue
		}
		switch s.in.State {
		case InstancePending:
			booting = true
		case InstanceRunning:
			if best < 0 || s.freeCPU < w.insts[best].freeCPU || s.freeCPU == w.insts[best].freeCPU && s.in.ID < w.insts[best].in.ID {
				best = i
			}
		}
	}
	switch {
	case best >= 0:
		w.commit(v, best, reason)
		return true
	case booting || !staying:
		return false
	}
	return w.place(v, reason)
}

// commit plans one environment of v on instance slot i.
func (w *work) commit(v *Version, i int, reason string) {
	s := &w.insts[i]
	s.freeCPU -= v.EnvVCPU
	s.freeMem -= v.EnvMemoryMiB
	s.envs++
	w.plan.AddEnvironments = append(w.plan.AddEnvironments, AddEnvironment{
		Version: v.Key, Instance: s.in.ID, Zone: s.in.Zone, Reason: reason,
	})
}

// awaitSpread reports whether v's next environment should wait for a booting
// instance rather than go to running instance best: while v has fewer
// environments than its minimum, which Lambda spreads over the zones, an
// instance still booting in a zone with fewer of v's environments than
// best's takes it once it runs. Without the wait, instances that boot at
// different speeds leave a zone without any of the version's environments.
func (w *work) awaitSpread(v *Version, perZone []int, best int) bool {
	total := 0
	for _, n := range perZone {
		total += n
	}
	if total >= v.MinEnvironments {
		return false
	}
	for i := range w.insts {
		s := &w.insts[i]
		if s.in.State == InstancePending && s.retire == "" && perZone[s.zone] < perZone[w.insts[best].zone] &&
			s.freeCPU >= v.EnvVCPU-1e-9 && s.freeMem >= v.EnvMemoryMiB {
			return true
		}
	}
	return false
}

// versionZones counts v's live environments that stay, planned ones
// included, per zone.
func (w *work) versionZones(v *Version) []int {
	n := make([]int, len(w.zones))
	for i := range v.Environments {
		e := &v.Environments[i]
		if e.State == EnvDraining || w.leaving(e) {
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

// scaleIn removes at most one step of v's environments that stay, if the
// last step is far enough behind, and reports whether it removed any
// (w.removed of them). A deactivated version loses all of them at once,
// those being replaced included.
func (w *work) scaleIn(v *Version, h *history, current, desired int, deactivated bool) bool {
	cfg := &w.d.cfg
	w.removed = 0
	if !deactivated && h.scaledIn && w.now.Sub(h.lastScaleIn) < cfg.ScaleInInterval {
		return false
	}
	step := max(1, int(cfg.ScaleInStep*float64(current)))
	n := min(current-desired, step)
	if deactivated {
		n = current
	}
	cands := make([]int, 0, current)
	for i := range v.Environments {
		e := &v.Environments[i]
		if e.State != EnvDraining && (deactivated || !w.leaving(e)) {
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
	for _, ci := range cands[:n] {
		e := &v.Environments[ci]
		if i, ok := w.byID[e.Instance]; ok {
			w.insts[i].envs--
		}
		w.plan.RemoveEnvironments = append(w.plan.RemoveEnvironments, RemoveEnvironment{
			Version: v.Key, Environment: e.ID, Instance: e.Instance,
		})
	}
	w.removed = n
	h.lastScaleIn, h.scaledIn = w.now, true
	return n > 0
}
