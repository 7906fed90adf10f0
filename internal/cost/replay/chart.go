package replay

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
)

var optionColors = [4]string{"#d62728", "#9467bd", "#1f77b4", "#2ca02c"}

// timeAxis picks hours or days for the x axis of a trace of length d.
func timeAxis(d time.Duration) (unit time.Duration, label string, format func(float64) string) {
	if d > 72*time.Hour {
		return 24 * time.Hour, "days since the trace start", func(x float64) string { return fmt.Sprintf("%gd", x) }
	}
	if d > 3*time.Hour {
		return time.Hour, "hours since the trace start", func(x float64) string { return fmt.Sprintf("%gh", x) }
	}
	return time.Minute, "minutes since the trace start", func(x float64) string { return fmt.Sprintf("%gm", x) }
}

// Charts draws a replay: the cumulative cost of each option over time, and the
// Managed Instances fleets (instances) over time.
func Charts(r *Result) []cost.Chart {
	unit, label, xf := timeAxis(time.Duration(r.Steps) * r.Step)
	x := func(i int) float64 { return float64(time.Duration(i+1)*r.Bucket) / float64(unit) }
	costChart := cost.Chart{
		Title: "Cumulative cost over the trace", XLabel: label, YLabel: "USD (first-tier prices)",
		XFormat: xf, YFormat: cost.FormatDollars, Height: 440,
	}
	for k, o := range r.Options {
		s := cost.Series{Name: fmt.Sprintf("%s (%s)", o.Compute, pricing.FormatUSD(o.Bill.Total)), Color: optionColors[k]}
		s.Points = append(s.Points, cost.Point{X: 0, Y: 0})
		for i, p := range r.Series {
			s.Points = append(s.Points, cost.Point{X: x(i), Y: p.Cost[k]})
		}
		costChart.Series = append(costChart.Series, s)
	}
	fleet := cost.Chart{
		Title: "Managed Instances fleet over time", XLabel: label, YLabel: "instances",
		XFormat: xf, Height: 380,
	}
	mi := cost.Series{Name: "managed-instances (scaler)", Color: optionColors[2], Step: true}
	hy := cost.Series{Name: "hybrid fleet (floor)", Color: optionColors[3], Step: true, Dashed: true}
	for i, p := range r.Series {
		t := 0.0
		if i > 0 {
			t = x(i - 1)
		}
		mi.Points = append(mi.Points, cost.Point{X: t, Y: float64(p.Instances)})
		hy.Points = append(hy.Points, cost.Point{X: t, Y: float64(p.HybridInstances)})
	}
	fleet.Series = []cost.Series{mi, hy}
	if o := r.Option(ManagedInstances); o != nil && o.Throttles > 0 {
		// Mark the first bucket that throttled.
		for i, p := range r.Series {
			if p.Throttles >= 0.5 {
				fleet.Markers = append(fleet.Markers, cost.Marker{X: x(i) - float64(r.Bucket)/float64(unit), Label: "first throttle", Color: "#ff7f0e"})
				break
			}
		}
	}
	return []cost.Chart{costChart, fleet}
}

// WriteChart writes the replay's charts as one SVG document, stacked.
func WriteChart(w io.Writer, r *Result) error {
	charts := Charts(r)
	width, height := 800, 0
	var parts []string
	for _, c := range charts {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			return err
		}
		// Nest each chart at its offset.
		parts = append(parts, strings.Replace(b.String(), "<svg ", fmt.Sprintf(`<svg x="0" y="%d" `, height), 1))
		height += c.Height
	}
	if _, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n<title>shoal cost replay</title>\n", width, height, width, height); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := io.WriteString(w, p); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "</svg>\n")
	return err
}

// Page builds the self-contained HTML report of a replay.
func Page(r *Result) cost.Page {
	p := cost.Page{
		Title:       "shoal cost replay",
		Subtitle:    r.heading(),
		Summary:     []string{fmt.Sprintf("Cheapest for this traffic: %s at %s.", r.Cheapest, pricing.FormatUSD(r.Option(r.Cheapest).Bill.Total))},
		Charts:      Charts(r),
		Assumptions: r.Assumptions,
	}
	sum := cost.Table{
		Title:   "Compute options",
		Header:  []string{"Compute", "Total", "Cold starts", "Spill-overs", "Throttles", "Instance-hours", "Peak instances", "Peak environments"},
		Numeric: []bool{false, true, true, true, true, true, true, true},
	}
	bill := cost.Table{Title: "Bills", Header: []string{"Compute", "Item", "Quantity", "Unit price", "USD"}, Numeric: []bool{false, false, true, true, true}}
	for i, o := range r.Options {
		sum.Rows = append(sum.Rows, []string{string(o.Compute), pricing.FormatUSD(o.Bill.Total), groupInt(o.ColdStarts), groupInt(o.SpillOvers),
			groupInt(o.Throttles), fmt.Sprintf("%.2f", o.InstanceHours), fmt.Sprint(o.PeakInstances), fmt.Sprint(o.PeakEnvironments)})
		if o.Compute == r.Cheapest {
			sum.Strong = append(sum.Strong, i)
		}
		for _, it := range o.Bill.Items {
			bill.Rows = append(bill.Rows, []string{string(o.Compute), it.Name, groupDec(it.Quantity) + " " + it.Unit, "$" + it.UnitPrice.String(), pricing.FormatUSD(it.USD)})
		}
	}
	p.Tables = []cost.Table{sum, bill}
	if len(r.ScalerActions) > 0 {
		p.Summary = append(p.Summary, "First scaler actions: "+strings.Join(r.ScalerActions, " · "))
	}
	return p
}

// WriteHTML writes the self-contained HTML report of a replay.
func WriteHTML(w io.Writer, r *Result) error { return Page(r).WriteHTML(w) }
