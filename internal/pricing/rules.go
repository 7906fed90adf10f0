package pricing

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

var (
	million  = decimal.NewFromInt(1_000_000)
	msPerS   = decimal.NewFromInt(1000)
	mbPerGB  = decimal.NewFromInt(MBPerGB)
	perMonth = decimal.NewFromInt(HoursPerMonth)
)

// Months converts a period in hours to months of HoursPerMonth hours: 24 h is 24/730 of a
// month. The result keeps 16 decimal places.
func Months(hours decimal.Decimal) decimal.Decimal {
	return hours.DivRound(perMonth, 16)
}

// BilledMs rounds one invocation's duration up to the billing granularity and returns it
// in milliseconds: with 1 ms granularity, 200.1 ms bills as 201 ms and 0 ms as 0.
func (l Lambda) BilledMs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	g := l.BillingGranularityMs
	if g < 1 {
		g = 1
	}
	unit := time.Duration(g) * time.Millisecond
	n := int64((d + unit - 1) / unit)
	return n * g
}

// GBSeconds converts billed milliseconds at a memory size to GB-seconds (1 GB = 1024 MB).
func GBSeconds(billedMs decimal.Decimal, memoryMB int64) decimal.Decimal {
	return billedMs.Mul(decimal.NewFromInt(memoryMB)).Div(msPerS.Mul(mbPerGB))
}

// RequestCost prices n default-Lambda or Provisioned Concurrency requests.
func (l Lambda) RequestCost(n decimal.Decimal) decimal.Decimal {
	return n.Mul(l.RequestPerMillion).Div(million)
}

// FreeTierFor returns the free-tier allowance prorated to a period of the given length in
// months (Months(hours)); a month gets the whole allowance.
func (l Lambda) FreeTierFor(months decimal.Decimal) FreeTier {
	return FreeTier{
		RequestsPerMonth:  l.FreeTier.RequestsPerMonth.Mul(months),
		GBSecondsPerMonth: l.FreeTier.GBSecondsPerMonth.Mul(months),
	}
}

// DurationCost prices gbs on-demand GB-seconds used in a period of the given length in
// months, after used GB-seconds already billed in the same period. The tier bounds are
// monthly, so they are prorated to the period: a day's usage climbs the tiers at 24/730 of
// the monthly bounds. Pass used = 0 to price a period from its start.
func (r ArchRates) DurationCost(gbs, used, months decimal.Decimal) decimal.Decimal {
	total := decimal.Zero
	if !gbs.IsPositive() {
		return total
	}
	lo := used
	hi := used.Add(gbs)
	floor := decimal.Zero
	for _, t := range r.DurationTiers {
		var ceil decimal.Decimal
		unbounded := t.UpToGBSeconds == nil
		if !unbounded {
			ceil = t.UpToGBSeconds.Mul(months)
		}
		// The part of [lo, hi) inside [floor, ceil).
		a := decimal.Max(lo, floor)
		b := hi
		if !unbounded {
			b = decimal.Min(hi, ceil)
		}
		if b.GreaterThan(a) {
			total = total.Add(b.Sub(a).Mul(t.PerGBSecond))
		}
		if unbounded || !hi.GreaterThan(ceil) {
			break
		}
		floor = ceil
	}
	return total
}

// FirstTierPrice is the duration price of the first tier: the marginal on-demand price of
// any function below 6 billion GB-seconds a month.
func (r ArchRates) FirstTierPrice() decimal.Decimal {
	if len(r.DurationTiers) == 0 {
		return decimal.Zero
	}
	return r.DurationTiers[0].PerGBSecond
}

// RequestCost prices n Managed Instances requests.
func (m ManagedInstances) RequestCost(n decimal.Decimal) decimal.Decimal {
	return n.Mul(m.RequestPerMillion).Div(million)
}

// Hourly returns what one instance of type it costs per hour on Managed Instances: the
// EC2 part after a discount (savingsPlan is the fraction off the on-demand price, 0 for
// none) and the management fee, always a fraction of the undiscounted on-demand price.
func (m ManagedInstances) Hourly(it InstanceType, savingsPlan decimal.Decimal) (ec2, fee decimal.Decimal) {
	ec2 = it.OnDemandHourly.Mul(decimal.NewFromInt(1).Sub(savingsPlan))
	fee = it.OnDemandHourly.Mul(m.ManagementFee)
	return ec2, fee
}

// RoundCents rounds an amount half-up to whole cents (0.005 → 0.01, -0.005 → 0.00). It
// is for presentation only; sums are made of unrounded amounts.
func RoundCents(d decimal.Decimal) decimal.Decimal {
	return d.Shift(2).Add(decimal.NewFromFloat(0.5)).Floor().Shift(-2)
}

// FormatUSD presents an amount rounded to cents with a dollar sign and thousands
// separators: 1234.565 → "$1,234.57".
func FormatUSD(d decimal.Decimal) string {
	r := RoundCents(d)
	s := r.StringFixed(2)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := "$" + b.String() + "." + frac
	if neg {
		out = "-" + out
	}
	return out
}
