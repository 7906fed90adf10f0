// Package billing prices the usage ledger: it turns the usage events of a
// period (internal/meter) into a bill per function, per capacity provider and
// per compute type, with the same bill lines as `shoal cost compare`, and
// answers from the recorded traffic itself what the period would have cost on
// the other compute types (the cost engine's replay, internal/cost/replay, fed
// with the recorded invocations and their measured CPU time).
//
// Everything here is pure: events, a price catalogue and the period in, a
// Report out. Prices are worked out only by internal/cost's Price… functions;
// this package measures quantities (requests, billed GB-seconds, provisioned
// GB-seconds, instance-hours) and hands them over. It reads no clock and does
// no I/O beyond the writers it is given.
package billing

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// Options says what to bill.
type Options struct {
	// Since and Until bound the period, [Since, Until). An invocation counts
	// in the period it ended in (as the ledger selects it); instance and
	// provisioned segments are clipped to the period.
	Since, Until time.Time
	// Function, if set, bills only that function, and the capacity providers
	// its Managed Instances invocations ran on (whole).
	Function string
	// FreeTier deducts Lambda's monthly free tier, prorated to the period,
	// once for the account: from the on-demand total. Per-function bills never
	// deduct it.
	FreeTier bool
	// SavingsPlan is the fraction off the EC2 on-demand price of Managed
	// Instances; the management fee stays on the on-demand price.
	SavingsPlan decimal.Decimal
	// Runtime sets the Managed Instances concurrency per vCPU of the what-if
	// replay for functions Functions does not describe; "" means
	// cost.DefaultRuntime.
	Runtime string
	// Functions describes functions by name, where known (the ledger does not
	// carry runtimes or Managed Instances concurrency).
	Functions map[string]FunctionInfo
	// Step is the what-if replay's step; 0 picks the finest of 1s, 5s, 10s,
	// 30s, 1m, 5m, 15m and 1h that keeps the period within MaxSteps steps.
	Step time.Duration
	// NoWhatIf skips the replay (the metered bill only).
	NoWhatIf bool
	// Fleet is the fleet's own record of its instances, which the Managed
	// Instances bills are checked against; nil when it could not be read
	// (the report then says the check was not made).
	Fleet *FleetRecord
}

// FunctionInfo is what the what-if replay knows of a function besides its traffic.
type FunctionInfo struct {
	// Runtime, such as python3.13 or provided.al2023, sets the default
	// concurrency per vCPU of a Managed Instances environment; "" or an unknown
	// runtime falls back to Options.Runtime.
	Runtime string
	// EnvConcurrency is the function's PerExecutionEnvironmentMaxConcurrency
	// on Managed Instances; 0 takes the runtime's default.
	EnvConcurrency int
}

// MaxSteps bounds the what-if replay's steps when Options.Step picks the step.
const MaxSteps = 50_000

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Since.IsZero() || o.Until.IsZero():
		return errors.New("billing: the period needs a start and an end")
	case !o.Until.After(o.Since):
		return fmt.Errorf("billing: period %s to %s: the end must be after the start", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	case o.SavingsPlan.IsNegative() || o.SavingsPlan.GreaterThanOrEqual(decimal.NewFromInt(1)):
		return fmt.Errorf("billing: savings plan %s: want a fraction in [0, 1)", o.SavingsPlan)
	case o.Step < 0 || o.Step%time.Second != 0:
		return fmt.Errorf("billing: replay step %v: want whole seconds", o.Step)
	}
	if _, err := cost.RuntimeConcurrency(o.Runtime); err != nil {
		return fmt.Errorf("billing: %w", err)
	}
	return nil
}

// Report is the bill of one period.
type Report struct {
	Catalog cost.CatalogRef
	Since   time.Time
	Until   time.Time
	Period  cost.Period // Until − Since
	// Functions are billed in name order; CapacityProviders likewise.
	Functions         []FunctionBill
	CapacityProviders []ProviderBill
	// Totals has one bill per compute type that was used, in the order
	// on-demand, provisioned-concurrency, managed-instances. On-demand and
	// Provisioned Concurrency usage of both architectures is priced per
	// architecture and the lines prefixed with it.
	Totals []cost.Option
	Total  decimal.Decimal
	// Events counted, by kind.
	Invocations, ProvisionedSegments, InstanceSegments int
	Assumptions                                        []string
	Warnings                                           []string
}

// TotalOf returns the report's bill of compute type c.
func (r *Report) TotalOf(c cost.Compute) (cost.Option, bool) {
	for _, o := range r.Totals {
		if o.Compute == c {
			return o, true
		}
	}
	return cost.Option{}, false
}

// Function returns the bill of one function.
func (r *Report) Function(name string) *FunctionBill {
	for i := range r.Functions {
		if r.Functions[i].Function == name {
			return &r.Functions[i]
		}
	}
	return nil
}

// FunctionBill is what one function used and cost.
type FunctionBill struct {
	Function     string
	Architecture pricing.Arch
	MemoryMB     int // the largest memory size of its invocations or provisioned segments
	// Computes are the compute types it ran on, in the order of Bills.
	Computes    []cost.Compute
	Invocations int64
	ColdStarts  int64 // on-demand invocations that carried (and billed) an init
	BilledMs    int64
	DurationMs  float64
	CPUMs       float64
	// ProvisionedGBSeconds is the allocated Provisioned Concurrency of the
	// period; SpillOvers the on-demand invocations while it was allocated.
	ProvisionedGBSeconds decimal.Decimal
	SpillOvers           int64
	// Bills has one bill per compute type. A Provisioned Concurrency bill
	// includes the spill-over billed at on-demand rates; a Managed Instances
	// bill has the function's requests and its share of its capacity
	// providers' instances (by CPU time; by requests when no CPU time was
	// measured).
	Bills []cost.Option
	Total decimal.Decimal
	// Checks compare, for each compute type it ran on, the bill predicted by
	// the cost engine from the recorded invocations with the metered one.
	Checks []Check
	// WhatIf is what the same traffic would have cost on every compute type;
	// nil when it was not asked for or could not be replayed (WhatIfNote says why).
	WhatIf     *WhatIf
	WhatIfNote string
}

// ProviderBill is what one capacity provider's instances cost.
type ProviderBill struct {
	Name      string
	Functions []string // whose invocations ran on it
	Requests  int64
	Instances int // distinct instances that ran in the period
	Usage     []InstanceUsage
	Bill      cost.Option // EC2 per instance type, the management fee, the requests
	// Fleet is the same billed time by the fleet's record of its instances
	// (FleetAgrees compares them); nil without Options.Fleet.
	Fleet *FleetUsage
}

// InstanceUsage is the billed time of one instance type.
type InstanceUsage struct {
	Type    string
	Seconds decimal.Decimal // billed instance-seconds (every state but pending)
}

// Hours is the usage in instance-hours.
func (u InstanceUsage) Hours() decimal.Decimal {
	return u.Seconds.Div(decimal.NewFromInt(3600))
}

// inv is an invocation event with what billing needs of it.
type inv struct{ *meter.Event }

// Build prices events for the period of opts with cat.
func Build(events []meter.Event, cat *pricing.Catalog, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if cat == nil {
		return nil, errors.New("billing: no price catalogue")
	}
	period := cost.Period{Name: opts.Until.Sub(opts.Since).String(), Hours: seconds(opts.Until.Sub(opts.Since)).Div(decimal.NewFromInt(3600))}
	r := &Report{
		Catalog: cost.CatalogRef{Version: cat.Version, Date: cat.Date, Region: cat.Region, Currency: cat.Currency},
		Since:   opts.Since, Until: opts.Until, Period: period,
	}
	u := collect(events, opts)
	r.Invocations, r.ProvisionedSegments, r.InstanceSegments = u.nInv, u.nProv, u.nInst

	// Capacity providers first: Managed Instances function bills take a share of them.
	for _, name := range sortedKeys(u.providers) {
		p := u.providers[name]
		for _, t := range sortedKeys(p.seconds) {
			if _, err := cat.InstanceType(t); err != nil {
				u.warnings = append(u.warnings, fmt.Sprintf("capacity provider %s: %s instance-hours of %s are not priced: %v",
					name, InstanceUsage{Seconds: p.seconds[t]}.Hours().Round(4), orDefault(t, "an unnamed instance type"), err))
				delete(p.seconds, t)
			}
		}
		pb, err := providerBill(cat, u.providers[name], period, opts)
		if err != nil {
			return nil, err
		}
		r.CapacityProviders = append(r.CapacityProviders, pb)
	}
	fleetBills, err := r.fleetCheck(cat, u, opts)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(u.functions) {
		fb, err := functionBill(cat, u.functions[name], u, r.CapacityProviders, fleetBills, period)
		if err != nil {
			return nil, err
		}
		r.Functions = append(r.Functions, fb)
	}
	if err := r.totals(cat, u, opts); err != nil {
		return nil, err
	}
	if !opts.NoWhatIf {
		for i := range r.Functions {
			if err := whatIf(cat, &r.Functions[i], u.functions[r.Functions[i].Function], u.providers, opts); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case opts.Function != "" && r.Function(opts.Function) == nil:
		u.warnings = append(u.warnings, fmt.Sprintf("function %s recorded no usage in the period", opts.Function))
	case r.Invocations+r.ProvisionedSegments+r.InstanceSegments == 0:
		u.warnings = append(u.warnings, "the ledger holds no usage in the period (was shoal started with --no-meter?)")
	}
	r.Warnings = u.warnings
	r.Assumptions = assumptions(cat, r, opts)
	return r, nil
}

// usage is the ledger's events of the period, sorted out.
type usage struct {
	functions map[string]*fnUsage
	providers map[string]*cpUsage
	warnings  []string

	nInv, nProv, nInst int
	malformed          int
}

type fnUsage struct {
	name        string
	invocations []inv
	provisioned []*meter.Event // clipped to the period
	// pcRoundGB is what rounding the Provisioned Concurrency spans that end
	// in the period up to whole increments adds, in GB-s.
	pcRoundGB decimal.Decimal
}

type cpUsage struct {
	name      string
	functions map[string]bool
	requests  int64
	instances map[string]bool
	seconds   map[string]decimal.Decimal // by instance type
	cpuMs     map[string]float64         // by function
	reqs      map[string]int64           // by function
	first     time.Time                  // start of its first billed instance time in the period
}

func collect(events []meter.Event, opts Options) *usage {
	u := &usage{functions: map[string]*fnUsage{}, providers: map[string]*cpUsage{}}
	fn := func(name string) *fnUsage {
		f := u.functions[name]
		if f == nil {
			f = &fnUsage{name: name}
			u.functions[name] = f
		}
		return f
	}
	cp := func(name string) *cpUsage {
		p := u.providers[name]
		if p == nil {
			p = &cpUsage{name: name, functions: map[string]bool{}, instances: map[string]bool{}, seconds: map[string]decimal.Decimal{},
				cpuMs: map[string]float64{}, reqs: map[string]int64{}}
			u.providers[name] = p
		}
		return p
	}
	seen := make(map[string]bool, len(events))
	var instSegs, provSegs []*meter.Event
	for i := range events {
		ev := &events[i]
		if ev.ID != "" {
			if seen[ev.ID] {
				continue
			}
			seen[ev.ID] = true
		}
		if ev.End.Before(ev.Start) || ev.DurationMs < 0 || ev.BilledMs < 0 || ev.CPUMs < 0 || ev.InitMs < 0 ||
			ev.MemoryMB < 0 || ev.Concurrency < 0 {
			u.malformed++
			continue
		}
		switch ev.Kind {
		case meter.KindInvocation:
			if ev.End.Before(opts.Since) || !ev.End.Before(opts.Until) {
				continue
			}
			if ev.Compute == meter.ManagedInstances {
				// A capacity provider is billed whole, with every function's
				// requests, even when the report is about one function.
				p := cp(ev.CapacityProvider)
				p.functions[ev.Function] = true
				p.requests++
				p.cpuMs[ev.Function] += ev.CPUMs
				p.reqs[ev.Function]++
			}
			if opts.Function != "" && ev.Function != opts.Function {
				continue
			}
			u.nInv++
			f := fn(ev.Function)
			f.invocations = append(f.invocations, inv{ev})
		case meter.KindProvisioned:
			if opts.Function != "" && ev.Function != opts.Function {
				continue
			}
			provSegs = append(provSegs, ev)
			c, ok := clip(ev, opts)
			if !ok {
				continue
			}
			u.nProv++
			f := fn(ev.Function)
			f.provisioned = append(f.provisioned, c)
		case meter.KindInstance:
			instSegs = append(instSegs, ev)
		}
	}
	for name, gb := range provisionedRounding(provSegs, opts) {
		fn(name).pcRoundGB = gb
	}
	if opts.Function != "" {
		for name, p := range u.providers {
			if !p.functions[opts.Function] {
				delete(u.providers, name)
			}
		}
	}
	for _, ev := range instSegs {
		if !ev.Billed() {
			continue
		}
		if opts.Function != "" && u.providers[ev.CapacityProvider] == nil {
			continue // a provider the function did not run on
		}
		c, ok := clip(ev, opts)
		if !ok {
			continue
		}
		u.nInst++
		p := cp(ev.CapacityProvider)
		p.instances[ev.Instance] = true
		if p.first.IsZero() || c.Start.Before(p.first) {
			p.first = c.Start
		}
		p.seconds[ev.InstanceType] = p.seconds[ev.InstanceType].Add(seconds(c.End.Sub(c.Start)))
	}
	if u.malformed > 0 {
		u.warnings = append(u.warnings, fmt.Sprintf("%d malformed usage events (ending before they start, or negative measurements) left out", u.malformed))
	}
	for _, f := range u.functions {
		slices.SortStableFunc(f.invocations, func(a, b inv) int { return a.Start.Compare(b.Start) })
	}
	return u
}

// clip returns a copy of a segment cut to the period, and false when none of it is in the period.
func clip(ev *meter.Event, opts Options) (*meter.Event, bool) {
	c := *ev
	if c.Start.Before(opts.Since) {
		c.Start = opts.Since
	}
	if c.End.After(opts.Until) {
		c.End = opts.Until
	}
	return &c, c.End.After(c.Start)
}

// ProvisionedIncrement is the unit Lambda bills a Provisioned Concurrency
// span in: the time from enabling to disabling is rounded up to it.
const ProvisionedIncrement = 5 * time.Minute

// provisionedRounding returns, by function, the GB-s that rounding each
// Provisioned Concurrency span ending in the period up to whole increments
// adds. A span is a run of contiguous segments of one configuration that ends
// with a final segment, measured from its first segment in segs (segments
// that ended before the ledger read began are not there).
func provisionedRounding(segs []*meter.Event, opts Options) map[string]decimal.Decimal {
	byConfig := map[string][]*meter.Event{}
	for _, ev := range segs {
		k := ev.Function + "\x00" + ev.Qualifier
		byConfig[k] = append(byConfig[k], ev)
	}
	out := map[string]decimal.Decimal{}
	for _, k := range sortedKeys(byConfig) {
		evs := byConfig[k]
		slices.SortFunc(evs, func(a, b *meter.Event) int { return a.Start.Compare(b.Start) })
		var start, prevEnd time.Time
		for i, ev := range evs {
			if i == 0 || ev.Start.Sub(prevEnd).Abs() > time.Millisecond {
				start = ev.Start
			}
			prevEnd = ev.End
			if !ev.Final {
				continue
			}
			if ev.End.After(opts.Since) && !ev.End.After(opts.Until) {
				span := ev.End.Sub(start)
				extra := (span+ProvisionedIncrement-1)/ProvisionedIncrement*ProvisionedIncrement - span
				gb := decimal.NewFromInt(int64(ev.Concurrency) * int64(ev.MemoryMB)).Div(decimal.NewFromInt(pricing.MBPerGB))
				out[ev.Function] = out[ev.Function].Add(gb.Mul(seconds(extra)))
			}
			prevEnd = time.Time{} // the next segment starts a new span
		}
	}
	return out
}

// seconds is d in seconds, exactly.
func seconds(d time.Duration) decimal.Decimal { return decimal.NewFromInt(int64(d)).Shift(-9) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func archOf(s string) pricing.Arch {
	if a, err := pricing.ParseArch(s); err == nil {
		return a
	}
	return pricing.X86_64
}
