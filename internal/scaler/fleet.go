package scaler

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// instances plans the fleet: the minimum spread over zones (instances being
// replaced do not count, so their replacements are launched), room for the
// environments that found none, the drain of replaced instances once empty,
// and the drain of an instance nobody needs.
func (w *work) instances() {
	cfg := &w.d.cfg
	perZone := make([]int, len(w.zones))
	active := 0
	for i := range w.insts {
		if w.insts[i].in.State != InstanceDraining && w.insts[i].retire == "" {
			perZone[w.insts[i].zone]++
			active++
		}
	}
	// An instance being replaced goes once its environments have left.
	for i := range w.insts {
		s := &w.insts[i]
		if s.retire != "" && s.in.State == InstanceRunning && s.hosted == 0 && s.envs == 0 {
			w.plan.DrainInstances = append(w.plan.DrainInstances, DrainInstance{
				Instance: s.in.ID, Rotation: true, Reason: "rotation: " + s.retire + "; its environments have moved",
			})
		}
	}
	// The minimum fleet, in the zones with fewest instances, while any version
	// is active; a capacity provider without one keeps no instances.
	minimum := cfg.MinInstances
	if !w.active {
		minimum = 0
	}
	for active < minimum {
		if !w.launch(perZone, fmt.Sprintf("minimum fleet: %d of %d instances across %d zones", active, minimum, len(cfg.Zones))) {
			break
		}
		active++
	}
	// Room for the environments no running instance could take: first what
	// booting instances will have free, then new instances.
	type room struct {
		cpu float64
		mem int
	}
	var rooms []room
	for i := range w.insts {
		if w.insts[i].in.State == InstancePending {
			rooms = append(rooms, room{w.insts[i].freeCPU, w.insts[i].freeMem})
		}
	}
	for range w.plan.AddInstances {
		rooms = append(rooms, room{cfg.Instance.VCPU - cfg.ReservedVCPU, cfg.Instance.MemoryMiB - cfg.ReservedMemoryMiB})
	}
	capped := false
	for _, wt := range w.wanted {
		v := wt.v
		fits := false
		for i := range rooms {
			if rooms[i].cpu >= v.EnvVCPU-1e-9 && rooms[i].mem >= v.EnvMemoryMiB {
				rooms[i].cpu -= v.EnvVCPU
				rooms[i].mem -= v.EnvMemoryMiB
				fits = true
				break
			}
		}
		if fits || capped {
			continue
		}
		r := room{cfg.Instance.VCPU - cfg.ReservedVCPU, cfg.Instance.MemoryMiB - cfg.ReservedMemoryMiB}
		if r.cpu < v.EnvVCPU-1e-9 || r.mem < v.EnvMemoryMiB {
			w.setUnplacedReason(v, fmt.Sprintf("an environment (%g vCPU, %d MiB) does not fit a %s", v.EnvVCPU, v.EnvMemoryMiB, cfg.Instance.Type))
			continue
		}
		if !w.launch(perZone, "room for "+wt.reason) {
			capped = true
			w.setUnplacedReason(v, fmt.Sprintf("MaxVCpuCount %d reached", cfg.MaxVCPU))
			continue
		}
		r.cpu -= v.EnvVCPU
		r.mem -= v.EnvMemoryMiB
		rooms = append(rooms, r)
	}
	if len(w.wanted) > 0 || len(w.plan.AddInstances) > 0 || len(w.plan.AddEnvironments) > 0 {
		return
	}
	// Without an active version every empty instance goes at once.
	if !w.active {
		for i := range w.insts {
			s := &w.insts[i]
			if s.in.State == InstanceRunning && s.retire == "" && s.hosted == 0 && s.envs == 0 {
				w.plan.DrainInstances = append(w.plan.DrainInstances, DrainInstance{
					Instance: s.in.ID, Reason: "no active function version on the capacity provider",
				})
			}
		}
		return
	}
	// Scale in the fleet: one empty instance per interval, from the zone with most.
	if active <= minimum {
		return
	}
	if w.d.drained && w.now.Sub(w.d.lastDrain) < cfg.ScaleInInterval {
		return
	}
	best := -1
	for i := range w.insts {
		s := &w.insts[i]
		if s.in.State != InstanceRunning || s.retire != "" || s.hosted > 0 || s.envs > 0 {
			continue
		}
		if best < 0 || perZone[s.zone] > perZone[w.insts[best].zone] ||
			(perZone[s.zone] == perZone[w.insts[best].zone] && s.in.ID < w.insts[best].in.ID) {
			best = i
		}
	}
	if best < 0 {
		return
	}
	w.plan.DrainInstances = append(w.plan.DrainInstances, DrainInstance{
		Instance: w.insts[best].in.ID,
		Reason:   fmt.Sprintf("scale in: instance hosts no environment; %d instances left above the minimum of %d", active-1-minimum, minimum),
	})
	w.d.lastDrain, w.d.drained = w.now, true
}

// launch asks for one instance in the zone with fewest, within MaxVCpuCount.
func (w *work) launch(perZone []int, reason string) bool {
	cfg := &w.d.cfg
	if w.fleetVCPU+cfg.Instance.VCPU > float64(cfg.MaxVCPU)+1e-9 {
		return false
	}
	z := 0
	for i := range cfg.Zones {
		if perZone[i] < perZone[z] {
			z = i
		}
	}
	perZone[z]++
	w.fleetVCPU += cfg.Instance.VCPU
	w.plan.AddInstances = append(w.plan.AddInstances, AddInstance{Zone: cfg.Zones[z], Type: cfg.Instance.Type, Reason: reason})
	return true
}

func (w *work) setUnplacedReason(v *Version, why string) {
	for i := range w.plan.Targets {
		t := &w.plan.Targets[i]
		if t.Version == v.Key && !strings.HasSuffix(t.Reason, why) {
			t.Reason += "; " + why
			return
		}
	}
}

// retire picks the instances to replace: every Outdated one, and those past
// the maximum lifetime, oldest first, as many at once as RotationShare of
// the fleet allows (at least one). The choice is the same from one decision
// to the next, since instances only grow older, until a chosen one drains.
func (w *work) retire() {
	cfg := &w.d.cfg
	live := 0
	var due []int
	for i := range w.insts {
		s := &w.insts[i]
		if s.in.State == InstanceDraining {
			continue
		}
		live++
		if s.in.State != InstanceRunning {
			continue
		}
		if s.in.Outdated != "" {
			s.retire = s.in.Outdated
		}
		if !s.in.LaunchedAt.IsZero() && w.now.Sub(s.in.LaunchedAt) >= cfg.MaxInstanceLifetime {
			due = append(due, i)
		}
	}
	sort.Slice(due, func(a, b int) bool {
		x, y := w.insts[due[a]].in, w.insts[due[b]].in
		if !x.LaunchedAt.Equal(y.LaunchedAt) {
			return x.LaunchedAt.Before(y.LaunchedAt)
		}
		return x.ID < y.ID
	})
	n := max(1, int(cfg.RotationShare*float64(live)+1e-9))
	for _, i := range due[:min(n, len(due))] {
		s := &w.insts[i]
		s.retire = fmt.Sprintf("instance %s reached its maximum lifetime of %v (launched %v ago)",
			s.in.ID, cfg.MaxInstanceLifetime, w.now.Sub(s.in.LaunchedAt).Truncate(time.Second))
		s.evict = true
	}
}
