package billing

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// billedMs says how many milliseconds an invocation bills: the ledger's own
// figure (metered) or the one the cost engine derives from the measured
// durations (predicted).
type billedMs func(iv inv) int64

// meteredMs is the billed duration the ledger recorded.
func meteredMs(iv inv) int64 { return iv.BilledMs }

// predictedMs derives an invocation's billed duration the way the cost engine
// prices one: its duration, plus the init of an on-demand cold start (billed
// with its first invocation since August 2025), rounded up to the catalogue's
// billing granularity and at least one step of it.
func predictedMs(cat *pricing.Catalog) billedMs {
	g := max(cat.Lambda.BillingGranularityMs, 1)
	return func(iv inv) int64 {
		d := nanos(iv.DurationMs)
		if iv.Compute == meter.OnDemand {
			d += nanos(iv.InitMs)
		}
		return max(cat.Lambda.BilledMs(d), g)
	}
}

// nanos converts milliseconds carried as a float64 back to the duration they
// were made from.
func nanos(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

// msByMemory sums billed milliseconds per memory size, so that GB-seconds are
// worked out exactly once per size.
type msByMemory map[int]int64

func (m msByMemory) gbSeconds() decimal.Decimal {
	total := decimal.Zero
	for _, mem := range sortedInts(m) {
		total = total.Add(pricing.GBSeconds(decimal.NewFromInt(m[mem]), int64(mem)))
	}
	return total
}

func (m msByMemory) add(o msByMemory) {
	for k, v := range o {
		m[k] += v
	}
}

// fnQuantities are a function's metered quantities for one reading of the
// billed durations.
type fnQuantities struct {
	arch pricing.Arch

	odReq, pcReq, spillReq, miReq int64
	odMs, pcMs, spillMs           msByMemory

	provisioned   int // the largest level allocated in the period
	provisionedGB decimal.Decimal
}

func quantities(f *fnUsage, billed billedMs) fnQuantities {
	q := fnQuantities{arch: pricing.X86_64, odMs: msByMemory{}, pcMs: msByMemory{}, spillMs: msByMemory{}, provisionedGB: f.pcRoundGB}
	for _, p := range f.provisioned {
		q.provisioned = max(q.provisioned, p.Concurrency)
		gb := decimal.NewFromInt(int64(p.Concurrency) * int64(p.MemoryMB)).Div(decimal.NewFromInt(pricing.MBPerGB))
		q.provisionedGB = q.provisionedGB.Add(gb.Mul(seconds(p.End.Sub(p.Start))))
		if p.Architecture != "" {
			q.arch = archOf(p.Architecture)
		}
	}
	for _, iv := range f.invocations {
		if iv.Architecture != "" {
			q.arch = archOf(iv.Architecture)
		}
		switch iv.Compute {
		case meter.ManagedInstances:
			q.miReq++
		case meter.Provisioned:
			q.pcReq++
			q.pcMs[iv.MemoryMB] += billed(iv)
		default:
			if f.spill(iv) {
				q.spillReq++
				q.spillMs[iv.MemoryMB] += billed(iv)
			} else {
				q.odReq++
				q.odMs[iv.MemoryMB] += billed(iv)
			}
		}
	}
	return q
}

// spill reports whether an on-demand invocation ran while Provisioned
// Concurrency of its version was allocated: it spilled over.
func (f *fnUsage) spill(iv inv) bool {
	for _, p := range f.provisioned {
		if p.Version == iv.Version && !iv.Start.Before(p.Start) && iv.Start.Before(p.End) {
			return true
		}
	}
	return false
}

func (q fnQuantities) hasPC() bool { return q.pcReq > 0 || q.provisioned > 0 || q.spillReq > 0 }

func (q fnQuantities) onDemand(cat *pricing.Catalog, p cost.Period, free bool) (cost.Option, error) {
	return cost.PriceOnDemand(cat, cost.OnDemandUsage{
		Arch: q.arch, Requests: decimal.NewFromInt(q.odReq), GBSeconds: q.odMs.gbSeconds(),
	}, p, free)
}

func (q fnQuantities) provisionedUsage() cost.ProvisionedUsage {
	req := q.pcReq + q.spillReq
	frac := 0.0
	if req > 0 {
		frac = float64(q.spillReq) / float64(req)
	}
	return cost.ProvisionedUsage{
		Arch: q.arch, Provisioned: q.provisioned, Requests: decimal.NewFromInt(req),
		ProvisionedGBSeconds: q.provisionedGB, ExecutedGBSeconds: q.pcMs.gbSeconds(),
		SpillGBSeconds: q.spillMs.gbSeconds(), SpillFraction: frac,
	}
}

func (q fnQuantities) provisionedBill(cat *pricing.Catalog, p cost.Period) (cost.Option, error) {
	return cost.PriceProvisioned(cat, q.provisionedUsage(), p, false)
}

func providerBill(cat *pricing.Catalog, u *cpUsage, p cost.Period, opts Options) (ProviderBill, error) {
	pb := ProviderBill{Name: u.name, Functions: sortedKeys(u.functions), Requests: u.requests, Instances: len(u.instances)}
	var hours []cost.InstanceHours
	for _, t := range sortedKeys(u.seconds) {
		iu := InstanceUsage{Type: t, Seconds: u.seconds[t]}
		pb.Usage = append(pb.Usage, iu)
		hours = append(hours, cost.InstanceHours{Type: t, Hours: iu.Hours()})
	}
	bill, err := cost.PriceManagedInstances(cat, cost.ManagedUsage{
		Requests: decimal.NewFromInt(u.requests), InstanceHours: hours, SavingsPlan: opts.SavingsPlan, Instances: len(u.instances),
	}, p, false)
	if err != nil {
		return ProviderBill{}, fmt.Errorf("capacity provider %s: %w", u.name, err)
	}
	pb.Bill = bill
	return pb, nil
}

// functionBill bills one function. fleetBills are its capacity providers
// billed from the fleet's record of its instances (nil without one).
func functionBill(cat *pricing.Catalog, f *fnUsage, u *usage, providers, fleetBills []ProviderBill, p cost.Period) (FunctionBill, error) {
	fb := FunctionBill{Function: f.name, ProvisionedGBSeconds: decimal.Zero, Total: decimal.Zero}
	for _, iv := range f.invocations {
		fb.Invocations++
		fb.BilledMs += iv.BilledMs
		fb.DurationMs += iv.DurationMs
		fb.CPUMs += iv.CPUMs
		fb.MemoryMB = max(fb.MemoryMB, iv.MemoryMB)
		if iv.InitMs > 0 && iv.Compute == meter.OnDemand {
			fb.ColdStarts++
		}
	}
	for _, s := range f.provisioned {
		fb.MemoryMB = max(fb.MemoryMB, s.MemoryMB)
	}
	m := quantities(f, meteredMs)
	fb.Architecture, fb.ProvisionedGBSeconds, fb.SpillOvers = m.arch, m.provisionedGB, m.spillReq
	pred := quantities(f, predictedMs(cat))
	add := func(o cost.Option) {
		fb.Computes = append(fb.Computes, o.Compute)
		fb.Bills = append(fb.Bills, o)
		fb.Total = fb.Total.Add(o.Total)
	}
	if m.odReq > 0 {
		od, err := m.onDemand(cat, p, false)
		if err != nil {
			return fb, fmt.Errorf("function %s: %w", f.name, err)
		}
		pod, err := pred.onDemand(cat, p, false)
		if err != nil {
			return fb, fmt.Errorf("function %s: %w", f.name, err)
		}
		add(od)
		fb.Checks = append(fb.Checks, newCheck(cost.OnDemand, od.Total, pod.Total,
			"each invocation's duration (with an on-demand cold start's init) rounded up to the millisecond"))
	}
	if m.hasPC() {
		pc, err := m.provisionedBill(cat, p)
		if err != nil {
			return fb, fmt.Errorf("function %s: %w", f.name, err)
		}
		ppc, err := pred.provisionedBill(cat, p)
		if err != nil {
			return fb, fmt.Errorf("function %s: %w", f.name, err)
		}
		add(pc)
		fb.Checks = append(fb.Checks, newCheck(cost.Provisioned, pc.Total, ppc.Total,
			"the allocated level over the period, each invocation's duration rounded up, spill-over at on-demand rates"))
	}
	if m.miReq > 0 {
		mi, err := managedShare(cat, f.name, m.miReq, u, providers, p)
		if err != nil {
			return fb, fmt.Errorf("function %s: %w", f.name, err)
		}
		add(mi)
		if fleetBills != nil {
			c, err := fleetCheckOf(cat, f.name, m.miReq, u, fleetBills, p, mi.Total)
			if err != nil {
				return fb, fmt.Errorf("function %s: %w", f.name, err)
			}
			fb.Checks = append(fb.Checks, c)
		}
	}
	return fb, nil
}

// managedShare is a function's Managed Instances bill: its requests, and its
// share of the instances (EC2 and fee) of each capacity provider it ran on, by
// CPU time (by requests where no CPU time was measured).
func managedShare(cat *pricing.Catalog, fn string, requests int64, u *usage, providers []ProviderBill, p cost.Period) (cost.Option, error) {
	req, err := cost.PriceManagedInstances(cat, cost.ManagedUsage{Requests: decimal.NewFromInt(requests)}, p, false)
	if err != nil {
		return cost.Option{}, err
	}
	o := cost.Option{Compute: cost.ManagedInstances, Total: decimal.Zero}
	for _, it := range req.Items {
		if it.Unit == "requests" {
			o.Items = append(o.Items, it)
			o.Total = o.Total.Add(it.USD)
		}
	}
	for _, pb := range providers {
		cu := u.providers[pb.Name]
		if cu == nil || cu.reqs[fn] == 0 {
			continue
		}
		share, by := shareOf(cu, fn)
		fleet := decimal.Zero
		for _, it := range pb.Bill.Items {
			if it.Unit == "instance-hours" {
				fleet = fleet.Add(it.USD)
			}
		}
		if len(pb.Usage) == 1 {
			o.InstanceType = pb.Usage[0].Type
		}
		o.Instances += pb.Instances
		it := cost.Item{
			Name:      fmt.Sprintf("Share of capacity provider %s's instances (%s %% of its %s)", pb.Name, share.Shift(2).Round(1).String(), by),
			Quantity:  share,
			Unit:      "share",
			UnitPrice: fleet,
			USD:       share.Mul(fleet),
		}
		o.Items = append(o.Items, it)
		o.Total = o.Total.Add(it.USD)
	}
	return o, nil
}

func shareOf(cu *cpUsage, fn string) (decimal.Decimal, string) {
	var cpu float64
	for _, c := range cu.cpuMs {
		cpu += c
	}
	if cpu > 0 {
		return decimal.NewFromFloat(cu.cpuMs[fn]).Div(decimal.NewFromFloat(cpu)), "CPU time"
	}
	return decimal.NewFromInt(cu.reqs[fn]).Div(decimal.NewFromInt(cu.requests)), "requests"
}

// totals prices the account's usage per compute type. On-demand and
// Provisioned Concurrency usage is summed per architecture before pricing, so
// the duration tiers apply to the account's total, as on AWS.
func (r *Report) totals(cat *pricing.Catalog, u *usage, opts Options) error {
	type archUsage struct {
		od fnQuantities
		pc fnQuantities
	}
	byArch := map[pricing.Arch]*archUsage{}
	for _, name := range sortedKeys(u.functions) {
		q := quantities(u.functions[name], meteredMs)
		a := byArch[q.arch]
		if a == nil {
			a = &archUsage{
				od: fnQuantities{arch: q.arch, odMs: msByMemory{}},
				pc: fnQuantities{arch: q.arch, pcMs: msByMemory{}, spillMs: msByMemory{}, provisionedGB: decimal.Zero},
			}
			byArch[q.arch] = a
		}
		a.od.odReq += q.odReq
		a.od.odMs.add(q.odMs)
		a.pc.pcReq += q.pcReq
		a.pc.spillReq += q.spillReq
		a.pc.pcMs.add(q.pcMs)
		a.pc.spillMs.add(q.spillMs)
		a.pc.provisioned += q.provisioned
		a.pc.provisionedGB = a.pc.provisionedGB.Add(q.provisionedGB)
	}
	arches := []pricing.Arch{pricing.X86_64, pricing.ARM64}
	var od, pc []cost.Option
	var odArch, pcArch []pricing.Arch
	freeLeft := opts.FreeTier
	for _, arch := range arches {
		a := byArch[arch]
		if a == nil {
			continue
		}
		if a.od.odReq > 0 {
			o, err := a.od.onDemand(cat, r.Period, freeLeft)
			if err != nil {
				return err
			}
			freeLeft = false // the allowance is the account's, once
			od, odArch = append(od, o), append(odArch, arch)
		}
		if a.pc.hasPC() {
			o, err := a.pc.provisionedBill(cat, r.Period)
			if err != nil {
				return err
			}
			pc, pcArch = append(pc, o), append(pcArch, arch)
		}
	}
	r.Total = decimal.Zero
	if len(od) > 0 {
		r.Totals = append(r.Totals, merge(cost.OnDemand, od, odArch))
	}
	if len(pc) > 0 {
		r.Totals = append(r.Totals, merge(cost.Provisioned, pc, pcArch))
	}
	if len(r.CapacityProviders) > 0 {
		mi := cost.Option{Compute: cost.ManagedInstances, Total: decimal.Zero}
		hours := map[string]decimal.Decimal{}
		var requests int64
		for _, pb := range r.CapacityProviders {
			for _, iu := range pb.Usage {
				hours[iu.Type] = hours[iu.Type].Add(iu.Seconds)
			}
			requests += pb.Requests
			mi.Instances += pb.Instances
		}
		var ih []cost.InstanceHours
		for _, t := range sortedKeys(hours) {
			ih = append(ih, cost.InstanceHours{Type: t, Hours: InstanceUsage{Seconds: hours[t]}.Hours()})
		}
		o, err := cost.PriceManagedInstances(cat, cost.ManagedUsage{
			Requests: decimal.NewFromInt(requests), InstanceHours: ih, SavingsPlan: opts.SavingsPlan, Instances: mi.Instances,
		}, r.Period, false)
		if err != nil {
			return err
		}
		r.Totals = append(r.Totals, o)
	}
	for _, o := range r.Totals {
		r.Total = r.Total.Add(o.Total)
	}
	return nil
}

// merge joins the bills of one compute type for several architectures,
// naming the architecture on each line when there is more than one.
func merge(c cost.Compute, opts []cost.Option, arches []pricing.Arch) cost.Option {
	if len(opts) == 1 {
		return opts[0]
	}
	out := cost.Option{Compute: c, Total: decimal.Zero}
	for i, o := range opts {
		for _, it := range o.Items {
			it.Name = string(arches[i]) + ": " + it.Name
			out.Items = append(out.Items, it)
			out.Total = out.Total.Add(it.USD)
		}
		out.Provisioned += o.Provisioned
	}
	return out
}

func sortedInts[V any](m map[int]V) []int { return slices.Sorted(maps.Keys(m)) }

// Check sets a bill worked out independently of the ledger's figures beside
// the metered one, for one compute type a function ran on: for on-demand and
// Provisioned Concurrency the bill the cost engine predicts from the recorded
// invocations' durations, for Managed Instances the bill from the fleet's
// own record of its instances' launch and terminate times.
type Check struct {
	Compute   cost.Compute
	Metered   decimal.Decimal
	Predicted decimal.Decimal
	// Against names where Predicted comes from, as a sentence says it.
	Against string
	// How says how the prediction was worked out.
	How string
	// Replay is the replay model's estimate of the same traffic on the same
	// compute type; nil when there was no replay.
	Replay *decimal.Decimal
}

// Agree reports whether prediction and metering give the same amount, exactly.
func (c Check) Agree() bool { return c.Metered.Equal(c.Predicted) }

// ReplayDiff is the replay's estimate minus the metered amount (zero without a replay).
func (c Check) ReplayDiff() decimal.Decimal {
	if c.Replay == nil {
		return decimal.Zero
	}
	return c.Replay.Sub(c.Metered)
}

func newCheck(c cost.Compute, metered, predicted decimal.Decimal, how string) Check {
	return Check{Compute: c, Metered: metered, Predicted: predicted, How: how, Against: "predicted from the recorded invocations"}
}
