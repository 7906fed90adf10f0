package billing

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/cost/replay"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/trace"
)

// WhatIf is what one function's recorded traffic would have cost on every
// compute type, from the cost engine's replay.
type WhatIf struct {
	Start time.Time // the replay's first step
	Step  time.Duration
	Steps int
	// Estimates are on-demand, provisioned-concurrency, managed-instances and
	// hybrid, in that order.
	Estimates []Estimate
	// Cheapest is the compute type with the lowest replayed bill.
	Cheapest       cost.Compute
	Recommendation string
	// InitMs is the mean init of the recorded cold starts, which the replay
	// bills per on-demand cold start it models.
	InitMs      float64
	Assumptions []string
	// Replay is the replay itself, for its charts.
	Replay *replay.Result
}

// Estimate is one compute type's replayed bill.
type Estimate struct {
	Compute cost.Compute
	Bill    cost.Option
	// Ran is set for the compute type the function ran on, when it ran on
	// one only; Metered is then its metered bill, shown beside the estimate.
	Ran     bool
	Metered decimal.Decimal

	Throttles, ColdStarts, SpillOvers uint64
	InstanceHours                     float64
	PeakInstances                     int
	Provisioned                       int
	InstanceType                      string
}

// Estimate returns the estimate of compute type c.
func (w *WhatIf) Estimate(c cost.Compute) *Estimate {
	for i := range w.Estimates {
		if w.Estimates[i].Compute == c {
			return &w.Estimates[i]
		}
	}
	return nil
}

// replayStep picks the replay's step for a period.
func replayStep(opts Options, span time.Duration) time.Duration {
	if opts.Step > 0 {
		return opts.Step
	}
	for _, s := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 5 * time.Minute, 15 * time.Minute} {
		if span/s <= MaxSteps {
			return s
		}
	}
	return time.Hour
}

// series bins a function's recorded invocations over [from, until), so the
// replay prices idle time too: provisioned environments and a minimum fleet
// cost money whether or not traffic comes.
func series(f *fnUsage, from, until time.Time, step time.Duration) (*trace.Series, error) {
	invs := make([]trace.Invocation, 0, len(f.invocations))
	for _, iv := range f.invocations {
		invs = append(invs, trace.Invocation{
			Time: iv.Start, DurationMs: iv.DurationMs, CPUMs: max(iv.CPUMs, 0),
			MemoryMB: max(iv.MemoryMB, trace.DefaultMemoryMB), Function: f.name,
		})
	}
	b, err := trace.BinInvocations(invs, trace.BinOptions{Step: step})
	if err != nil {
		return nil, err
	}
	start := from.Truncate(step)
	n := max(int((until.Sub(start)+step-1)/step), 1)
	s := trace.NewSeries(start, step, n)
	s.MemoryMB, s.Functions = b.MemoryMB, b.Functions
	off := int(b.Start.Sub(start) / step)
	for i := range b.Count {
		// An invocation that began before the period (and ended in it) is
		// counted at the period's start.
		j := min(max(off+i, 0), n-1)
		s.Count[j] += b.Count[i]
		s.BusyMs[j] += b.BusyMs[i]
		s.CPUMs[j] += b.CPUMs[i]
		s.GBs[j] += b.GBs[i]
	}
	return s, nil
}

func whatIf(cat *pricing.Catalog, fb *FunctionBill, f *fnUsage, providers map[string]*cpUsage, opts Options) error {
	if len(f.invocations) == 0 {
		fb.WhatIfNote = "no invocations in the period to replay"
		return nil
	}
	from := lifeStart(f, providers, opts)
	step := replayStep(opts, opts.Until.Sub(from))
	s, err := series(f, from, opts.Until, step)
	if err != nil {
		fb.WhatIfNote = err.Error()
		return nil
	}
	var initMs float64
	var colds int
	for _, iv := range f.invocations {
		if iv.InitMs > 0 {
			initMs += iv.InitMs
			colds++
		}
	}
	if colds > 0 {
		initMs /= float64(colds)
	}
	cfg := replay.Config{
		Catalog: cat, Arch: fb.Architecture, MemoryMB: fb.MemoryMB, Runtime: opts.Runtime,
		InstanceType: instanceTypeOf(cat, f, providers, fb.Architecture),
		InitDuration: nanos(initMs), SavingsPlan: opts.SavingsPlan,
	}
	if fi, ok := opts.Functions[f.name]; ok {
		if _, err := cost.RuntimeConcurrency(fi.Runtime); err == nil && fi.Runtime != "" {
			cfg.Runtime = fi.Runtime
		}
		if fi.EnvConcurrency > 0 && fi.EnvConcurrency <= cost.MaxEnvironmentConcurrency {
			cfg.EnvConcurrency = fi.EnvConcurrency
		}
	}
	if q := quantities(f, meteredMs); q.provisioned > 0 {
		cfg.Provisioned = q.provisioned
	}
	res, err := replay.Run(s, cfg)
	if err != nil {
		fb.WhatIfNote = err.Error()
		return nil
	}
	w := &WhatIf{Start: res.Start, Step: res.Step, Steps: res.Steps, InitMs: initMs, Assumptions: res.Assumptions, Replay: res}
	for _, o := range res.Options {
		e := Estimate{
			Compute: o.Compute, Bill: o.Bill, Throttles: o.Throttles, ColdStarts: o.ColdStarts, SpillOvers: o.SpillOvers,
			InstanceHours: o.InstanceHours, PeakInstances: o.PeakInstances, Provisioned: o.Provisioned, InstanceType: o.Bill.InstanceType,
		}
		if len(fb.Computes) == 1 && fb.Computes[0] == o.Compute {
			e.Ran, e.Metered = true, fb.Total
		}
		w.Estimates = append(w.Estimates, e)
	}
	// A function that ran on several compute types has no replay of any one
	// of them alone to set beside its metered bills.
	for i := range fb.Checks {
		if e := w.Estimate(fb.Checks[i].Compute); e != nil && len(fb.Computes) == 1 {
			t := e.Bill.Total
			fb.Checks[i].Replay = &t
		}
	}
	// The cheapest is judged model against model, so that the replay's own
	// error does not favour the compute types that did not run; a tie goes
	// to the one that ran, then to the simpler (on-demand first).
	best := 0
	for i, e := range w.Estimates {
		b := w.Estimates[best]
		if e.Bill.Total.LessThan(b.Bill.Total) || (e.Bill.Total.Equal(b.Bill.Total) && e.Ran && !b.Ran) {
			best = i
		}
	}
	w.Cheapest = w.Estimates[best].Compute
	w.Recommendation = recommend(fb, w, opts)
	fb.WhatIf = w
	return nil
}

// lifeStart is when the function's usage in the period begins: its first
// invocation, provisioned environment or instance of its capacity providers.
// The replay starts there rather than at the period's start, so that a
// function created in the middle of the period is not priced as if its
// provisioned environments or fleet had run before it existed.
func lifeStart(f *fnUsage, providers map[string]*cpUsage, opts Options) time.Time {
	from := opts.Until
	for _, iv := range f.invocations {
		if iv.Start.Before(from) {
			from = iv.Start
		}
		if p := providers[iv.CapacityProvider]; iv.Compute == meter.ManagedInstances && p != nil && !p.first.IsZero() && p.first.Before(from) {
			from = p.first
		}
	}
	for _, p := range f.provisioned {
		if p.Start.Before(from) {
			from = p.Start
		}
	}
	if from.Before(opts.Since) {
		from = opts.Since
	}
	return from
}

// instanceTypeOf is the instance type the function's Managed Instances ran on
// (the one with the most instance-seconds), else the replay's default.
func instanceTypeOf(cat *pricing.Catalog, f *fnUsage, providers map[string]*cpUsage, arch pricing.Arch) string {
	best, most := "", decimal.Zero
	for _, iv := range f.invocations {
		if iv.Compute != meter.ManagedInstances {
			continue
		}
		p := providers[iv.CapacityProvider]
		if p == nil {
			continue
		}
		for t, secs := range p.seconds {
			if it, err := cat.InstanceType(t); err == nil && it.Arch == arch && secs.GreaterThan(most) {
				best, most = t, secs
			}
		}
		if best == "" && iv.InstanceType != "" {
			if it, err := cat.InstanceType(iv.InstanceType); err == nil && it.Arch == arch {
				best = iv.InstanceType
			}
		}
	}
	return best
}

// recommend says which compute type would have been cheapest for the
// recorded traffic, and why, in the words of `shoal cost compare`.
func recommend(fb *FunctionBill, w *WhatIf, opts Options) string {
	best := w.Estimate(w.Cheapest)
	var ran *Estimate // the compute type the function ran on, if only one
	if len(fb.Computes) == 1 {
		ran = w.Estimate(fb.Computes[0])
	}
	var b strings.Builder
	switch {
	case ran == nil:
		fmt.Fprintf(&b, "%s would have been cheapest: %s for the period (replayed) against %s metered on %s together",
			title(w.Cheapest), money(best.Bill.Total), money(fb.Total), joinComputes(fb.Computes))
	case ran.Compute == w.Cheapest:
		fmt.Fprintf(&b, "Stay on %s: it is the cheapest, %s metered for the period (%s replayed)", lower(w.Cheapest), money(ran.Metered), money(ran.Bill.Total))
		if next := cheapestBut(w, w.Cheapest); next != nil {
			fmt.Fprintf(&b, "; %s would have cost %s", lower(next.Compute), money(next.Bill.Total))
		}
	default:
		saving := decimal.Zero
		if ran.Bill.Total.IsPositive() {
			saving = ran.Bill.Total.Sub(best.Bill.Total).Div(ran.Bill.Total).Shift(2).Round(0)
		}
		fmt.Fprintf(&b, "%s would have been cheapest: %s for the period against %s metered on %s (%s replayed: %s %% less)",
			title(w.Cheapest), money(best.Bill.Total), money(ran.Metered), lower(ran.Compute), money(ran.Bill.Total), saving)
	}
	b.WriteString(": ")
	b.WriteString(why(fb, w, best, opts))
	b.WriteString(".")
	if best.Throttles > 0 {
		fmt.Fprintf(&b, " But the replayed %s throttled %d invocations; size it for the peaks before moving.", lower(best.Compute), best.Throttles)
	}
	return b.String()
}

func why(fb *FunctionBill, w *WhatIf, best *Estimate, opts Options) string {
	periodMs := float64(w.Steps) * float64(w.Step) / float64(time.Millisecond)
	conc := fb.DurationMs / periodMs
	od := w.Estimate(cost.OnDemand)
	gbs := decimal.Zero
	if od != nil {
		for _, it := range od.Bill.Items {
			if it.Unit == "GB-s" {
				gbs = gbs.Add(it.Quantity)
			}
		}
	}
	switch best.Compute {
	case cost.OnDemand:
		return fmt.Sprintf("%s kept %s in flight on average over the period, too few to keep provisioned environments or a fleet of instances busy, and on-demand bills only the %s GB-s they ran",
			plural(fb.Invocations, "invocation"), sig3(conc), gbs.Round(2).String())
	case cost.Provisioned:
		return fmt.Sprintf("a mean concurrency of %s keeps %d provisioned environments busy enough that their lower duration price pays for their allocation",
			sig3(conc), best.Provisioned)
	case cost.ManagedInstances:
		return fmt.Sprintf("%s of CPU time fits a fleet of %.2f instance-hours of %s (at most %d instances), which costs less than %s GB-s of Lambda duration: Managed Instances bill instances, not milliseconds",
			time.Duration(fb.CPUMs*float64(time.Millisecond)).Round(time.Millisecond), best.InstanceHours, orDefault(best.InstanceType, "instances"), best.PeakInstances, gbs.Round(2).String())
	case replay.Hybrid:
		return fmt.Sprintf("a fleet for the steady floor of %d concurrent invocations with on-demand for the peaks beats either alone", best.Provisioned)
	}
	return ""
}

func cheapestBut(w *WhatIf, c cost.Compute) *Estimate {
	var out *Estimate
	for i := range w.Estimates {
		e := &w.Estimates[i]
		if e.Compute == c || degenerate(e) {
			continue
		}
		if out == nil || e.Bill.Total.LessThan(out.Bill.Total) {
			out = e
		}
	}
	return out
}

// degenerate reports an estimate that is on-demand under another name:
// Provisioned Concurrency the replay found no level worth provisioning for, or
// a hybrid without a fleet.
func degenerate(e *Estimate) bool {
	return (e.Compute == cost.Provisioned && e.Provisioned == 0) || (e.Compute == replay.Hybrid && e.InstanceHours == 0)
}

func title(c cost.Compute) string {
	switch c {
	case cost.OnDemand:
		return "On-demand"
	case cost.Provisioned:
		return "Provisioned Concurrency"
	case cost.ManagedInstances:
		return "Managed Instances"
	case replay.Hybrid:
		return "The hybrid (Managed Instances for the floor, on-demand above)"
	}
	return string(c)
}

func lower(c cost.Compute) string {
	switch c {
	case cost.OnDemand:
		return "on-demand"
	case replay.Hybrid:
		return "hybrid"
	}
	return title(c)
}

func joinComputes(cs []cost.Compute) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, " and ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func usd(d decimal.Decimal) string { return pricing.FormatUSD(d) }

// sig3 shows x to three significant figures as a plain decimal, never in
// exponent form: 0.0000104, not 1.04e-05.
func sig3(x float64) string {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 3, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}
