package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// JSONTrace describes the replayed trace in `-o json`.
type JSONTrace struct {
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Step        string    `json:"step"`
	Steps       int       `json:"steps"`
	Functions   int       `json:"functions"`
	Invocations uint64    `json:"invocations"`
	MemoryMB    int       `json:"memory_mb"`
	Hours       float64   `json:"hours"`
}

// JSONOption is one compute option in `-o json`.
type JSONOption struct {
	Compute          cost.Compute    `json:"compute"`
	TotalUSD         cost.USD        `json:"total_usd"`
	TotalExact       string          `json:"total_usd_exact"`
	Items            []cost.JSONItem `json:"items"`
	Invocations      uint64          `json:"invocations"`
	Throttles        uint64          `json:"throttles"`
	ColdStarts       uint64          `json:"cold_starts"`
	SpillOvers       uint64          `json:"spill_overs"`
	InstanceHours    float64         `json:"instance_hours"`
	PeakInstances    int             `json:"peak_instances"`
	PeakEnvironments int             `json:"peak_environments"`
	Provisioned      int             `json:"provisioned,omitempty"`
}

// JSONPoint is one time-series point in `-o json`.
type JSONPoint struct {
	Time            time.Time          `json:"t"`
	Invocations     uint64             `json:"invocations"`
	Concurrency     float64            `json:"concurrency"`
	CostUSD         map[string]float64 `json:"cost_usd"`
	Instances       int                `json:"instances"`
	HybridInstances int                `json:"hybrid_instances"`
	Throttles       float64            `json:"throttles"`
	OnDemandEnvs    int                `json:"on_demand_environments"`
}

// JSONResult is the document `shoal cost replay -o json` prints.
type JSONResult struct {
	Trace         JSONTrace    `json:"trace"`
	Options       []JSONOption `json:"options"`
	Cheapest      cost.Compute `json:"cheapest"`
	Assumptions   []string     `json:"assumptions"`
	ScalerActions []string     `json:"scaler_actions"`
	Bucket        string       `json:"bucket"`
	Series        []JSONPoint  `json:"series"`
}

// JSON converts a result to the `-o json` document.
func (r *Result) JSON() JSONResult {
	out := JSONResult{
		Trace: JSONTrace{
			Start: r.Start, End: r.Start.Add(time.Duration(r.Steps) * r.Step), Step: r.Step.String(), Steps: r.Steps,
			Functions: r.Functions, Invocations: r.Invocations, MemoryMB: r.MemoryMB,
			Hours: r.Period.Hours.InexactFloat64(),
		},
		Cheapest: r.Cheapest, Assumptions: r.Assumptions, ScalerActions: r.ScalerActions,
		Bucket: r.Bucket.String(), Series: []JSONPoint{},
	}
	if out.ScalerActions == nil {
		out.ScalerActions = []string{}
	}
	for _, o := range r.Options {
		jo := JSONOption{
			Compute: o.Compute, TotalUSD: cost.USD(o.Bill.Total), TotalExact: o.Bill.Total.String(), Items: []cost.JSONItem{},
			Invocations: o.Invocations, Throttles: o.Throttles, ColdStarts: o.ColdStarts, SpillOvers: o.SpillOvers,
			InstanceHours: round(o.InstanceHours, 4), PeakInstances: o.PeakInstances, PeakEnvironments: o.PeakEnvironments,
			Provisioned: o.Provisioned,
		}
		for _, it := range o.Bill.Items {
			jo.Items = append(jo.Items, cost.JSONItem{
				Name: it.Name, USD: cost.USD(it.USD), Exact: it.USD.String(),
				Quantity: it.Quantity.String(), Unit: it.Unit, UnitPrice: it.UnitPrice.String(),
			})
		}
		out.Options = append(out.Options, jo)
	}
	for _, p := range r.Series {
		jp := JSONPoint{
			Time: p.Time, Invocations: p.Invocations, Concurrency: round(p.Concurrency, 3),
			CostUSD: map[string]float64{}, Instances: p.Instances, HybridInstances: p.HybridInstances,
			Throttles: round(p.Throttles, 1), OnDemandEnvs: p.OnDemandEnvs,
		}
		for i, o := range r.Options {
			jp.CostUSD[string(o.Compute)] = round(p.Cost[i], 6)
		}
		out.Series = append(out.Series, jp)
	}
	return out
}

func round(f float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(f*p) / p
}

// WriteJSON writes the `-o json` document, indented.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}

func (r *Result) heading() string {
	return fmt.Sprintf("%s invocations of %d function(s) over %v from %s, in %v steps; %d MB",
		groupInt(r.Invocations), r.Functions, time.Duration(r.Steps)*r.Step, r.Start.Format(time.RFC3339), r.Step, r.MemoryMB)
}

// WriteTable writes the replay for a terminal: totals and behaviour per option,
// every bill line, the scaler's first actions and the assumptions.
func WriteTable(w io.Writer, r *Result) error {
	fmt.Fprintln(w, r.heading())
	fmt.Fprintln(w)
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight}),
	)
	t.Header("COMPUTE", "TOTAL", "COLD STARTS", "SPILL-OVERS", "THROTTLES", "INSTANCE-HOURS", "PEAK INSTANCES", "PEAK ENVS")
	for _, o := range r.Options {
		name := string(o.Compute)
		if o.Compute == r.Cheapest {
			name += " *"
		}
		if err := t.Append(name, pricing.FormatUSD(o.Bill.Total), groupInt(o.ColdStarts), groupInt(o.SpillOvers), groupInt(o.Throttles),
			fmt.Sprintf("%.2f", o.InstanceHours), fmt.Sprint(o.PeakInstances), fmt.Sprint(o.PeakEnvironments)); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	b := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight}),
	)
	b.Header("COMPUTE", "ITEM", "QUANTITY", "UNIT PRICE", "USD")
	for _, o := range r.Options {
		for _, it := range o.Bill.Items {
			if err := b.Append(string(o.Compute), it.Name, groupDec(it.Quantity)+" "+it.Unit, "$"+it.UnitPrice.String(), pricing.FormatUSD(it.USD)); err != nil {
				return err
			}
		}
	}
	if err := b.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncheapest: %s\n", r.Cheapest)
	if len(r.ScalerActions) > 0 {
		fmt.Fprintln(w, "\nfirst scaler actions (Managed Instances):")
		for _, a := range r.ScalerActions {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
	fmt.Fprintln(w, "\nassumptions:")
	for _, a := range r.Assumptions {
		fmt.Fprintf(w, "  - %s\n", a)
	}
	return nil
}

func groupInt(n uint64) string { return groupDec(decimal.NewFromUint64(n)) }

func groupDec(d decimal.Decimal) string { return cost.GroupThousands(d.Round(2).String()) }
