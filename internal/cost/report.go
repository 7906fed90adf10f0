package cost

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// USD is an amount rounded half-up to cents that marshals as a JSON number (30.53).
type USD decimal.Decimal

// MarshalJSON writes the amount as a number with two decimals.
func (u USD) MarshalJSON() ([]byte, error) {
	return []byte(pricing.RoundCents(decimal.Decimal(u)).StringFixed(2)), nil
}

// JSONItem is one bill line in `-o json`.
type JSONItem struct {
	Name      string `json:"name"`
	USD       USD    `json:"usd"`
	Exact     string `json:"usd_exact"`
	Quantity  string `json:"quantity"`
	Unit      string `json:"unit"`
	UnitPrice string `json:"unit_price"`
}

// JSONOption is one compute type in `-o json`.
type JSONOption struct {
	Compute       Compute    `json:"compute"`
	TotalUSD      USD        `json:"total_usd"`
	TotalExact    string     `json:"total_usd_exact"`
	Items         []JSONItem `json:"items"`
	Unavailable   string     `json:"unavailable,omitempty"`
	Provisioned   *int       `json:"provisioned,omitempty"`
	SpillFraction *float64   `json:"spill_fraction,omitempty"`
	InstanceType  string     `json:"instance_type,omitempty"`
	Instances     *int       `json:"instances,omitempty"`
}

// JSONResult is the document `shoal cost compare -o json` prints.
type JSONResult struct {
	Catalog        CatalogRef   `json:"catalog"`
	Workload       JSONWorkload `json:"workload"`
	Period         JSONPeriod   `json:"period"`
	Options        []JSONOption `json:"options"`
	BreakEvenRPS   *json.Number `json:"break_even_rps"`
	Cheapest       Compute      `json:"cheapest"`
	Recommendation string       `json:"recommendation"`
	Assumptions    []string     `json:"assumptions"`
	Warnings       []string     `json:"warnings"`
	Sizing         JSONSizing   `json:"sizing"`
}

// JSONWorkload echoes the workload with its defaults.
type JSONWorkload struct {
	RateRPS    json.Number `json:"rate_rps"`
	Requests   json.Number `json:"requests"`
	DurationMs json.Number `json:"duration_ms"`
	BilledMs   int64       `json:"billed_ms"`
	CPUTimeMs  json.Number `json:"cpu_time_ms"`
	MemoryMB   int64       `json:"memory_mb"`
	Arch       string      `json:"arch"`
	Runtime    string      `json:"runtime"`
}

// JSONPeriod names the billing period.
type JSONPeriod struct {
	Name  string      `json:"name"`
	Hours json.Number `json:"hours"`
}

// JSONSizing explains the sized fleet and provisioned level.
type JSONSizing struct {
	ManagedInstances struct {
		InstanceType      string      `json:"instance_type"`
		Instances         int         `json:"instances"`
		Sized             bool        `json:"sized"`
		NeededInstances   int         `json:"needed_instances"`
		CarriesLoad       bool        `json:"carries_load"`
		Binding           string      `json:"binding"`
		EnvVCPU           int         `json:"environment_vcpu"`
		EnvMemoryGiB      int         `json:"environment_memory_gib"`
		EnvConcurrency    int         `json:"environment_concurrency"`
		Environments      int         `json:"environments"`
		Concurrency       json.Number `json:"concurrency"`
		VCPUDemand        json.Number `json:"vcpu_demand"`
		TargetUtilization json.Number `json:"target_utilization"`
		Utilization       float64     `json:"expected_utilization"`
	} `json:"managed_instances"`
	ProvisionedConcurrency struct {
		Provisioned   int     `json:"provisioned"`
		Sized         bool    `json:"sized"`
		OfferedLoad   float64 `json:"offered_load"`
		SpillFraction float64 `json:"spill_fraction"`
		SpillTarget   float64 `json:"spill_target"`
		Utilization   float64 `json:"utilization"`
	} `json:"provisioned_concurrency"`
}

func msNumber(d time.Duration) json.Number {
	return json.Number(decimal.NewFromInt(int64(d)).Div(decimal.NewFromInt(int64(time.Millisecond))).String())
}

// JSON converts a result to the `-o json` document.
func (r *Result) JSON() JSONResult {
	w := r.Workload
	out := JSONResult{
		Catalog: r.Catalog,
		Workload: JSONWorkload{
			RateRPS:    json.Number(num(r.Rate)),
			Requests:   json.Number(r.Requests.Round(4).String()),
			DurationMs: msNumber(w.Duration),
			BilledMs:   r.BilledMs,
			CPUTimeMs:  msNumber(w.CPUTime),
			MemoryMB:   w.MemoryMB,
			Arch:       string(w.Arch),
			Runtime:    w.Runtime,
		},
		Period:         JSONPeriod{Name: r.Period.String(), Hours: json.Number(r.Period.Hours.String())},
		Cheapest:       r.Cheapest,
		Recommendation: r.Recommendation,
		Assumptions:    r.Assumptions,
		Warnings:       r.Warnings,
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if r.BreakEvenRPS != nil {
		n := json.Number(r.BreakEvenRPS.Round(2).StringFixed(2))
		out.BreakEvenRPS = &n
	}
	for _, o := range r.Options {
		jo := JSONOption{Compute: o.Compute, TotalUSD: USD(o.Total), TotalExact: exact(o.Total), Items: []JSONItem{}, Unavailable: o.Unavailable}
		for _, it := range o.Items {
			jo.Items = append(jo.Items, JSONItem{
				Name: it.Name, USD: USD(it.USD), Exact: exact(it.USD),
				Quantity: exact(it.Quantity), Unit: it.Unit, UnitPrice: it.UnitPrice.String(),
			})
		}
		switch o.Compute {
		case Provisioned:
			p, s := o.Provisioned, o.SpillFraction
			jo.Provisioned, jo.SpillFraction = &p, &s
		case ManagedInstances:
			n := o.Instances
			jo.InstanceType, jo.Instances = o.InstanceType, &n
		}
		out.Options = append(out.Options, jo)
	}
	f := r.Fleet
	mi := &out.Sizing.ManagedInstances
	mi.InstanceType, mi.Instances, mi.Sized = f.Type.Name, f.Instances, f.Sized
	mi.NeededInstances, mi.CarriesLoad, mi.Binding = f.NeededInstances, f.CarriesLoad(), f.Binding
	mi.EnvVCPU, mi.EnvMemoryGiB, mi.EnvConcurrency, mi.Environments = f.Env.VCPU, f.Env.MemoryGiB, f.Env.Concurrency, f.Environments
	mi.Concurrency = json.Number(num(f.Concurrency))
	mi.VCPUDemand = json.Number(num(f.VCPUDemand))
	mi.TargetUtilization = json.Number(f.TargetUtilization.String())
	mi.Utilization = round4(f.Utilization())
	pc := &out.Sizing.ProvisionedConcurrency
	p := r.Provisioned
	pc.Provisioned, pc.Sized, pc.OfferedLoad = p.Provisioned, p.Sized, round4(p.OfferedLoad)
	pc.SpillFraction, pc.SpillTarget, pc.Utilization = round6(p.SpillFraction), p.SpillTarget, round4(p.Utilization)
	return out
}

// WriteJSON writes the `-o json` document, indented.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}

// WriteTable writes the comparison for a terminal: one table of bill lines and totals,
// then the break-even, the recommendation, the warnings and every assumption.
func WriteTable(w io.Writer, r *Result) error {
	wl := r.Workload
	fmt.Fprintf(w, "%s req/s, %s per invocation (%s CPU), %d MB, %s — cost per %s\n",
		num(r.Rate), wl.Duration, wl.CPUTime, wl.MemoryMB, wl.Arch, r.Period)
	fmt.Fprintf(w, "prices: catalogue %s dated %s (%s, %s)\n\n", r.Catalog.Version, r.Catalog.Date, r.Catalog.Region, r.Catalog.Currency)

	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight}),
	)
	t.Header("COMPUTE", "ITEM", "QUANTITY", "UNIT PRICE", "USD")
	for _, o := range r.Options {
		if o.Unavailable != "" {
			continue
		}
		for _, it := range o.Items {
			if err := t.Append(string(o.Compute), it.Name, qty(it), "$"+it.UnitPrice.String(), pricing.FormatUSD(it.USD)); err != nil {
				return err
			}
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	s := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight}),
	)
	s.Header("COMPUTE", "CONFIGURATION", "TOTAL per "+r.Period.String())
	for _, o := range r.Options {
		mark := ""
		if o.Compute == r.Cheapest {
			mark = " *"
		}
		if err := s.Append(string(o.Compute)+mark, configuration(r, o), optionUSD(o)); err != nil {
			return err
		}
	}
	if err := s.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	od, _ := r.Option(OnDemand)
	switch {
	case od.Unavailable != "":
		fmt.Fprintf(w, "break-even: none (%s)\n", od.Unavailable)
	case r.BreakEvenRPS != nil:
		fmt.Fprintf(w, "break-even: %s req/s (on-demand vs %d × %s)\n", r.BreakEvenRPS.Round(2).StringFixed(2), r.Fleet.Instances, r.Fleet.Type.Name)
	default:
		fmt.Fprintf(w, "break-even: none (on-demand stays cheaper than %d × %s)\n", r.Fleet.Instances, r.Fleet.Type.Name)
	}
	fmt.Fprintf(w, "cheapest:   %s\n", r.Cheapest)
	fmt.Fprintf(w, "\n%s\n", r.Recommendation)
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, x := range r.Warnings {
			fmt.Fprintf(w, "  ! %s\n", x)
		}
	}
	fmt.Fprintln(w, "\nassumptions:")
	for _, a := range r.Assumptions {
		fmt.Fprintf(w, "  - %s\n", a)
	}
	return nil
}

// optionUSD is an option's total as the tables show it: a dash for one that
// cannot run the workload.
func optionUSD(o Option) string {
	if o.Unavailable != "" {
		return "—"
	}
	return pricing.FormatUSD(o.Total)
}

func configuration(r *Result, o Option) string {
	if o.Unavailable != "" {
		return "not available: " + o.Unavailable
	}
	switch o.Compute {
	case Provisioned:
		return fmt.Sprintf("%d provisioned, %s %% spill-over", o.Provisioned, fmtPct(o.SpillFraction))
	case ManagedInstances:
		return fmt.Sprintf("%d × %s", o.Instances, o.InstanceType)
	}
	return fmt.Sprintf("%d MB, %d ms billed", r.Workload.MemoryMB, r.BilledMs)
}

func qty(it Item) string {
	return GroupThousands(it.Quantity.Round(2).String()) + " " + it.Unit
}

// GroupThousands puts a comma between each three digits of a decimal
// number's integer part: "-1234567.5" → "-1,234,567.5".
func GroupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

func round4(f float64) float64 {
	v, _ := decimal.NewFromFloat(f).Round(4).Float64()
	return v
}

func round6(f float64) float64 {
	v, _ := decimal.NewFromFloat(f).Round(6).Float64()
	return v
}

// exact prints an unrounded amount for machines, trimmed to 10 decimal places (far below
// a cent; the probabilities behind spill-over are not exact to more anyway).
func exact(d decimal.Decimal) string { return d.Round(10).String() }
