package cost

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// Sizing rules of Lambda Managed Instances (see docs/cost.md for the sources).
const (
	// MinInstances is the smallest fleet: three instances, one per Availability Zone.
	MinInstances = 3
	// MinEnvironmentMemoryGiB is the smallest execution environment: 2 GB and 1 vCPU.
	MinEnvironmentMemoryGiB = 2
	// MaxEnvironmentMemoryGiB is the largest execution environment (32 GB).
	MaxEnvironmentMemoryGiB = 32
	// MaxEnvironmentConcurrency caps PerExecutionEnvironmentMaxConcurrency.
	MaxEnvironmentConcurrency = 1600
	// DefaultRuntime is assumed when the workload names none.
	DefaultRuntime = "nodejs22.x"
	// DefaultSpillTarget is the Erlang-B spill-over the provisioned level is sized for.
	DefaultSpillTarget = 0.01
	// DefaultMaxVCPU is a capacity provider's default MaxVCpuCount.
	DefaultMaxVCPU = 400
)

// DefaultTargetUtilization is the CPU utilisation the fleet is sized for: the Auto scaling
// mode keeps enough headroom for traffic to double within 5 minutes, so half the
// capacity is in use.
var DefaultTargetUtilization = decimal.NewFromFloat(0.5)

// RuntimeDefaults is a runtime's default multi-concurrency on Managed Instances.
type RuntimeDefaults struct {
	Runtime string // as given, e.g. "python3.13"
	Family  string // nodejs, python, java, dotnet, provided
	PerVCPU int    // concurrent requests per vCPU of an environment
}

var runtimeFamilies = []RuntimeDefaults{
	{Family: "nodejs", PerVCPU: 64},
	{Family: "python", PerVCPU: 16},
	{Family: "java", PerVCPU: 32},
	{Family: "dotnet", PerVCPU: 32},
	{Family: "provided", PerVCPU: 8},
}

// RuntimeConcurrency returns the default concurrency per vCPU of an execution
// environment for a Lambda runtime identifier (nodejs22.x, python3.13, java21, dotnet8,
// provided.al2023) or a bare family name (node, rust, go count as their runtimes).
func RuntimeConcurrency(runtime string) (RuntimeDefaults, error) {
	r := strings.ToLower(strings.TrimSpace(runtime))
	if r == "" {
		r = DefaultRuntime
	}
	aliases := map[string]string{"node": "nodejs", "rust": "provided", "go": "provided", "custom": "provided", "net": "dotnet", ".net": "dotnet"}
	for alias, fam := range aliases {
		if r == alias {
			r = fam
		}
	}
	for _, f := range runtimeFamilies {
		if strings.HasPrefix(r, f.Family) {
			f.Runtime = runtime
			if runtime == "" {
				f.Runtime = DefaultRuntime
			}
			return f, nil
		}
	}
	return RuntimeDefaults{}, fmt.Errorf("runtime %q: want nodejs, python, java, dotnet or provided", runtime)
}

// FleetRequest asks for a Managed Instances fleet for a steady load.
type FleetRequest struct {
	Rate     decimal.Decimal // requests per second
	Duration time.Duration   // mean wall time per request
	CPUTime  time.Duration   // mean CPU time per request; 0 means Duration
	MemoryMB int64
	Arch     pricing.Arch
	Runtime  string

	InstanceType string // "" lets the engine pick the cheapest type that fits
	Instances    int    // 0 lets the engine size the fleet
	// EnvConcurrency is PerExecutionEnvironmentMaxConcurrency; 0 means the
	// runtime's default per vCPU of the environment.
	EnvConcurrency int

	SavingsPlan       decimal.Decimal // fraction off the EC2 on-demand price
	TargetUtilization decimal.Decimal // 0 means DefaultTargetUtilization
	MinInstances      int             // 0 means MinInstances
}

// Environment is the shape of one execution environment.
type Environment struct {
	VCPU        int
	MemoryGiB   int
	Concurrency int // concurrent requests it accepts
}

// Fleet is a sized Managed Instances fleet and the reasoning behind it.
type Fleet struct {
	Type       pricing.InstanceType
	Instances  int  // the fleet priced
	Sized      bool // the engine chose Instances
	TypeChosen bool // the engine chose Type
	Candidates int  // instance types considered

	Runtime         RuntimeDefaults
	Env             Environment
	EnvsPerInstance int

	Concurrency       decimal.Decimal // Little's law: rate × duration
	VCPUDemand        decimal.Decimal // rate × CPU time
	TargetUtilization decimal.Decimal
	SlotEnvironments  int    // environments the concurrency needs at the target
	CPUEnvironments   int    // environments the vCPU demand needs at the target
	Environments      int    // environments needed (at least one per minimum instance)
	NeededInstances   int    // instances the load needs, at least the minimum
	Binding           string // what set NeededInstances: "minimum fleet", "CPU" or "concurrency"
	MinInstances      int

	HourlyEC2 decimal.Decimal // per instance, after the Savings Plan
	HourlyFee decimal.Decimal // per instance, on the on-demand price
}

// LoadInstances is the number of instances the load alone needs at the target
// utilisation, leaving out the minimum fleet.
func (f Fleet) LoadInstances() int {
	if f.EnvsPerInstance <= 0 {
		return 0
	}
	envs := max(f.SlotEnvironments, f.CPUEnvironments)
	return (envs + f.EnvsPerInstance - 1) / f.EnvsPerInstance
}

// CarriesLoad reports whether the fleet is at least what the load needs at the target
// utilisation. A fleet below the minimum of three instances may still carry it.
func (f Fleet) CarriesLoad() bool { return f.Instances >= f.LoadInstances() }

// MaxRate is the highest request rate the fleet carries at the target utilisation,
// by CPU and by concurrency slots, for a workload of duration and CPU time per
// request; zero when it cannot tell.
func (f Fleet) MaxRate(duration, cpuTime time.Duration) decimal.Decimal {
	envs := decimal.NewFromInt(int64(f.Instances * f.EnvsPerInstance)).Mul(f.TargetUtilization)
	if cpuTime == 0 {
		cpuTime = duration
	}
	if !envs.IsPositive() || duration <= 0 {
		return decimal.Zero
	}
	byCPU := envs.Mul(decimal.NewFromInt(int64(f.Env.VCPU))).DivRound(seconds(cpuTime), 9)
	bySlots := envs.Mul(decimal.NewFromInt(int64(f.Env.Concurrency))).DivRound(seconds(duration), 9)
	return decimal.Min(byCPU, bySlots)
}

// Utilization is the expected CPU utilisation of the fleet (may exceed 1 when the fleet is
// too small).
func (f Fleet) Utilization() float64 {
	capacity := f.Instances * f.Type.VCPU
	if capacity == 0 {
		return 0
	}
	return f.VCPUDemand.InexactFloat64() / float64(capacity)
}

// Hourly is what the whole fleet costs per hour (EC2 after discount plus fee).
func (f Fleet) Hourly() decimal.Decimal {
	return f.HourlyEC2.Add(f.HourlyFee).Mul(decimal.NewFromInt(int64(f.Instances)))
}

// Validate checks a fleet request.
func (r FleetRequest) Validate() error {
	switch {
	case r.Rate.IsNegative():
		return errors.New("rate must not be negative")
	case r.Duration < 0 || r.CPUTime < 0:
		return errors.New("duration and CPU time must not be negative")
	case r.MemoryMB < 1:
		return errors.New("memory must be positive")
	case r.MemoryMB > MaxEnvironmentMemoryGiB*1024:
		return fmt.Errorf("memory %d MB is above the %d GB Managed Instances limit", r.MemoryMB, MaxEnvironmentMemoryGiB)
	case r.Instances < 0:
		return errors.New("instances must not be negative")
	case r.EnvConcurrency < 0 || r.EnvConcurrency > MaxEnvironmentConcurrency:
		return fmt.Errorf("environment concurrency %d: want 1..%d", r.EnvConcurrency, MaxEnvironmentConcurrency)
	case r.SavingsPlan.IsNegative() || r.SavingsPlan.GreaterThanOrEqual(decimal.NewFromInt(1)):
		return errors.New("savings plan must be a fraction in [0, 1)")
	case r.TargetUtilization.IsNegative() || r.TargetUtilization.GreaterThan(decimal.NewFromInt(1)):
		return errors.New("target utilisation must be in (0, 1]")
	}
	return nil
}

// SizeFleet sizes a Managed Instances fleet for a steady load: vCPUs = rate × CPU time ÷
// target utilisation, concurrency slots = rate × duration ÷ target utilisation, each
// environment of max(2 GB, function memory) at the instance family's memory-to-vCPU
// ratio with the runtime's default concurrency per vCPU, at least MinInstances
// instances, and — unless the type is given — the cheapest instance type that fits.
func SizeFleet(cat *pricing.Catalog, r FleetRequest) (Fleet, error) {
	if err := r.Validate(); err != nil {
		return Fleet{}, err
	}
	rt, err := RuntimeConcurrency(r.Runtime)
	if err != nil {
		return Fleet{}, err
	}
	u := r.TargetUtilization
	if u.IsZero() {
		u = DefaultTargetUtilization
	}
	minInst := r.MinInstances
	if minInst == 0 {
		minInst = MinInstances
	}
	cpu := r.CPUTime
	if cpu == 0 {
		cpu = r.Duration
	}
	conc := r.Rate.Mul(seconds(r.Duration))
	demand := r.Rate.Mul(seconds(cpu))

	var types []pricing.InstanceType
	if r.InstanceType != "" {
		it, err := cat.InstanceType(r.InstanceType)
		if err != nil {
			return Fleet{}, err
		}
		if r.Arch != "" && it.Arch != r.Arch {
			return Fleet{}, fmt.Errorf("instance type %s is %s, the function is %s", it.Name, it.Arch, r.Arch)
		}
		types = []pricing.InstanceType{it}
	} else {
		types = cat.InstanceTypes(r.Arch)
	}

	var fits []Fleet
	for _, it := range types {
		f, ok := planFleet(cat, it, r, rt, u, minInst, conc, demand)
		if ok {
			fits = append(fits, f)
		}
	}
	if len(fits) == 0 {
		return Fleet{}, fmt.Errorf("no %s instance type in the catalogue fits a %d MB environment", r.Arch, r.MemoryMB)
	}
	for i := range fits {
		fits[i].Candidates = len(types)
		fits[i].TypeChosen = r.InstanceType == ""
		fits[i].Sized = r.Instances == 0
		if r.Instances > 0 {
			fits[i].Instances = r.Instances
		}
	}
	// With a fixed count, prefer the types that carry the load on that count.
	if r.Instances > 0 {
		var carry []Fleet
		for _, f := range fits {
			if f.CarriesLoad() {
				carry = append(carry, f)
			}
		}
		if len(carry) > 0 {
			fits = carry
		} else {
			// None does: take the one that comes closest.
			sort.SliceStable(fits, func(i, j int) bool { return fits[i].NeededInstances < fits[j].NeededInstances })
			best := fits[0].NeededInstances
			n := 0
			for n < len(fits) && fits[n].NeededInstances == best {
				n++
			}
			fits = fits[:n]
		}
	}
	sort.SliceStable(fits, func(i, j int) bool {
		ci, cj := fits[i].Hourly(), fits[j].Hourly()
		if !ci.Equal(cj) {
			return ci.LessThan(cj)
		}
		if fits[i].Instances != fits[j].Instances {
			return fits[i].Instances < fits[j].Instances
		}
		return fits[i].Type.Name < fits[j].Type.Name
	})
	return fits[0], nil
}

func planFleet(cat *pricing.Catalog, it pricing.InstanceType, r FleetRequest, rt RuntimeDefaults, u decimal.Decimal, minInst int, conc, demand decimal.Decimal) (Fleet, bool) {
	ratio := it.MemoryGiBPerVCPU()
	if ratio < 1 {
		return Fleet{}, false
	}
	memGiB := int((r.MemoryMB + 1023) / 1024)
	memGiB = max(memGiB, MinEnvironmentMemoryGiB)
	envVCPU := max(1, (memGiB+ratio-1)/ratio)
	if envVCPU > it.VCPU || envVCPU*ratio > MaxEnvironmentMemoryGiB {
		return Fleet{}, false
	}
	env := Environment{VCPU: envVCPU, MemoryGiB: envVCPU * ratio, Concurrency: min(rt.PerVCPU*envVCPU, MaxEnvironmentConcurrency)}
	if r.EnvConcurrency > 0 {
		env.Concurrency = r.EnvConcurrency
	}
	perInst := it.VCPU / envVCPU

	slotEnvs := ceilInt(conc.Div(u).Div(decimal.NewFromInt(int64(env.Concurrency))))
	cpuEnvs := ceilInt(demand.Div(u).Div(decimal.NewFromInt(int64(envVCPU))))
	envs := max(slotEnvs, cpuEnvs, minInst)
	needed := max(minInst, (envs+perInst-1)/perInst)
	binding := "minimum fleet"
	if needed > minInst {
		if cpuEnvs >= slotEnvs {
			binding = "CPU"
		} else {
			binding = "concurrency"
		}
	}
	ec2, fee := cat.ManagedInstances.Hourly(it, r.SavingsPlan)
	return Fleet{
		Type:              it,
		Instances:         needed,
		Runtime:           rt,
		Env:               env,
		EnvsPerInstance:   perInst,
		Concurrency:       conc,
		VCPUDemand:        demand,
		TargetUtilization: u,
		SlotEnvironments:  slotEnvs,
		CPUEnvironments:   cpuEnvs,
		Environments:      envs,
		NeededInstances:   needed,
		Binding:           binding,
		MinInstances:      minInst,
		HourlyEC2:         ec2,
		HourlyFee:         fee,
	}, true
}

// ProvisionedPlan is a provisioned level and the spill-over it leaves.
type ProvisionedPlan struct {
	Provisioned   int
	Sized         bool    // the engine chose the level
	OfferedLoad   float64 // Erlang: rate × duration (Little's law concurrency)
	SpillFraction float64 // Erlang-B: share of invocations that find every environment busy
	SpillTarget   float64
	Utilization   float64 // carried load ÷ provisioned environments
}

// SizeProvisioned picks the provisioned level for a steady load: the smallest level whose
// Erlang-B blocking probability (the share of invocations that spill over to on-demand)
// is at most spillTarget. A fixed level (> 0) is only evaluated.
func SizeProvisioned(rate decimal.Decimal, duration time.Duration, fixed int, spillTarget float64) ProvisionedPlan {
	if spillTarget <= 0 || spillTarget >= 1 {
		spillTarget = DefaultSpillTarget
	}
	a := rate.Mul(seconds(duration)).InexactFloat64()
	p := ProvisionedPlan{OfferedLoad: a, SpillTarget: spillTarget}
	if fixed > 0 {
		p.Provisioned = fixed
	} else {
		p.Sized = true
		p.Provisioned = erlangBLevel(a, spillTarget)
	}
	p.SpillFraction = ErlangB(a, p.Provisioned)
	if p.Provisioned > 0 {
		p.Utilization = a * (1 - p.SpillFraction) / float64(p.Provisioned)
	}
	return p
}

// ErlangB is the blocking probability of an M/G/c/c system with offered load a (in
// Erlangs) and c servers, by the stable recursion B(k) = a·B(k−1) / (k + a·B(k−1)).
func ErlangB(a float64, c int) float64 {
	if a <= 0 {
		if c <= 0 {
			return 1
		}
		return 0
	}
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return b
}

func erlangBLevel(a, target float64) int {
	if a <= 0 {
		return 0
	}
	b := 1.0
	limit := int(a*4) + 1000
	for k := 1; k <= limit; k++ {
		b = a * b / (float64(k) + a*b)
		if b <= target {
			return k
		}
	}
	return limit
}

func seconds(d time.Duration) decimal.Decimal {
	return decimal.NewFromInt(int64(d)).Div(decimal.NewFromInt(int64(time.Second)))
}

func ceilInt(d decimal.Decimal) int {
	c := d.Ceil()
	if c.GreaterThan(decimal.NewFromInt(math.MaxInt32)) {
		return math.MaxInt32
	}
	return int(c.IntPart())
}
