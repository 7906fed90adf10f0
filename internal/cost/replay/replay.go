// Package replay replays a traffic trace through Lambda's compute types and
// prices what each would have used: on-demand (with cold starts and the reaping
// of idle environments), Provisioned Concurrency (with spill-over to on-demand),
// Managed Instances (driven by the scaler's own decider, internal/scaler: a
// minimum fleet across zones, asynchronous scale-out, throttles when traffic
// outruns it, gradual scale-in), and the hybrid of a Managed Instances fleet
// sized for the steady floor with on-demand for the rest.
//
// The replay is a deterministic simulation in fixed steps (a minute by default,
// a second on request). Within a step, invocations are taken as spread evenly, so
// the concurrency a step needs is its invocations' wall time divided by the step
// (Little's law). Usage is priced with internal/cost's Price… functions and the
// internal/pricing catalogue, so replayed and analytic figures agree. The package
// reads no clock and does no I/O beyond the writers it is handed.
package replay

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/scaler"
	"github.com/shoal-dev/shoal/internal/trace"
)

// The compute options a replay reports, in this order.
const (
	OnDemand         = cost.OnDemand
	Provisioned      = cost.Provisioned
	ManagedInstances = cost.ManagedInstances
	Hybrid           = cost.Compute("hybrid")
)

// Defaults of Config.
const (
	DefaultKeepAlive          = 10 * time.Minute
	DefaultAccountConcurrency = 1000
	DefaultInstanceLaunch     = 4 * time.Minute
	DefaultEnvInit            = 30 * time.Second
	DefaultDecideEvery        = 30 * time.Second
	DefaultFloorPercentile    = 5
	DefaultPoints             = 720
)

// Config says how to replay. Zero fields take their defaults.
type Config struct {
	Catalog *pricing.Catalog // nil means pricing.Default()
	Arch    pricing.Arch     // "" means x86_64
	// MemoryMB is the function's memory for sizing Managed Instances
	// environments; 0 means the largest memory in the series. Billing uses the
	// series' GB-seconds, which carry each invocation's memory.
	MemoryMB int
	Runtime  string // sets the default concurrency per vCPU; "" means cost.DefaultRuntime
	// InstanceType for Managed Instances; "" means m7i.large (x86_64) or m7g.large (arm64).
	InstanceType string
	// EnvConcurrency is PerExecutionEnvironmentMaxConcurrency; 0 means the
	// runtime's default per vCPU × the environment's vCPUs.
	EnvConcurrency int

	// On-demand.
	KeepAlive          time.Duration // idle environments are reaped after it
	InitDuration       time.Duration // billed init time per cold start (0: not billed)
	AccountConcurrency int           // concurrent executions before on-demand throttles

	// Provisioned is the Provisioned Concurrency level; 0 sizes it from the trace.
	Provisioned int

	// FreeTier deducts Lambda's monthly free tier, prorated to the trace's
	// length (once per option; the hybrid's goes to its on-demand part).
	FreeTier bool
	// SavingsPlan is the fraction off the EC2 on-demand price of Managed
	// Instances; the management fee stays on the on-demand price.
	SavingsPlan decimal.Decimal

	// Managed Instances.
	Scaling        scaler.Config // Mode, TargetCPUPercent, MaxVCPU, MinInstances, Zones…; Instance is set from InstanceType
	MinEnvs        int           // the version's minimum environments; 0 means 3
	MaxEnvs        int           // the version's maximum environments; 0 means none
	InstanceLaunch time.Duration // from the decider's request to a running instance
	EnvInit        time.Duration // from placement to a ready environment
	DecideEvery    time.Duration // how often the decider runs; rounded up to whole steps

	// FloorPercentile picks the hybrid's floor: that percentile of the per-step
	// concurrency. 0 means 5.
	FloorPercentile float64

	// Points is the most points of the time series; 0 means 720.
	Points int
	// Progress, if set, is called now and then with the steps done and the total.
	Progress func(done, total int)
}

func (c Config) withDefaults() Config {
	if c.Catalog == nil {
		c.Catalog = pricing.Default()
	}
	if c.Arch == "" {
		c.Arch = pricing.X86_64
	}
	if c.InstanceType == "" {
		c.InstanceType = "m7i.large"
		if c.Arch == pricing.ARM64 {
			c.InstanceType = "m7g.large"
		}
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = DefaultAccountConcurrency
	}
	if c.MinEnvs == 0 {
		c.MinEnvs = 3
	}
	if c.InstanceLaunch == 0 {
		c.InstanceLaunch = DefaultInstanceLaunch
	}
	if c.EnvInit == 0 {
		c.EnvInit = DefaultEnvInit
	}
	if c.DecideEvery == 0 {
		c.DecideEvery = DefaultDecideEvery
	}
	if c.FloorPercentile == 0 {
		c.FloorPercentile = DefaultFloorPercentile
	}
	if c.Points == 0 {
		c.Points = DefaultPoints
	}
	return c
}

// Validate reports the first problem with c (after defaults).
func (c Config) Validate() error {
	switch {
	case c.MemoryMB < 0 || c.MemoryMB > trace.MaxMemoryMB:
		return fmt.Errorf("replay: memory %d MB: want 0..%d", c.MemoryMB, trace.MaxMemoryMB)
	case c.EnvConcurrency < 0 || c.EnvConcurrency > cost.MaxEnvironmentConcurrency:
		return fmt.Errorf("replay: environment concurrency %d: want 1..%d", c.EnvConcurrency, cost.MaxEnvironmentConcurrency)
	case c.KeepAlive < 0 || c.InitDuration < 0 || c.InstanceLaunch < 0 || c.EnvInit < 0 || c.DecideEvery < 0:
		return errors.New("replay: negative duration")
	case c.AccountConcurrency < 1:
		return errors.New("replay: account concurrency must be positive")
	case c.Provisioned < 0:
		return errors.New("replay: negative provisioned concurrency")
	case c.MinEnvs < 1 || c.MaxEnvs < 0 || (c.MaxEnvs > 0 && c.MaxEnvs < c.MinEnvs):
		return fmt.Errorf("replay: environments min %d max %d: want 1 ≤ min ≤ max (0 for none)", c.MinEnvs, c.MaxEnvs)
	case !(c.FloorPercentile > 0 && c.FloorPercentile <= 100):
		return fmt.Errorf("replay: floor percentile %v: want (0, 100]", c.FloorPercentile)
	case c.Points < 2:
		return errors.New("replay: want at least 2 points")
	case c.SavingsPlan.IsNegative() || c.SavingsPlan.GreaterThanOrEqual(decimal.NewFromInt(1)):
		return fmt.Errorf("replay: savings plan %s: want a fraction in [0, 1)", c.SavingsPlan)
	}
	return nil
}

// Option is what one compute type did and cost over the trace.
type Option struct {
	Compute cost.Compute
	// Bill is priced with internal/cost over the trace's length.
	Bill cost.Option
	// Invocations served, and refused with a throttle (429).
	Invocations uint64
	Throttles   uint64
	// ColdStarts on on-demand environments (for Provisioned Concurrency and the
	// hybrid: of the invocations that went to on-demand).
	ColdStarts uint64
	// SpillOvers are the invocations Provisioned Concurrency or the hybrid's
	// fleet sent to on-demand.
	SpillOvers uint64
	// InstanceHours and the peaks of the Managed Instances fleet.
	InstanceHours    float64
	PeakInstances    int
	PeakEnvironments int
	// Provisioned is the Provisioned Concurrency level, or the hybrid's
	// floor in concurrent invocations.
	Provisioned int
	// Notes explain what set the option's size.
	Notes []string
}

// Total is the option's cost, unrounded.
func (o *Option) Total() decimal.Decimal { return o.Bill.Total }

// Point is one bucket of the time series.
type Point struct {
	Time        time.Time
	Invocations uint64
	// Concurrency is the largest per-step concurrency in the bucket.
	Concurrency float64
	// Cost is each option's cumulative cost at the bucket's end, in option
	// order, at first-tier prices (for charts; the bill is exact).
	Cost [4]float64
	// Instances is the Managed Instances fleet at the bucket's end; Throttles
	// are its throttled invocations in the bucket.
	Instances       int
	HybridInstances int
	Throttles       float64
	// OnDemandEnvs is the largest on-demand pool in the bucket.
	OnDemandEnvs int
}

// Result is a replay's outcome.
type Result struct {
	Start       time.Time
	Step        time.Duration
	Steps       int
	Functions   int
	Invocations uint64 // in the trace
	MemoryMB    int    // environment sizing memory
	Period      cost.Period
	Options     []Option // on-demand, provisioned-concurrency, managed-instances, hybrid
	// Cheapest is the option with the lowest bill among those that throttled
	// nothing (or, when all did, the fewest throttles).
	Cheapest cost.Compute
	// Bucket is the width of a time-series point.
	Bucket      time.Duration
	Series      []Point
	Assumptions []string
	// ScalerActions are the first actions the decider took, with their reasons.
	ScalerActions []string
}

// Option returns the result's option for c.
func (r *Result) Option(c cost.Compute) *Option {
	for i := range r.Options {
		if r.Options[i].Compute == c {
			return &r.Options[i]
		}
	}
	return nil
}

// Run replays s with cfg.
func Run(s *trace.Series, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if s == nil || s.Len() == 0 {
		return nil, errors.New("replay: empty trace")
	}
	if s.Step < time.Second || s.Step%time.Second != 0 {
		return nil, fmt.Errorf("replay: step %v: want whole seconds", s.Step)
	}
	sim, err := newSim(s, cfg)
	if err != nil {
		return nil, err
	}
	sim.run()
	return sim.result()
}

// envShape is a Managed Instances environment for memoryMB on instance type it,
// by the same rules as the cost engine's sizing: at least 2 GB, the instance's
// memory-to-vCPU ratio, whole vCPUs.
func envShape(it pricing.InstanceType, memoryMB, slots int, rt cost.RuntimeDefaults) (scaler.Version, error) {
	ratio := it.MemoryGiBPerVCPU()
	if ratio < 1 {
		return scaler.Version{}, fmt.Errorf("instance type %s has no memory-to-vCPU ratio", it.Name)
	}
	memGiB := max((memoryMB+1023)/1024, cost.MinEnvironmentMemoryGiB)
	vcpu := max(1, (memGiB+ratio-1)/ratio)
	if vcpu > it.VCPU || vcpu*ratio > cost.MaxEnvironmentMemoryGiB {
		return scaler.Version{}, fmt.Errorf("a %d MB function does not fit an environment on %s", memoryMB, it.Name)
	}
	if slots == 0 {
		slots = min(rt.PerVCPU*vcpu, cost.MaxEnvironmentConcurrency)
	}
	return scaler.Version{
		Key: "function:1", EnvVCPU: float64(vcpu), EnvMemoryMiB: vcpu * ratio * 1024, EnvSlots: slots,
	}, nil
}

// percentiles returns the p-th percentiles (0..100) of buf, in the order asked,
// without sorting all of it (it reorders buf).
func percentiles(buf []float64, ps ...float64) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		k := int(math.Ceil(p/100*float64(len(buf)))) - 1
		k = min(max(k, 0), len(buf)-1)
		out[i] = nth(buf, k)
	}
	return out
}

// nth returns the k-th smallest element of a, partially reordering it
// (Hoare's selection with a median-of-three pivot).
func nth(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		pivot := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < pivot {
				i++
			}
			for a[j] > pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}
