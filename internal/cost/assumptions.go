package cost

import (
	"fmt"
	"math"
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// assumptions lists, in plain words, every input and rule behind a comparison, so a user
// can see why the numbers are what they are.
func assumptions(cat *pricing.Catalog, r *Result, cfg Config) []string {
	w := r.Workload
	f := r.Fleet
	pc := r.Provisioned
	var a []string
	add := func(format string, args ...any) { a = append(a, fmt.Sprintf(format, args...)) }

	add("Prices: catalogue %s dated %s, %s, %s; amounts are summed unrounded and rounded half-up to cents only when shown.",
		cat.Version, cat.Date, cat.Region, cat.Currency)
	add("Period: %s = %s h; a month is %d h (365 days ÷ 12).", r.Period, r.Period.Hours, pricing.HoursPerMonth)
	add("Traffic: steady %s req/s, %s requests per %s.", num(r.Rate), GroupThousands(r.Requests.Round(0).String()), r.Period)
	add("Each invocation runs %s and bills %d ms (rounded up to %d ms) at %d MB = %s GB (1 GB = 1024 MB), %s.",
		w.Duration, r.BilledMs, cat.Lambda.BillingGranularityMs, w.MemoryMB,
		num(decimal.NewFromInt(w.MemoryMB).Div(decimal.NewFromInt(pricing.MBPerGB))), w.Arch)
	if cfg.FreeTier {
		ft := cat.Lambda.FreeTierFor(r.Period.Months())
		add("Free tier applied: %s requests and %s GB-s per month, prorated to %s requests and %s GB-s per %s; "+
			"the request allowance also applies to Provisioned Concurrency and Managed Instances requests.",
			GroupThousands(cat.Lambda.FreeTier.RequestsPerMonth.String()), GroupThousands(cat.Lambda.FreeTier.GBSecondsPerMonth.String()),
			GroupThousands(ft.RequestsPerMonth.Round(0).String()), GroupThousands(ft.GBSecondsPerMonth.Round(0).String()), r.Period)
	} else {
		add("Free tier not applied (--free-tier deducts %s requests and %s GB-s a month).",
			GroupThousands(cat.Lambda.FreeTier.RequestsPerMonth.String()), GroupThousands(cat.Lambda.FreeTier.GBSecondsPerMonth.String()))
	}
	add("Duration tiers are monthly and prorated to the period.")
	add("Concurrency by Little's law: %s req/s × %s = %s in flight.", num(r.Rate), w.Duration, num(f.Concurrency))

	// Provisioned Concurrency.
	if pc.Sized {
		add("Provisioned Concurrency: %d environments, the smallest level whose Erlang-B spill-over is at most %s %% for an offered load of %s (spill-over %s %%).",
			pc.Provisioned, fmtPct(pc.SpillTarget), fmtFloat(pc.OfferedLoad), fmtPct(pc.SpillFraction))
	} else {
		add("Provisioned Concurrency: %d environments as given; Erlang-B spill-over %s %% for an offered load of %s.",
			pc.Provisioned, fmtPct(pc.SpillFraction), fmtFloat(pc.OfferedLoad))
	}
	add("Provisioned environments are allocated for the whole period (%s %% utilised); spilled invocations are billed at on-demand rates.",
		fmtPct(pc.Utilization))

	// Managed Instances.
	add("Managed Instances CPU: %s req/s × %s CPU time = %s vCPU of work%s.", num(r.Rate), w.CPUTime, num(f.VCPUDemand), cpuNote(w))
	add("Managed Instances target CPU utilisation %s %%: the Auto mode keeps headroom for traffic to double within 5 minutes.",
		f.TargetUtilization.Shift(2).String())
	concWhy := fmt.Sprintf("%s: %d per vCPU", f.Runtime.Family, f.Runtime.PerVCPU)
	if cfg.EnvConcurrency > 0 {
		concWhy = "PerExecutionEnvironmentMaxConcurrency as given"
	}
	add("Execution environment: %d vCPU and %d GiB (%d MB raised to the %d GB minimum and the %s family's %d GiB per vCPU), %d concurrent requests (%s).",
		f.Env.VCPU, f.Env.MemoryGiB, w.MemoryMB, MinEnvironmentMemoryGiB, f.Type.Family(), f.Type.MemoryGiBPerVCPU(),
		f.Env.Concurrency, concWhy)
	add("Every vCPU and GiB of an instance is available to environments (no per-instance reservation for the OS; the AWS sample calculator keeps 1 vCPU and 1 GB back).")
	add("Environments needed: max(concurrency %d, CPU %d, minimum %d) = %d; %d per %s (%d vCPU, %d GiB) → %d instances needed (%s sets it; at least %d across Availability Zones).",
		f.SlotEnvironments, f.CPUEnvironments, f.MinInstances, f.Environments, f.EnvsPerInstance, f.Type.Name,
		f.Type.VCPU, f.Type.MemoryGiB, f.NeededInstances, f.Binding, f.MinInstances)
	switch {
	case f.Sized && f.TypeChosen:
		add("Fleet: %d × %s, the cheapest of %d %s C/M/R instance types that fits.", f.Instances, f.Type.Name, f.Candidates, w.Arch)
	case f.Sized:
		add("Fleet: %d × %s (type as given, count sized).", f.Instances, f.Type.Name)
	case f.TypeChosen:
		add("Fleet: %d × %s (count as given, the cheapest type that carries the load on it).", f.Instances, f.Type.Name)
	default:
		add("Fleet: %d × %s as given; expected CPU utilisation %.0f %%.", f.Instances, f.Type.Name, f.Utilization()*100)
	}
	add("%s costs $%s/h on demand; management fee %s %% of the on-demand price = $%s/h per instance.",
		f.Type.Name, f.Type.OnDemandHourly, cat.ManagedInstances.ManagementFee.Shift(2), f.HourlyFee)
	if cfg.SavingsPlan.IsPositive() {
		add("Savings Plan: %s %% off the EC2 on-demand price ($%s/h); the management fee stays on the on-demand price.",
			cfg.SavingsPlan.Shift(2), f.HourlyEC2)
	}
	if r.BreakEvenRPS != nil {
		add("Break-even: on-demand and %d × %s cost the same at %s req/s for this duration and memory (fleet held fixed).",
			f.Instances, f.Type.Name, r.BreakEvenRPS.Round(2).StringFixed(2))
	} else {
		add("Break-even: on-demand stays cheaper than %d × %s at any rate.", f.Instances, f.Type.Name)
	}
	add("Not included: NAT gateways or VPC endpoints, data transfer, CloudWatch Logs, INIT duration of cold starts, ephemeral storage above 512 MB, Lambda's own Savings Plans.")
	return a
}

func cpuNote(w Workload) string {
	if w.CPUTime == w.Duration {
		return " (CPU time defaults to the whole duration, as for CPU-bound work; pass --cpu-time for work that waits on I/O)"
	}
	return ""
}

func fmtPct(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 2, 64)
}

func fmtFloat(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64)
}
