package replay

import (
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
)

// qty turns a float64 usage total into a decimal quantity, kept to a millionth.
func qty(x float64) decimal.Decimal { return decimal.NewFromFloat(x).Round(6) }

func count(x float64) uint64 { return uint64(math.Round(math.Max(0, x))) }

func (m *sim) result() (*Result, error) {
	s, cfg, cat := m.s, m.cfg, m.cfg.Catalog
	total := s.Total()
	secs := int64(s.Len()) * int64(s.Step/time.Second)
	period := cost.Period{Name: s.Duration().String(), Hours: decimal.NewFromInt(secs).Div(decimal.NewFromInt(3600))}
	gb := decimal.NewFromInt(int64(m.memMB)).Div(decimal.NewFromInt(1024))
	initGBs := func(cold uint64) float64 {
		return float64(cold) * cfg.InitDuration.Seconds() * float64(m.memMB) / 1024
	}
	r := &Result{
		Start: s.Start, Step: s.Step, Steps: s.Len(), Functions: len(s.Functions), Invocations: total,
		MemoryMB: m.memMB, Period: period, Bucket: time.Duration(m.bucket) * s.Step, Series: m.points,
		Assumptions: m.assumptions, ScalerActions: m.mi.reasons,
	}
	split := func(thr float64) (served, throttled uint64) {
		t := min(count(thr), total)
		return total - t, t
	}

	// On-demand.
	od, err := cost.PriceOnDemand(cat, cost.OnDemandUsage{
		Arch: cfg.Arch, Requests: qty(m.odReq).Round(0), GBSeconds: qty(m.odGBs + initGBs(m.coldOD)),
	}, period, cfg.FreeTier)
	if err != nil {
		return nil, err
	}
	o := Option{Compute: OnDemand, Bill: od, ColdStarts: m.coldOD, PeakEnvironments: m.odPeak}
	o.Invocations, o.Throttles = split(m.odThr)
	r.Options = append(r.Options, o)

	// Provisioned Concurrency.
	spillFrac := 0.0
	if total > 0 {
		spillFrac = m.pcSpillInv / float64(total)
	}
	pc, err := cost.PriceProvisioned(cat, cost.ProvisionedUsage{
		Arch: cfg.Arch, Provisioned: m.provisioned, Requests: qty(m.odReq).Round(0),
		ProvisionedGBSeconds: decimal.NewFromInt(int64(m.provisioned) * secs).Mul(gb),
		ExecutedGBSeconds:    qty(m.pcExecGBs),
		SpillGBSeconds:       qty(m.pcSpillGBs + initGBs(m.coldPC)),
		SpillFraction:        spillFrac,
	}, period, cfg.FreeTier)
	if err != nil {
		return nil, err
	}
	o = Option{Compute: Provisioned, Bill: pc, ColdStarts: m.coldPC, SpillOvers: count(m.pcSpillInv),
		Provisioned: m.provisioned, PeakEnvironments: m.provisioned + m.pcPeakSpill}
	o.Invocations, o.Throttles = split(m.pcThr)
	r.Options = append(r.Options, o)

	// Managed Instances.
	mi, err := m.priceFleet(m.mi, m.miReq, period, cfg.FreeTier)
	if err != nil {
		return nil, err
	}
	o = Option{Compute: ManagedInstances, Bill: mi, InstanceHours: float64(m.mi.instanceSeconds()) / 3600,
		PeakInstances: m.mi.peakInst, PeakEnvironments: m.mi.peakEnvs}
	o.Invocations, o.Throttles = split(m.miThr)
	o.Notes = append(o.Notes, fmt.Sprintf("%d scaler decisions", m.mi.decisions))
	r.Options = append(r.Options, o)

	// Hybrid.
	hyOD, err := cost.PriceOnDemand(cat, cost.OnDemandUsage{
		Arch: cfg.Arch, Requests: qty(m.hyODReq).Round(0), GBSeconds: qty(m.hyODGBs + initGBs(m.coldHy)),
	}, period, cfg.FreeTier)
	if err != nil {
		return nil, err
	}
	hy := cost.Option{Compute: Hybrid}
	o = Option{Compute: Hybrid, ColdStarts: m.coldHy, SpillOvers: count(m.hySpillInv), PeakEnvironments: m.hyODPeak}
	if m.hy != nil {
		// The account's free tier is counted once, on the hybrid's on-demand part.
		hmi, err := m.priceFleet(m.hy, m.hyMIReq, period, false)
		if err != nil {
			return nil, err
		}
		appendBill(&hy, "Managed Instances: ", hmi)
		hy.InstanceType, hy.Instances = hmi.InstanceType, len(m.hy.insts)
		o.InstanceHours = float64(m.hy.instanceSeconds()) / 3600
		o.PeakInstances = m.hy.peakInst
		o.PeakEnvironments += m.hy.peakEnvs
		o.Provisioned = int(math.Ceil(m.floor - 1e-9))
	}
	appendBill(&hy, "On-demand: ", hyOD)
	o.Bill = hy
	o.Invocations, o.Throttles = split(m.hyThr)
	r.Options = append(r.Options, o)

	best := 0
	for i := range r.Options {
		if cheaper(&r.Options[i], &r.Options[best]) {
			best = i
		}
	}
	r.Cheapest = r.Options[best].Compute
	return r, nil
}

// cheaper reports whether a is the better buy than b: an option that served
// every invocation beats one that throttled some (throttled invocations are
// not billed, so its bill looks smaller than serving the traffic would cost);
// among those that throttled, fewer throttles win; then the lower bill.
func cheaper(a, b *Option) bool {
	if (a.Throttles > 0) != (b.Throttles > 0) {
		return a.Throttles == 0
	}
	if a.Throttles != b.Throttles {
		return a.Throttles < b.Throttles
	}
	return a.Bill.Total.LessThan(b.Bill.Total)
}

func (m *sim) priceFleet(f *fleet, requests float64, period cost.Period, freeTier bool) (cost.Option, error) {
	hours := decimal.NewFromInt(f.instanceSeconds()).Div(decimal.NewFromInt(3600))
	return cost.PriceManagedInstances(m.cfg.Catalog, cost.ManagedUsage{
		Requests:      qty(requests).Round(0),
		InstanceHours: []cost.InstanceHours{{Type: m.it.Name, Hours: hours}},
		SavingsPlan:   m.cfg.SavingsPlan,
	}, period, freeTier)
}

func appendBill(dst *cost.Option, prefix string, src cost.Option) {
	for _, it := range src.Items {
		it.Name = prefix + it.Name
		dst.Items = append(dst.Items, it)
		dst.Total = dst.Total.Add(it.USD)
	}
}
