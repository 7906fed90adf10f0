package cost

import (
	"fmt"
	"io"
	"math"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// chartSamples is the number of request rates a cost-versus-rate chart evaluates.
const chartSamples = 160

// CompareChart draws the cost of the workload on each compute type against the request
// rate, from zero to about twice the larger of the workload's rate and the break-even:
// on-demand, Provisioned Concurrency (sized at each rate unless fixed), the Managed
// Instances fleet of the result held fixed, and — when the engine sized it — the fleet
// re-sized at each rate. The break-even and the workload's own rate are marked.
func CompareChart(cat *pricing.Catalog, r *Result, cfg Config) (Chart, error) {
	w := r.Workload
	p := r.Period
	rate := r.Rate.InexactFloat64()
	top := math.Max(rate*2, 10)
	if r.BreakEvenRPS != nil {
		top = math.Max(top, r.BreakEvenRPS.InexactFloat64()*2)
	}
	top = niceTicks(0, top, 5)[len(niceTicks(0, top, 5))-1]

	f := r.Fleet
	od := Series{Name: "on-demand", Color: "#d62728"}
	pc := Series{Name: "Provisioned Concurrency (sized at each rate)", Color: "#9467bd"}
	if cfg.Provisioned > 0 {
		pc.Name = fmt.Sprintf("Provisioned Concurrency (%d)", cfg.Provisioned)
	}
	fixed := Series{Name: fmt.Sprintf("Managed Instances, %d × %s", f.Instances, f.Type.Name), Color: "#1f77b4"}
	resized := Series{Name: "Managed Instances, fleet sized at each rate", Color: "#2ca02c", Dashed: true}
	resize := cfg.Instances == 0

	for i := 0; i <= chartSamples; i++ {
		x := top * float64(i) / chartSamples
		xr := decimal.NewFromFloat(x)
		n := xr.Mul(p.Seconds())
		o, err := priceOnDemandAt(cat, w, p, cfg.FreeTier, n, r.BilledMs)
		if err != nil {
			return Chart{}, err
		}
		od.Points = append(od.Points, Point{x, o.Total.InexactFloat64()})

		plan := SizeProvisioned(xr, w.Duration, cfg.Provisioned, cfg.SpillTarget)
		o, err = priceProvisionedAt(cat, w, p, cfg.FreeTier, n, r.BilledMs, plan)
		if err != nil {
			return Chart{}, err
		}
		pc.Points = append(pc.Points, Point{x, o.Total.InexactFloat64()})

		o, err = priceFleetAt(cat, f, p, cfg, n)
		if err != nil {
			return Chart{}, err
		}
		fixed.Points = append(fixed.Points, Point{x, o.Total.InexactFloat64()})

		if resize {
			fl, err := SizeFleet(cat, FleetRequest{
				Rate: xr, Duration: w.Duration, CPUTime: w.CPUTime, MemoryMB: w.MemoryMB, Arch: w.Arch,
				Runtime: w.Runtime, InstanceType: cfg.InstanceType, SavingsPlan: cfg.SavingsPlan,
				TargetUtilization: cfg.TargetUtilization, EnvConcurrency: cfg.EnvConcurrency,
			})
			if err != nil {
				return Chart{}, err
			}
			o, err = priceFleetAt(cat, fl, p, cfg, n)
			if err != nil {
				return Chart{}, err
			}
			resized.Points = append(resized.Points, Point{x, o.Total.InexactFloat64()})
		}
	}
	c := Chart{
		Title:   fmt.Sprintf("Cost per %s: %s, %d MB, %s", p, w.Duration, w.MemoryMB, w.Arch),
		XLabel:  "requests per second",
		YLabel:  "USD per " + p.String(),
		Series:  []Series{od, pc, fixed},
		YFormat: FormatDollars,
	}
	if o, _ := r.Option(OnDemand); o.Unavailable != "" {
		c.Series = []Series{fixed} // on-demand and Provisioned Concurrency cannot run it
	}
	if resize {
		c.Series = append(c.Series, resized)
	}
	if r.BreakEvenRPS != nil {
		be := *r.BreakEvenRPS
		at, err := priceFleetAt(cat, f, p, cfg, be.Mul(p.Seconds()))
		if err != nil {
			return Chart{}, err
		}
		c.Markers = append(c.Markers, Marker{
			X: be.InexactFloat64(), Y: at.Total.InexactFloat64(), HasY: true,
			Label: "break-even " + be.Round(2).StringFixed(2) + " req/s", Color: "#333333",
		})
	}
	if rate > 0 {
		c.Markers = append(c.Markers, Marker{X: rate, Label: "this workload: " + num(r.Rate) + " req/s", Color: "#777777"})
	}
	return c, nil
}

// WriteCompareChart draws CompareChart as SVG.
func WriteCompareChart(w io.Writer, cat *pricing.Catalog, r *Result, cfg Config) error {
	c, err := CompareChart(cat, r, cfg)
	if err != nil {
		return err
	}
	return c.WriteSVG(w)
}
