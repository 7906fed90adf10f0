package replay

import (
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/scaler"
	"github.com/shoal-dev/shoal/internal/trace"
)

// sim is one replay in progress. It is used by one goroutine.
type sim struct {
	s      *trace.Series
	cfg    Config
	it     pricing.InstanceType
	rt     cost.RuntimeDefaults
	shape  scaler.Version
	memMB  int
	stepMs float64

	provisioned int
	floor       float64 // hybrid: concurrency sent to its fleet at most
	decideSteps int

	od, pcSpill, hyOD *pool
	mi, hy            *fleet

	// Usage, accumulated in float64 and priced in decimal at the end.
	odReq, odGBs, odThr           float64
	pcExecGBs, pcSpillGBs, pcThr  float64
	pcSpillInv                    float64
	miReq, miThr                  float64
	hyMIReq, hyODReq, hyODGBs     float64
	hySpillInv, hyThr             float64
	coldOD, coldPC, coldHy        uint64
	odPeak, pcPeakSpill, hyODPeak int

	// Chart rates (first tier), USD.
	rReq, rMIReq, rOD, rProv, rPCExec, rHour float64

	bucket     int
	thrFlushed float64
	points     []Point
	cur        Point

	assumptions []string
}

func newSim(s *trace.Series, cfg Config) (*sim, error) {
	cat := cfg.Catalog
	it, err := cat.InstanceType(cfg.InstanceType)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if it.Arch != cfg.Arch {
		return nil, fmt.Errorf("replay: instance type %s is %s; the function is %s", it.Name, it.Arch, cfg.Arch)
	}
	rates, err := cat.Rates(cfg.Arch)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	rt, err := cost.RuntimeConcurrency(cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = s.MemoryMB
	}
	if mem == 0 {
		mem = trace.DefaultMemoryMB
	}
	shape, err := envShape(it, mem, cfg.EnvConcurrency, rt)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	shape.MinEnvironments, shape.MaxEnvironments = cfg.MinEnvs, cfg.MaxEnvs

	m := &sim{s: s, cfg: cfg, it: it, rt: rt, shape: shape, memMB: mem, stepMs: float64(s.Step / time.Millisecond)}
	// Per-step concurrency (Little's law), for the percentiles that size
	// Provisioned Concurrency and the hybrid's floor; selection reorders it.
	conc := make([]float64, s.Len())
	var busy, cpu float64
	for i, b := range s.BusyMs {
		conc[i] = b / m.stepMs
		busy += b
		cpu += s.CPUMs[i]
	}
	cpuPerInFlight := 0.0
	if busy > 0 {
		cpuPerInFlight = cpu / busy
	}
	m.decideSteps = max(1, stepsOf(cfg.DecideEvery, s.Step))

	f := func(d decimal.Decimal) float64 { return d.InexactFloat64() }
	m.rReq = f(cat.Lambda.RequestPerMillion) / 1e6
	m.rMIReq = f(cat.ManagedInstances.RequestPerMillion) / 1e6
	m.rOD = f(rates.FirstTierPrice())
	m.rProv = f(rates.ProvisionedPerGBSecond)
	m.rPCExec = f(rates.ProvisionedDurationPerGBSecond)
	ec2, fee := cat.ManagedInstances.Hourly(it, cfg.SavingsPlan)
	m.rHour = f(ec2.Add(fee))

	// Provisioned Concurrency: a provisioned environment pays for itself when it
	// is busy at least provisioned ÷ (on-demand − executed) of the time (60 % at
	// us-east-1 prices), so the level is the concurrency exceeded that share of steps.
	breakEven := m.rProv / (m.rOD - m.rPCExec)
	q := percentiles(conc, 100*(1-breakEven), cfg.FloorPercentile)
	if cfg.Provisioned > 0 {
		m.provisioned = cfg.Provisioned
		m.note("Provisioned Concurrency: %d environments, as given.", m.provisioned)
	} else {
		if breakEven < 1 {
			m.provisioned = int(math.Floor(q[0] + 1e-9))
		}
		m.note("Provisioned Concurrency: %d environments, the concurrency the trace reaches in %.0f%% of its steps (a provisioned environment pays off when busy at least %.0f%% of the time).",
			m.provisioned, 100*breakEven, 100*breakEven)
	}

	keep := stepsOf(cfg.KeepAlive, s.Step)
	m.od, m.pcSpill, m.hyOD = newPool(keep), newPool(keep), newPool(keep)

	sc := cfg.Scaling
	sc.Instance = scaler.InstanceShape{Type: it.Name, VCPU: float64(it.VCPU), MemoryMiB: it.MemoryGiB * 1024}
	dec, err := scaler.New(sc)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	m.mi = newFleet(dec, shape, s.Start, s.Step, cfg.InstanceLaunch, cfg.EnvInit)
	m.mi.warm(s.BusyMs[0]/m.stepMs, s.CPUMs[0]/m.stepMs)

	// The hybrid's fleet holds the floor; what the scaler would keep for a steady
	// floor becomes its fixed size (min = max), and everything above goes on-demand.
	m.floor = q[1]
	if m.floor > 0 {
		hdec, err := scaler.New(sc)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		m.hy = newFleet(hdec, shape, s.Start, s.Step, cfg.InstanceLaunch, cfg.EnvInit)
		m.hy.warm(m.floor, m.floor*cpuPerInFlight)
		n := len(m.hy.envs)
		m.hy.shape.MinEnvironments, m.hy.shape.MaxEnvironments = n, n
		m.note("Hybrid: a Managed Instances fleet of %d instances (%d environments) carries up to %.1f concurrent invocations, the %gth percentile of the trace's concurrency; the rest runs on-demand.",
			len(m.hy.insts), n, m.floor, cfg.FloorPercentile)
	} else {
		m.note("Hybrid: the trace has no steady floor (its %gth percentile of concurrency is 0), so the hybrid is on-demand alone.", cfg.FloorPercentile)
	}

	m.bucket = (s.Len() + cfg.Points - 1) / cfg.Points
	m.points = make([]Point, 0, (s.Len()+m.bucket-1)/m.bucket)

	if len(s.Functions) > 1 {
		m.note("The trace's %d functions are replayed as one workload: they share on-demand environments, the provisioned level and the fleet (environments sized for the largest memory, %d MB); each invocation is billed at its own memory.", len(s.Functions), mem)
	}
	m.note("Steps of %v; within a step invocations are spread evenly, so a step needs the wall time in flight during it ÷ the step in concurrency (Little's law); invocations longer than a step occupy the steps they run in.", s.Step)
	m.note("On-demand: one invocation per environment; an environment is reaped when no invocation started in the last %v; %d concurrent executions before throttles; init time billed per cold start: %v.",
		cfg.KeepAlive, cfg.AccountConcurrency, cfg.InitDuration)
	dc := dec.Config()
	m.note("Managed Instances: %s (%d vCPU, %d GiB, $%s/h with the %s%% fee); environments of %g vCPU, %d MiB and %d concurrent invocations (%s: %d per vCPU); %d–%s environments; %s scaling; at least %d instances across %d zones; MaxVCpuCount %d.",
		it.Name, it.VCPU, it.MemoryGiB, ec2.Add(fee).String(), cat.ManagedInstances.ManagementFee.Shift(2).String(),
		shape.EnvVCPU, shape.EnvMemoryMiB, shape.EnvSlots, rt.Family, rt.PerVCPU, cfg.MinEnvs, maxName(cfg.MaxEnvs), modeName(dc), dc.MinInstances, len(dc.Zones), dc.MaxVCPU)
	m.note("Managed Instances scaling: the decider runs every %v; a new instance runs %v after it is asked for, an environment serves %v after it is placed; the replay starts with the fleet the scaler holds for the first step's traffic; an invocation is throttled when every ready environment's slots or vCPUs are in use.",
		time.Duration(m.decideSteps)*s.Step, cfg.InstanceLaunch, cfg.EnvInit)
	m.note("CPU demand is the trace's CPU time per step; where the trace gives none, its duration (CPU-bound).")
	ft, sp := "no free tier", "no Savings Plan"
	if cfg.FreeTier {
		ft = "the Lambda free tier prorated to the trace's length (in the bills; the cumulative-cost chart ignores it)"
	}
	if cfg.SavingsPlan.IsPositive() {
		sp = fmt.Sprintf("a Savings Plan of %s%% off EC2 (the management fee stays on the on-demand price)", cfg.SavingsPlan.Shift(2).String())
	}
	m.note("Prices from catalogue %s (%s, %s); %s; %s.", cat.Version, cat.Region, cat.Date, ft, sp)
	return m, nil
}

func modeName(c scaler.Config) string {
	if c.Mode == scaler.ModeManual {
		return fmt.Sprintf("Manual (target CPU %g%%)", c.TargetCPUPercent)
	}
	return fmt.Sprintf("Auto (%gx headroom over the peak of the last %v)", c.Headroom, c.PeakWindow)
}

func maxName(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func (m *sim) note(format string, args ...any) {
	m.assumptions = append(m.assumptions, fmt.Sprintf(format, args...))
}

// need is the number of environments a step with concurrency c needs.
func need(c float64, n uint32) int {
	k := int(math.Ceil(c - 1e-9))
	if k < 1 && n > 0 {
		k = 1
	}
	return k
}

func (m *sim) run() {
	s := m.s
	total := s.Len()
	limit := float64(m.cfg.AccountConcurrency)
	P := float64(m.provisioned)
	every := max(1, total/100)
	for i := 0; i < total; i++ {
		n := float64(s.Count[i])
		c := s.BusyMs[i] / m.stepMs
		cpu := s.CPUMs[i] / m.stepMs
		gbs := s.GBs[i]

		// On-demand: everything above the account's concurrency throttles.
		served := 1.0
		if c > limit {
			served = limit / c
		}
		m.coldOD += uint64(m.od.step(i, need(c*served, s.Count[i])))
		m.odPeak = max(m.odPeak, m.od.alive)
		m.odReq += n * served
		m.odGBs += gbs * served
		m.odThr += n * (1 - served)

		// Provisioned Concurrency: P environments, the rest spills to on-demand.
		spill := 0.0
		if c > P {
			spill = (c - P) / c
		}
		spillNeed := 0
		if c*served > P {
			spillNeed = need(c*served-P, 1)
		}
		m.coldPC += uint64(m.pcSpill.step(i, spillNeed))
		m.pcPeakSpill = max(m.pcPeakSpill, m.pcSpill.alive)
		spillServed := math.Max(0, spill-(1-served))
		m.pcExecGBs += gbs * (1 - spill)
		m.pcSpillGBs += gbs * spillServed
		m.pcSpillInv += n * spillServed
		m.pcThr += n * (1 - served)

		// Managed Instances.
		frac := m.mi.serve(i, c, cpu)
		m.miReq += n * frac
		m.miThr += n * (1 - frac)
		if (i+1)%m.decideSteps == 0 {
			m.mi.decide(i)
		}

		// Hybrid: the fleet takes up to the floor, on-demand the rest.
		toMI := 0.0
		if m.hy != nil && c > 0 {
			toMI = math.Min(c, m.floor)
			toMI *= m.hy.serve(i, toMI, cpu*toMI/c)
		}
		rest := c - toMI
		restShare := 0.0
		if c > 0 {
			restShare = rest / c
		}
		odServed := 1.0
		if rest > limit {
			odServed = limit / rest
		}
		m.coldHy += uint64(m.hyOD.step(i, need(rest*odServed, uint32(math.Ceil(n*restShare)))))
		m.hyODPeak = max(m.hyODPeak, m.hyOD.alive)
		m.hyMIReq += n * (1 - restShare)
		m.hyODReq += n * restShare * odServed
		m.hyODGBs += gbs * restShare * odServed
		m.hySpillInv += n * restShare * odServed
		m.hyThr += n * restShare * (1 - odServed)

		m.track(i, c)
		if m.cfg.Progress != nil && (i+1)%every == 0 {
			m.cfg.Progress(i+1, total)
		}
	}
	if m.cur.Invocations > 0 || len(m.points)*m.bucket < total {
		m.flush(total)
	}
}

// track adds step i to the current time-series bucket.
func (m *sim) track(i int, c float64) {
	m.cur.Invocations += uint64(m.s.Count[i])
	m.cur.Concurrency = math.Max(m.cur.Concurrency, c)
	m.cur.OnDemandEnvs = max(m.cur.OnDemandEnvs, m.od.alive)
	if (i+1)%m.bucket == 0 {
		m.flush(i + 1)
	}
}

func (m *sim) flush(done int) {
	p := m.cur
	p.Time = m.s.Start.Add(time.Duration(len(m.points)*m.bucket) * m.s.Step)
	secs := float64(done) * m.stepMs / 1000
	gb := float64(m.memMB) / 1024
	initGBs := m.cfg.InitDuration.Seconds() * gb
	p.Cost[0] = m.odReq*m.rReq + (m.odGBs+float64(m.coldOD)*initGBs)*m.rOD
	p.Cost[1] = float64(m.provisioned)*gb*secs*m.rProv + m.pcExecGBs*m.rPCExec +
		(m.pcSpillGBs+float64(m.coldPC)*initGBs)*m.rOD + (m.odReq)*m.rReq
	p.Cost[2] = float64(m.mi.instanceSeconds())/3600*m.rHour + m.miReq*m.rMIReq
	p.Cost[3] = m.hyMIReq*m.rMIReq + m.hyODReq*m.rReq + (m.hyODGBs+float64(m.coldHy)*initGBs)*m.rOD
	if m.hy != nil {
		p.Cost[3] += float64(m.hy.instanceSeconds()) / 3600 * m.rHour
		p.HybridInstances = len(m.hy.insts)
	}
	p.Instances = len(m.mi.insts)
	p.Throttles = m.miThr - m.thrFlushed
	m.thrFlushed = m.miThr
	m.points = append(m.points, p)
	m.cur = Point{}
}
