// Package cost is shoal's cost engine. It prices a workload on the three Lambda compute
// types (on-demand, Provisioned Concurrency, Managed Instances), sizes the Managed
// Instances fleet and the provisioned level when they are not given, finds the request
// rate at which on-demand and a Managed Instances fleet cost the same, and renders the
// answer as a table, JSON, an SVG chart or a self-contained HTML report.
//
// All money is decimal (github.com/shopspring/decimal) and stays unrounded until it is
// presented; probabilities and chart coordinates are float64. Prices come from
// internal/pricing; the engine never reads a clock or does I/O other than writing the
// reports it is asked for. The replay engine (internal/cost/replay) prices its simulated
// usage with the same Price… functions, so the analytic and replayed figures agree.
package cost

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// Compute is one of Lambda's compute types.
type Compute string

// The three compute types, named as in `shoal cost compare -o json`.
const (
	OnDemand         Compute = "on-demand"
	Provisioned      Compute = "provisioned-concurrency"
	ManagedInstances Compute = "managed-instances"
)

// Period is the length of time a bill covers.
type Period struct {
	Name  string          // "day", "month", "12h", …
	Hours decimal.Decimal // length in hours
}

// Day and Month are the two usual periods; a month is pricing.HoursPerMonth hours.
var (
	Day   = Period{Name: "day", Hours: decimal.NewFromInt(24)}
	Month = Period{Name: "month", Hours: decimal.NewFromInt(pricing.HoursPerMonth)}
)

// ParsePeriod reads "day", "month", "week", "year" or a number of hours such as "12h" or
// "730h".
func ParsePeriod(s string) (Period, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "day", "daily", "24h":
		return Day, nil
	case "month", "monthly", "730h":
		return Month, nil
	case "week", "weekly":
		return Period{Name: "week", Hours: decimal.NewFromInt(168)}, nil
	case "year", "yearly":
		return Period{Name: "year", Hours: decimal.NewFromInt(12 * pricing.HoursPerMonth)}, nil
	}
	num, ok := strings.CutSuffix(strings.ToLower(strings.TrimSpace(s)), "h")
	if !ok {
		return Period{}, fmt.Errorf("period %q: want day, month or a number of hours such as 12h", s)
	}
	h, err := decimal.NewFromString(num)
	if err != nil || !h.IsPositive() {
		return Period{}, fmt.Errorf("period %q: want a positive number of hours", s)
	}
	return Period{Name: h.String() + "h", Hours: h}, nil
}

// Seconds is the period's length in seconds.
func (p Period) Seconds() decimal.Decimal { return p.Hours.Mul(decimal.NewFromInt(3600)) }

// Months is the period's length in 730-hour months.
func (p Period) Months() decimal.Decimal { return pricing.Months(p.Hours) }

// String names the period for people: "day", "month", "12h".
func (p Period) String() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Hours.String() + "h"
}

// Item is one line of a bill.
type Item struct {
	Name      string          `json:"name"`
	Quantity  decimal.Decimal `json:"quantity"`
	Unit      string          `json:"unit"`
	UnitPrice decimal.Decimal `json:"unit_price"`
	USD       decimal.Decimal `json:"usd"` // unrounded
}

// Option is the bill of one compute type for one period, with how it was sized.
type Option struct {
	Compute Compute
	Items   []Item
	Total   decimal.Decimal // unrounded sum of the items
	// Unavailable, when set, says why this compute type cannot run the
	// workload; the items then price it only for comparison.
	Unavailable string

	// Provisioned Concurrency only.
	Provisioned   int     // provisioned environments
	SpillFraction float64 // share of invocations billed at on-demand rates

	// Managed Instances only.
	InstanceType string
	Instances    int
}

func (o *Option) add(it Item) {
	o.Items = append(o.Items, it)
	o.Total = o.Total.Add(it.USD)
}

// OnDemandUsage is what default Lambda meters in a period.
type OnDemandUsage struct {
	Arch      pricing.Arch
	Requests  decimal.Decimal
	GBSeconds decimal.Decimal // billed GB-seconds (after per-invocation rounding)
}

// PriceOnDemand bills default Lambda usage for a period. With freeTier, the monthly
// allowance prorated to the period is deducted first; the duration tiers are prorated
// the same way.
func PriceOnDemand(cat *pricing.Catalog, u OnDemandUsage, p Period, freeTier bool) (Option, error) {
	rates, err := cat.Rates(u.Arch)
	if err != nil {
		return Option{}, err
	}
	months := p.Months()
	req, gbs := u.Requests, u.GBSeconds
	var ft pricing.FreeTier
	if freeTier {
		ft = cat.Lambda.FreeTierFor(months)
	}
	o := Option{Compute: OnDemand}
	o.add(requestItem("Requests", cat.Lambda.RequestPerMillion, req, ft.RequestsPerMonth, cat.Lambda.RequestCost))
	billable := nonNeg(gbs.Sub(ft.GBSecondsPerMonth))
	o.add(Item{
		Name:      durationName(u.Arch, ft.GBSecondsPerMonth),
		Quantity:  billable,
		Unit:      "GB-s",
		UnitPrice: rates.FirstTierPrice(),
		USD:       rates.DurationCost(billable, decimal.Zero, months),
	})
	return o, nil
}

// ProvisionedUsage is what Provisioned Concurrency meters in a period.
type ProvisionedUsage struct {
	Arch                 pricing.Arch
	Provisioned          int             // environments kept provisioned (for the record)
	Requests             decimal.Decimal // all requests, on provisioned environments or not
	ProvisionedGBSeconds decimal.Decimal // allocated: environments × GB × seconds enabled
	ExecutedGBSeconds    decimal.Decimal // billed duration of invocations on provisioned environments
	SpillGBSeconds       decimal.Decimal // billed duration of invocations that spilled to on-demand
	SpillFraction        float64         // for the record
}

// PriceProvisioned bills Provisioned Concurrency usage for a period. Spill-over runs on
// on-demand environments and is billed at on-demand (tiered) rates; with freeTier the
// request allowance and the on-demand GB-second allowance apply, the provisioned and
// executed-on-provisioned GB-seconds are never free.
func PriceProvisioned(cat *pricing.Catalog, u ProvisionedUsage, p Period, freeTier bool) (Option, error) {
	rates, err := cat.Rates(u.Arch)
	if err != nil {
		return Option{}, err
	}
	months := p.Months()
	var ft pricing.FreeTier
	if freeTier {
		ft = cat.Lambda.FreeTierFor(months)
	}
	o := Option{Compute: Provisioned, Provisioned: u.Provisioned, SpillFraction: u.SpillFraction}
	o.add(Item{
		Name:      fmt.Sprintf("Provisioned concurrency (%d environments)", u.Provisioned),
		Quantity:  u.ProvisionedGBSeconds,
		Unit:      "GB-s",
		UnitPrice: rates.ProvisionedPerGBSecond,
		USD:       u.ProvisionedGBSeconds.Mul(rates.ProvisionedPerGBSecond),
	})
	o.add(Item{
		Name:      "Duration on provisioned environments",
		Quantity:  u.ExecutedGBSeconds,
		Unit:      "GB-s",
		UnitPrice: rates.ProvisionedDurationPerGBSecond,
		USD:       u.ExecutedGBSeconds.Mul(rates.ProvisionedDurationPerGBSecond),
	})
	spill := nonNeg(u.SpillGBSeconds.Sub(ft.GBSecondsPerMonth))
	o.add(Item{
		Name:      "Spill-over duration at on-demand rates" + freeNote(ft.GBSecondsPerMonth),
		Quantity:  spill,
		Unit:      "GB-s",
		UnitPrice: rates.FirstTierPrice(),
		USD:       rates.DurationCost(spill, decimal.Zero, months),
	})
	o.add(requestItem("Requests", cat.Lambda.RequestPerMillion, u.Requests, ft.RequestsPerMonth, cat.Lambda.RequestCost))
	return o, nil
}

// InstanceHours is time one instance type ran.
type InstanceHours struct {
	Type  string
	Hours decimal.Decimal // instance-hours: instances × hours
}

// ManagedUsage is what Managed Instances meter in a period.
type ManagedUsage struct {
	Requests      decimal.Decimal
	InstanceHours []InstanceHours
	// SavingsPlan is the fraction off the EC2 on-demand price (0 for none). The
	// management fee is not discounted.
	SavingsPlan decimal.Decimal
	// Instances is the fleet size, for the record (0 when it varied).
	Instances int
}

// PriceManagedInstances bills Managed Instances usage: EC2 instance-hours after the
// discount, the management fee on the on-demand price, and requests. With freeTier the
// request allowance applies to the request charge, as for any Lambda request.
func PriceManagedInstances(cat *pricing.Catalog, u ManagedUsage, p Period, freeTier bool) (Option, error) {
	mi := cat.ManagedInstances
	if u.SavingsPlan.IsNegative() || u.SavingsPlan.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return Option{}, fmt.Errorf("savings plan %s: want a fraction in [0, 1)", u.SavingsPlan)
	}
	o := Option{Compute: ManagedInstances, Instances: u.Instances}
	feeTotal := decimal.Zero
	var ec2Items []Item
	var names []string
	for _, ih := range u.InstanceHours {
		it, err := cat.InstanceType(ih.Type)
		if err != nil {
			return Option{}, err
		}
		ec2, fee := mi.Hourly(it, u.SavingsPlan)
		ec2Items = append(ec2Items, Item{
			Name:      "EC2 " + it.Name + discountNote(u.SavingsPlan),
			Quantity:  ih.Hours,
			Unit:      "instance-hours",
			UnitPrice: ec2,
			USD:       ih.Hours.Mul(ec2),
		})
		feeTotal = feeTotal.Add(ih.Hours.Mul(fee))
		names = append(names, it.Name)
	}
	if len(names) == 1 {
		o.InstanceType = names[0]
	}
	for _, it := range ec2Items {
		o.add(it)
	}
	hours := decimal.Zero
	for _, ih := range u.InstanceHours {
		hours = hours.Add(ih.Hours)
	}
	feeUnit := decimal.Zero
	if hours.IsPositive() {
		feeUnit = feeTotal.Div(hours)
	}
	o.add(Item{
		Name:      fmt.Sprintf("Management fee (%s%% of the on-demand price)", mi.ManagementFee.Shift(2).String()),
		Quantity:  hours,
		Unit:      "instance-hours",
		UnitPrice: feeUnit,
		USD:       feeTotal,
	})
	var ft pricing.FreeTier
	if freeTier {
		ft = cat.Lambda.FreeTierFor(p.Months())
	}
	o.add(requestItem("Requests", mi.RequestPerMillion, u.Requests, ft.RequestsPerMonth, mi.RequestCost))
	return o, nil
}

func requestItem(name string, perMillion, n, free decimal.Decimal, price func(decimal.Decimal) decimal.Decimal) Item {
	billable := nonNeg(n.Sub(free))
	return Item{
		Name:      name + freeNote(free),
		Quantity:  billable,
		Unit:      "requests",
		UnitPrice: perMillion.Div(decimal.NewFromInt(1_000_000)),
		USD:       price(billable),
	}
}

func durationName(a pricing.Arch, free decimal.Decimal) string {
	return "Duration (" + string(a) + ")" + freeNote(free)
}

func freeNote(free decimal.Decimal) string {
	if !free.IsPositive() {
		return ""
	}
	return " after free tier"
}

func discountNote(sp decimal.Decimal) string {
	if !sp.IsPositive() {
		return ""
	}
	return " (" + sp.Shift(2).String() + "% Savings Plan)"
}

func nonNeg(d decimal.Decimal) decimal.Decimal {
	if d.IsNegative() {
		return decimal.Zero
	}
	return d
}
