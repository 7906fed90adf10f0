package billing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// The Managed Instances check holds the usage ledger's instance time against
// the fleet's own record of its instances. The fleet stamps an instance's
// life (launched, left pending, terminated) with the very clock readings at
// which it opens and closes the instance's usage segments, so a whole ledger
// gives the same billed seconds to the nanosecond, and a segment the ledger
// lost shows as a difference.

// FleetRecord is the fleet's record of its instances over the period: those
// running when it was read and those terminated since the period began
// (GET /shoal/v1/fleet?terminated_since=).
type FleetRecord struct {
	Instances []FleetInstance
}

// FleetInstance is one instance as the fleet recorded it.
type FleetInstance struct {
	ID               string
	CapacityProvider string
	Type             string
	// StartedAt is when it left pending (EC2 bills from then); zero if it
	// never did.
	StartedAt time.Time
	// TerminatedAt is zero while it runs.
	TerminatedAt time.Time
	// MeteredUntil is, while it runs, where its time in the ledger ends (the
	// fleet records open time every few seconds): its time is compared up
	// to there.
	MeteredUntil time.Time
}

// billed is the part of the instance's billed time in the period that the
// ledger should hold.
func (fi FleetInstance) billed(opts Options) (time.Duration, bool) {
	end := fi.TerminatedAt
	if end.IsZero() {
		end = fi.MeteredUntil
	}
	if fi.StartedAt.IsZero() || end.IsZero() {
		return 0, false
	}
	start := fi.StartedAt
	if start.Before(opts.Since) {
		start = opts.Since
	}
	if end.After(opts.Until) {
		end = opts.Until
	}
	if !end.After(start) {
		return 0, false
	}
	return end.Sub(start), true
}

// FleetUsage is a capacity provider's billed instance time by the fleet's
// record.
type FleetUsage struct {
	Instances int
	Usage     []InstanceUsage // by type, as ProviderBill.Usage
}

// fleetTime is the fleet's billed seconds per capacity provider and type.
type fleetTime struct {
	seconds   map[string]decimal.Decimal
	instances map[string]bool
}

func fleetByProvider(rec *FleetRecord, opts Options) map[string]*fleetTime {
	out := map[string]*fleetTime{}
	for _, fi := range rec.Instances {
		d, ok := fi.billed(opts)
		if !ok {
			continue
		}
		ft := out[fi.CapacityProvider]
		if ft == nil {
			ft = &fleetTime{seconds: map[string]decimal.Decimal{}, instances: map[string]bool{}}
			out[fi.CapacityProvider] = ft
		}
		ft.seconds[fi.Type] = ft.seconds[fi.Type].Add(seconds(d))
		ft.instances[fi.ID] = true
	}
	return out
}

// FleetAgrees reports whether the ledger's billed time of every instance type
// is the fleet's, exactly; false without a fleet record.
func (p ProviderBill) FleetAgrees() bool {
	if p.Fleet == nil || len(p.Fleet.Usage) != len(p.Usage) {
		return false
	}
	for i, u := range p.Usage {
		f := p.Fleet.Usage[i]
		if f.Type != u.Type || !f.Seconds.Equal(u.Seconds) {
			return false
		}
	}
	return true
}

// MeteredSeconds is the ledger's billed instance time of all types.
func (p ProviderBill) MeteredSeconds() decimal.Decimal { return sumSeconds(p.Usage) }

// FleetSeconds is the fleet's record of it (zero without one).
func (p ProviderBill) FleetSeconds() decimal.Decimal {
	if p.Fleet == nil {
		return decimal.Zero
	}
	return sumSeconds(p.Fleet.Usage)
}

func sumSeconds(us []InstanceUsage) decimal.Decimal {
	s := decimal.Zero
	for _, u := range us {
		s = s.Add(u.Seconds)
	}
	return s
}

// fleetCheck sets each capacity provider's time by the fleet's record beside
// the ledger's, and returns the providers billed from the fleet's record
// instead (nil without one) for the functions' Managed Instances checks.
func (r *Report) fleetCheck(cat *pricing.Catalog, u *usage, opts Options) ([]ProviderBill, error) {
	if opts.Fleet == nil {
		if len(r.CapacityProviders) > 0 {
			u.warnings = append(u.warnings, "the fleet's record of its instances was not read: the Managed Instances bills are not checked against it")
		}
		return nil, nil
	}
	ft := fleetByProvider(opts.Fleet, opts)
	var fleetBills []ProviderBill
	for i := range r.CapacityProviders {
		pb := &r.CapacityProviders[i]
		f := ft[pb.Name]
		delete(ft, pb.Name)
		cu := *u.providers[pb.Name]
		cu.seconds, cu.instances = map[string]decimal.Decimal{}, map[string]bool{}
		fu := &FleetUsage{}
		if f != nil {
			fu.Instances = len(f.instances)
			cu.instances = f.instances
			for _, t := range sortedKeys(f.seconds) {
				if _, err := cat.InstanceType(t); err != nil {
					continue // the ledger's time of it is left out of the bill too, with a warning
				}
				fu.Usage = append(fu.Usage, InstanceUsage{Type: t, Seconds: f.seconds[t]})
				cu.seconds[t] = f.seconds[t]
			}
		}
		pb.Fleet = fu
		fb, err := providerBill(cat, &cu, r.Period, opts)
		if err != nil {
			return nil, err
		}
		fleetBills = append(fleetBills, fb)
		if !pb.FleetAgrees() {
			u.warnings = append(u.warnings, fmt.Sprintf("capacity provider %s: the ledger holds %s s of billed instance time, the fleet's record of its instances %s s",
				pb.Name, pb.MeteredSeconds().String(), pb.FleetSeconds().String()))
		}
	}
	if opts.Function == "" {
		for _, name := range sortedKeys(ft) {
			total := decimal.Zero
			for _, s := range ft[name].seconds {
				total = total.Add(s)
			}
			u.warnings = append(u.warnings, fmt.Sprintf("capacity provider %s: the fleet's record of its instances has %s s of billed instance time in the period, the ledger none",
				name, total.String()))
		}
	}
	return fleetBills, nil
}

// fleetCheckOf is a function's Managed Instances check: its bill from the
// ledger beside the same bill with its capacity providers' instance time
// taken from the fleet's record.
func fleetCheckOf(cat *pricing.Catalog, fn string, requests int64, u *usage, fleetBills []ProviderBill, p cost.Period, metered decimal.Decimal) (Check, error) {
	fromFleet, err := managedShare(cat, fn, requests, u, fleetBills, p)
	if err != nil {
		return Check{}, err
	}
	c := newCheck(cost.ManagedInstances, metered, fromFleet.Total,
		"its requests and its share (by CPU time) of its capacity providers' instances, each instance billed from leaving pending to its termination as the fleet recorded it")
	c.Against = "from the fleet's launch and terminate times"
	return c, nil
}
