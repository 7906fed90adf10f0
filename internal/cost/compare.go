package cost

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// Workload describes steady traffic of one function.
type Workload struct {
	// Rate is the mean request rate per second. When it is zero, Requests (per period)
	// gives the traffic instead.
	Rate     decimal.Decimal
	Requests decimal.Decimal
	Duration time.Duration // mean wall time per invocation
	CPUTime  time.Duration // mean CPU time per invocation; 0 means Duration
	MemoryMB int64         // 0 means 1024
	Arch     pricing.Arch  // "" means x86_64
	Runtime  string        // for the Managed Instances concurrency defaults
}

// Config holds the choices of one comparison besides the workload.
type Config struct {
	Period Period // zero means Month

	InstanceType string // "" lets the engine choose
	Instances    int    // 0 lets the engine size the fleet
	Provisioned  int    // 0 lets the engine size the provisioned level
	// EnvConcurrency is PerExecutionEnvironmentMaxConcurrency; 0 means the
	// runtime's default per vCPU.
	EnvConcurrency int

	SavingsPlan decimal.Decimal // fraction off the EC2 on-demand price
	FreeTier    bool

	TargetUtilization decimal.Decimal // Managed Instances; 0 means DefaultTargetUtilization
	SpillTarget       float64         // Provisioned Concurrency; 0 means DefaultSpillTarget
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Instances < 0:
		return errors.New("instances must not be negative")
	case c.Provisioned < 0:
		return errors.New("provisioned concurrency must not be negative")
	case c.EnvConcurrency < 0 || c.EnvConcurrency > MaxEnvironmentConcurrency:
		return fmt.Errorf("environment concurrency %d: want 1..%d", c.EnvConcurrency, MaxEnvironmentConcurrency)
	case c.SavingsPlan.IsNegative() || c.SavingsPlan.GreaterThanOrEqual(decimal.NewFromInt(1)):
		return fmt.Errorf("savings plan %s: want a fraction in [0, 1), e.g. 0.3", c.SavingsPlan)
	case c.SpillTarget < 0 || c.SpillTarget >= 1:
		return errors.New("spill-over target must be a fraction in [0, 1)")
	case c.Period.Hours.IsNegative():
		return errors.New("period must be positive")
	}
	return nil
}

// Validate checks the workload.
func (w Workload) Validate() error {
	switch {
	case w.Rate.IsNegative() || w.Requests.IsNegative():
		return errors.New("rate and requests must not be negative")
	case w.Duration <= 0:
		return errors.New("duration must be positive")
	case w.Duration > MaxDuration:
		return fmt.Errorf("duration %v: a Lambda invocation runs at most %v", w.Duration, MaxDuration)
	case w.CPUTime < 0:
		return errors.New("CPU time must not be negative")
	case w.MemoryMB < 0:
		return errors.New("memory must be positive")
	case w.MemoryMB > 0 && (w.MemoryMB < 128 || w.MemoryMB > 32768):
		return fmt.Errorf("memory %d MB: Lambda allows 128 to 32768 MB", w.MemoryMB)
	}
	return nil
}

// Result is a priced comparison of the three compute types.
type Result struct {
	Catalog  CatalogRef
	Workload Workload // with defaults filled in
	Period   Period
	Rate     decimal.Decimal // requests per second
	Requests decimal.Decimal // requests per period
	BilledMs int64           // billed milliseconds per invocation

	Options []Option // on-demand, provisioned-concurrency, managed-instances

	Fleet       Fleet
	Provisioned ProvisionedPlan

	// BreakEvenRPS is the request rate at which on-demand and this Managed Instances
	// fleet (held fixed) cost the same; nil when on-demand never costs more. When it
	// is beyond what the fleet carries at its target, a warning says so.
	BreakEvenRPS *decimal.Decimal

	Cheapest       Compute
	Recommendation string
	Assumptions    []string
	Warnings       []string
}

// CatalogRef identifies the price catalogue a result used.
type CatalogRef struct {
	Version  string `json:"version"`
	Date     string `json:"date"`
	Region   string `json:"region"`
	Currency string `json:"currency"`
}

// Option returns the option of one compute type.
func (r *Result) Option(c Compute) (Option, bool) {
	for _, o := range r.Options {
		if o.Compute == c {
			return o, true
		}
	}
	return Option{}, false
}

func (w Workload) withDefaults() Workload {
	if w.MemoryMB == 0 {
		w.MemoryMB = 1024
	}
	if w.Arch == "" {
		w.Arch = pricing.X86_64
	}
	if w.CPUTime == 0 {
		w.CPUTime = w.Duration
	}
	if w.Runtime == "" {
		w.Runtime = DefaultRuntime
	}
	return w
}

// Compare prices one workload on on-demand, Provisioned Concurrency and Managed
// Instances for one period, sizing what the configuration leaves open.
func Compare(cat *pricing.Catalog, w Workload, cfg Config) (*Result, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w = w.withDefaults()
	if cfg.Period.Hours.IsZero() {
		cfg.Period = Month
	}
	p := cfg.Period
	res := &Result{
		Catalog:  CatalogRef{Version: cat.Version, Date: cat.Date, Region: cat.Region, Currency: cat.Currency},
		Workload: w,
		Period:   p,
		BilledMs: cat.Lambda.BilledMs(w.Duration),
	}
	if w.Rate.IsPositive() {
		res.Rate = w.Rate
		res.Requests = w.Rate.Mul(p.Seconds())
	} else {
		res.Requests = w.Requests
		res.Rate = w.Requests.DivRound(p.Seconds(), 12)
	}

	od, err := priceOnDemandAt(cat, w, p, cfg.FreeTier, res.Requests, res.BilledMs)
	if err != nil {
		return nil, err
	}

	res.Provisioned = SizeProvisioned(res.Rate, w.Duration, cfg.Provisioned, cfg.SpillTarget)
	pc, err := priceProvisionedAt(cat, w, p, cfg.FreeTier, res.Requests, res.BilledMs, res.Provisioned)
	if err != nil {
		return nil, err
	}

	res.Fleet, err = SizeFleet(cat, FleetRequest{
		Rate: res.Rate, Duration: w.Duration, CPUTime: w.CPUTime, MemoryMB: w.MemoryMB,
		Arch: w.Arch, Runtime: w.Runtime, InstanceType: cfg.InstanceType, Instances: cfg.Instances,
		EnvConcurrency: cfg.EnvConcurrency, SavingsPlan: cfg.SavingsPlan, TargetUtilization: cfg.TargetUtilization,
	})
	if err != nil {
		return nil, fmt.Errorf("managed instances: %w", err)
	}
	mi, err := priceFleetAt(cat, res.Fleet, p, cfg, res.Requests)
	if err != nil {
		return nil, err
	}
	if why := classicLimits(w); why != "" {
		od.Unavailable, pc.Unavailable = why, why
	}
	res.Options = []Option{od, pc, mi}

	if od.Unavailable == "" {
		res.BreakEvenRPS, err = BreakEven(cat, w, cfg, res.Fleet)
		if err != nil {
			return nil, err
		}
	}
	res.Cheapest = mi.Compute
	for _, o := range res.Options {
		if o.Unavailable == "" && o.Total.LessThan(optionTotal(res.Options, res.Cheapest)) {
			res.Cheapest = o.Compute
		}
	}
	res.Warnings = warnings(res)
	res.Assumptions = assumptions(cat, res, cfg)
	res.Recommendation = recommend(res)
	return res, nil
}

// MaxClassicMemoryMB is the most memory on-demand and Provisioned Concurrency
// give a function; Managed Instances go to 32 GB.
const MaxClassicMemoryMB = 10240

// MaxDuration is Lambda's longest function timeout.
const MaxDuration = 900 * time.Second

// classicLimits says why on-demand and Provisioned Concurrency cannot run w,
// or "" when they can.
func classicLimits(w Workload) string {
	if w.MemoryMB > MaxClassicMemoryMB {
		return fmt.Sprintf("on-demand and Provisioned Concurrency allow at most %s MB", GroupThousands(strconv.Itoa(MaxClassicMemoryMB)))
	}
	return ""
}

func optionTotal(opts []Option, c Compute) decimal.Decimal {
	for _, o := range opts {
		if o.Compute == c {
			return o.Total
		}
	}
	return decimal.Zero
}

func gbSeconds(requests decimal.Decimal, billedMs, memoryMB int64) decimal.Decimal {
	return pricing.GBSeconds(requests.Mul(decimal.NewFromInt(billedMs)), memoryMB)
}

func priceOnDemandAt(cat *pricing.Catalog, w Workload, p Period, free bool, requests decimal.Decimal, billedMs int64) (Option, error) {
	return PriceOnDemand(cat, OnDemandUsage{
		Arch:      w.Arch,
		Requests:  requests,
		GBSeconds: gbSeconds(requests, billedMs, w.MemoryMB),
	}, p, free)
}

func priceProvisionedAt(cat *pricing.Catalog, w Workload, p Period, free bool, requests decimal.Decimal, billedMs int64, plan ProvisionedPlan) (Option, error) {
	total := gbSeconds(requests, billedMs, w.MemoryMB)
	spill := total.Mul(decimal.NewFromFloat(plan.SpillFraction))
	gb := decimal.NewFromInt(w.MemoryMB).Div(decimal.NewFromInt(pricing.MBPerGB))
	return PriceProvisioned(cat, ProvisionedUsage{
		Arch:                 w.Arch,
		Provisioned:          plan.Provisioned,
		Requests:             requests,
		ProvisionedGBSeconds: decimal.NewFromInt(int64(plan.Provisioned)).Mul(gb).Mul(p.Seconds()),
		ExecutedGBSeconds:    total.Sub(spill),
		SpillGBSeconds:       spill,
		SpillFraction:        plan.SpillFraction,
	}, p, free)
}

func priceFleetAt(cat *pricing.Catalog, f Fleet, p Period, cfg Config, requests decimal.Decimal) (Option, error) {
	return PriceManagedInstances(cat, ManagedUsage{
		Requests:      requests,
		InstanceHours: []InstanceHours{{Type: f.Type.Name, Hours: decimal.NewFromInt(int64(f.Instances)).Mul(p.Hours)}},
		SavingsPlan:   cfg.SavingsPlan,
		Instances:     f.Instances,
	}, p, cfg.FreeTier)
}

// BreakEven finds the request rate at which on-demand costs as much as the given Managed
// Instances fleet (held fixed) for the workload's duration and memory. It returns nil
// when on-demand stays cheaper at any rate up to ten million requests per second. The
// answer is exact to 1e-9 req/s; the free tier and the duration tiers are honoured.
func BreakEven(cat *pricing.Catalog, w Workload, cfg Config, f Fleet) (*decimal.Decimal, error) {
	w = w.withDefaults()
	p := cfg.Period
	if p.Hours.IsZero() {
		p = Month
	}
	billed := cat.Lambda.BilledMs(w.Duration)
	diff := func(rate decimal.Decimal) (decimal.Decimal, error) {
		n := rate.Mul(p.Seconds())
		od, err := priceOnDemandAt(cat, w, p, cfg.FreeTier, n, billed)
		if err != nil {
			return decimal.Zero, err
		}
		mi, err := priceFleetAt(cat, f, p, cfg, n)
		if err != nil {
			return decimal.Zero, err
		}
		return od.Total.Sub(mi.Total), nil
	}
	lo, hi := decimal.Zero, decimal.NewFromInt(1)
	limit := decimal.NewFromInt(10_000_000)
	for {
		d, err := diff(hi)
		if err != nil {
			return nil, err
		}
		if !d.IsNegative() {
			break
		}
		lo = hi
		hi = hi.Mul(decimal.NewFromInt(2))
		if hi.GreaterThan(limit) {
			return nil, nil
		}
	}
	eps := decimal.New(1, -9)
	two := decimal.NewFromInt(2)
	for hi.Sub(lo).GreaterThan(eps) {
		mid := lo.Add(hi).Div(two).Round(12)
		d, err := diff(mid)
		if err != nil {
			return nil, err
		}
		if d.IsNegative() {
			lo = mid
		} else {
			hi = mid
		}
	}
	be := hi.Round(6)
	return &be, nil
}

func warnings(r *Result) []string {
	var out []string
	f := r.Fleet
	if !f.CarriesLoad() {
		out = append(out, fmt.Sprintf(
			"%d × %s (%d vCPU) cannot carry %s req/s at %s of CPU each: that is %s vCPU of work, %.0f %% of the fleet, "+
				"and at the %s %% target it needs %d instances; expect throttles (pass --cpu-time if the function waits on I/O)",
			f.Instances, f.Type.Name, f.Instances*f.Type.VCPU, num(r.Rate), r.Workload.CPUTime,
			num(f.VCPUDemand), f.Utilization()*100, f.TargetUtilization.Shift(2).String(), f.LoadInstances()))
	}
	if f.Instances < MinInstances {
		out = append(out, fmt.Sprintf("a fleet of %d instances is below the default minimum of %d across Availability Zones", f.Instances, MinInstances))
	}
	if vcpus := f.Instances * f.Type.VCPU; vcpus > DefaultMaxVCPU {
		out = append(out, fmt.Sprintf("%d × %s is %d vCPU, above a capacity provider's default MaxVCpuCount of %d: raise MaxVCpuCount to at least %d, or the fleet stops growing there and invocations throttle",
			f.Instances, f.Type.Name, vcpus, DefaultMaxVCPU, vcpus))
	}
	if be := r.BreakEvenRPS; be != nil {
		if limit := f.MaxRate(r.Workload.Duration, r.Workload.CPUTime); be.GreaterThan(limit) {
			out = append(out, fmt.Sprintf("at the break-even rate of %s req/s the %d × %s fleet would be past its %s %% target (it carries up to %s req/s at %s of CPU each); "+
				"a fleet grown for that rate costs more, so Managed Instances may not break even at all (pass --cpu-time if the function waits on I/O)",
				be.Round(2).StringFixed(2), f.Instances, f.Type.Name, f.TargetUtilization.Shift(2).String(), limit.Round(2).StringFixed(2), r.Workload.CPUTime))
		}
	}
	return out
}

func recommend(r *Result) string {
	od, _ := r.Option(OnDemand)
	best, _ := r.Option(r.Cheapest)
	var b strings.Builder
	if od.Unavailable != "" {
		fmt.Fprintf(&b, "Only Managed Instances can run this function (%s): %s per %s on %d × %s.",
			od.Unavailable, pricing.FormatUSD(best.Total), r.Period, r.Fleet.Instances, r.Fleet.Type.Name)
		return b.String()
	}
	if r.Cheapest == OnDemand {
		fmt.Fprintf(&b, "Stay on on-demand: %s per %s is the cheapest", pricing.FormatUSD(od.Total), r.Period)
	} else {
		saving := decimal.Zero
		if od.Total.IsPositive() {
			saving = od.Total.Sub(best.Total).Div(od.Total).Shift(2).Round(0)
		}
		fmt.Fprintf(&b, "%s is cheapest: %s per %s against %s on-demand (%s %% less)",
			titleCompute(r.Cheapest), pricing.FormatUSD(best.Total), r.Period, pricing.FormatUSD(od.Total), saving)
	}
	if r.BreakEvenRPS != nil {
		side := "above"
		if r.Rate.LessThan(*r.BreakEvenRPS) {
			side = "below"
		}
		fmt.Fprintf(&b, "; %d × %s breaks even with on-demand at %s req/s (this workload runs at %s req/s, %s it)",
			r.Fleet.Instances, r.Fleet.Type.Name, r.BreakEvenRPS.Round(2).StringFixed(2), num(r.Rate), side)
		if r.BreakEvenRPS.GreaterThan(r.Fleet.MaxRate(r.Workload.Duration, r.Workload.CPUTime)) {
			b.WriteString(", a rate past what that fleet carries at its target (see the warnings)")
		}
	}
	b.WriteString(".")
	if r.Cheapest == ManagedInstances && !r.Fleet.CarriesLoad() {
		b.WriteString(" But the fleet priced is too small for this load (see the warnings); price the sized fleet before moving.")
	}
	return b.String()
}

func titleCompute(c Compute) string {
	switch c {
	case OnDemand:
		return "On-demand"
	case Provisioned:
		return "Provisioned Concurrency"
	case ManagedInstances:
		return "Managed Instances"
	}
	return string(c)
}

// num prints a decimal without trailing zeros and with at most 4 decimals.
func num(d decimal.Decimal) string {
	return d.Round(4).String()
}
