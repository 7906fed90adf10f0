package replay

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/internal/scaler"
)

// fleet models a Managed Instances capacity provider driven by the scaler's
// decider: the replay serves each step with the environments that are ready,
// feeds the decider what the agents would report, and applies its plans after
// the launch and init delays.
type fleet struct {
	dec   *scaler.Decider
	shape scaler.Version // the version's shape and scaling config; Environments unused
	inst  scaler.InstanceShape

	launchSteps int // instance boot, in steps
	initSteps   int // environment init, in steps
	start       time.Time
	step        time.Duration

	insts  []fleetInst
	envs   []fleetEnv
	nextID int

	ready     int // environments serving in the current step
	nextReady int // earliest step at which a booting environment turns ready

	// What the agents report, accumulated since the last decision.
	accSteps                   int
	accServed, accCPU, accLost float64

	// Totals.
	instSteps int64 // Σ over steps of instances that have booted (billed)
	peakInst  int
	peakEnvs  int
	decisions int

	// reasons keeps the first actions of the replay, for the report.
	reasons []string

	snap scaler.Snapshot // reused between decisions
}

type fleetInst struct {
	id, zone string
	readyAt  int
}

type fleetEnv struct {
	id, inst string
	readyAt  int
}

const maxReasons = 8

func newFleet(dec *scaler.Decider, shape scaler.Version, start time.Time, step, launch, init time.Duration) *fleet {
	return &fleet{
		dec: dec, shape: shape, inst: dec.Config().Instance,
		launchSteps: stepsOf(launch, step), initSteps: stepsOf(init, step),
		start: start, step: step, nextReady: math.MaxInt,
	}
}

// stepsOf rounds a delay up to whole steps.
func stepsOf(d, step time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + step - 1) / step)
}

func (f *fleet) id(prefix string) string {
	f.nextID++
	return prefix + strconv.Itoa(f.nextID)
}

// warm brings the fleet to what the decider holds for a steady demand of conc
// in-flight invocations using cpu vCPUs, as if the version had been running
// before the trace starts.
func (f *fleet) warm(conc, cpu float64) {
	for round := 0; round < 64; round++ {
		served := math.Min(conc, float64(f.ready*f.shape.EnvSlots))
		lost := conc - served
		var cpuServed float64
		if conc > 0 {
			cpuServed = cpu * served / conc
		}
		p := f.dec.Decide(f.snapshot(0, served, cpuServed, lost), f.start)
		if len(p.AddInstances) == 0 && len(p.AddEnvironments) == 0 {
			break
		}
		f.apply(p, 0, true)
		f.recount(0)
	}
}

// serve runs step i with demand conc (in-flight) and cpu (vCPUs) and returns
// the share of the demand it served.
func (f *fleet) serve(i int, conc, cpu float64) float64 {
	if i >= f.nextReady {
		f.recount(i)
	}
	frac := 1.0
	if conc > 0 {
		if slots := float64(f.ready * f.shape.EnvSlots); conc > slots {
			frac = slots / conc
		}
		if cpuCap := float64(f.ready) * f.shape.EnvVCPU; cpu > cpuCap {
			frac = math.Min(frac, cpuCap/cpu)
		}
	}
	f.accSteps++
	f.accServed += conc * frac
	f.accCPU += cpu * frac
	f.accLost += conc * (1 - frac)
	for k := range f.insts {
		if f.insts[k].readyAt <= i {
			f.instSteps++
		}
	}
	f.peakInst = max(f.peakInst, len(f.insts))
	f.peakEnvs = max(f.peakEnvs, len(f.envs))
	return frac
}

// decide runs the decider at the end of step i and applies its plan.
func (f *fleet) decide(i int) {
	n := float64(max(f.accSteps, 1))
	now := f.start.Add(time.Duration(i+1) * f.step)
	p := f.dec.Decide(f.snapshot(i+1, f.accServed/n, f.accCPU/n, f.accLost/n), now)
	f.decisions++
	f.accSteps, f.accServed, f.accCPU, f.accLost = 0, 0, 0, 0
	if !p.Empty() {
		f.apply(p, i+1, false)
	}
}

func (f *fleet) recount(i int) {
	f.ready, f.nextReady = 0, math.MaxInt
	for k := range f.envs {
		if f.envs[k].readyAt <= i {
			f.ready++
		} else if f.envs[k].readyAt < f.nextReady {
			f.nextReady = f.envs[k].readyAt
		}
	}
}

// snapshot builds what the live loop would see at step at: the served load is
// spread evenly over the ready environments.
func (f *fleet) snapshot(at int, served, cpu, lost float64) scaler.Snapshot {
	s := &f.snap
	s.Instances = s.Instances[:0]
	for _, in := range f.insts {
		st := scaler.InstanceRunning
		if in.readyAt > at {
			st = scaler.InstancePending
		}
		s.Instances = append(s.Instances, scaler.Instance{
			ID: in.id, Zone: in.zone, Type: f.inst.Type, State: st, VCPU: f.inst.VCPU, MemoryMiB: f.inst.MemoryMiB,
		})
	}
	ready := 0
	for k := range f.envs {
		if f.envs[k].readyAt <= at {
			ready++
		}
	}
	var perEnv, util float64
	if ready > 0 {
		perEnv = served / float64(ready)
		util = cpu / (float64(ready) * f.shape.EnvVCPU)
	}
	if len(s.Versions) == 0 {
		s.Versions = []scaler.Version{f.shape}
	}
	v := &s.Versions[0]
	envs := v.Environments[:0]
	*v = f.shape
	for _, e := range f.envs {
		st := scaler.EnvReady
		if e.readyAt > at {
			st = scaler.EnvInitializing
		}
		env := scaler.Environment{ID: e.id, Instance: e.inst, State: st}
		if st == scaler.EnvReady {
			env.InFlight, env.CPUUtilization = perEnv, util
		}
		envs = append(envs, env)
	}
	v.Environments = envs
	v.Unserved = lost
	return *s
}

// apply carries a plan out from step at; instant makes everything ready at once
// (the warm start).
func (f *fleet) apply(p scaler.Plan, at int, instant bool) {
	launch, init := at+f.launchSteps, at+f.initSteps
	if instant {
		launch, init = at, at
	}
	for _, a := range p.AddInstances {
		f.insts = append(f.insts, fleetInst{id: f.id("i-"), zone: a.Zone, readyAt: launch})
		f.note(a.Reason)
	}
	for _, a := range p.AddEnvironments {
		f.envs = append(f.envs, fleetEnv{id: f.id("e-"), inst: a.Instance, readyAt: init})
		f.nextReady = min(f.nextReady, init)
		f.note(a.Reason)
	}
	for _, r := range p.RemoveEnvironments {
		for k := range f.envs {
			if f.envs[k].id == r.Environment {
				f.envs = append(f.envs[:k], f.envs[k+1:]...)
				break
			}
		}
		f.note(r.Reason)
	}
	for _, d := range p.DrainInstances {
		for k := range f.insts {
			if f.insts[k].id == d.Instance {
				f.insts = append(f.insts[:k], f.insts[k+1:]...)
				break
			}
		}
		f.note(d.Reason)
	}
	f.nextReady = min(f.nextReady, at)
	f.peakInst = max(f.peakInst, len(f.insts))
	f.peakEnvs = max(f.peakEnvs, len(f.envs))
}

func (f *fleet) note(reason string) {
	if len(f.reasons) < maxReasons && (len(f.reasons) == 0 || f.reasons[len(f.reasons)-1] != reason) {
		f.reasons = append(f.reasons, reason)
	}
}

// instanceSeconds is the billed instance time: every instance that has booted,
// draining included. Booting time is not billed, as the usage ledger bills no
// pending time, so that replayed and metered instance time compare.
func (f *fleet) instanceSeconds() int64 {
	return f.instSteps * int64(f.step/time.Second)
}

func (f *fleet) String() string {
	return fmt.Sprintf("%d instances, %d environments (%d ready)", len(f.insts), len(f.envs), f.ready)
}
