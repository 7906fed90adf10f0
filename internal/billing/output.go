package billing

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/cost/replay"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// Amount is money in `-o json`: rounded half-up to cents, and exact.
type Amount struct {
	USD   string `json:"usd"`       // "12.34"
	Exact string `json:"usd_exact"` // unrounded
}

func amount(d decimal.Decimal) Amount {
	return Amount{USD: pricing.RoundCents(d).StringFixed(2), Exact: d.String()}
}

// JSONItem is one bill line in `-o json`.
type JSONItem struct {
	Name      string `json:"name"`
	Quantity  string `json:"quantity"`
	Unit      string `json:"unit"`
	UnitPrice string `json:"unit_price"`
	Amount
}

// JSONBill is one compute type's bill in `-o json`.
type JSONBill struct {
	Compute cost.Compute `json:"compute"`
	Total   Amount       `json:"total"`
	Items   []JSONItem   `json:"items"`
}

func jsonBill(o cost.Option) JSONBill {
	b := JSONBill{Compute: o.Compute, Total: amount(o.Total), Items: []JSONItem{}}
	for _, it := range o.Items {
		b.Items = append(b.Items, JSONItem{Name: it.Name, Quantity: it.Quantity.String(), Unit: it.Unit,
			UnitPrice: it.UnitPrice.String(), Amount: amount(it.USD)})
	}
	return b
}

// JSONCheck is a predicted-against-metered comparison in `-o json`.
type JSONCheck struct {
	Compute    cost.Compute `json:"compute"`
	Metered    Amount       `json:"metered"`
	Predicted  Amount       `json:"predicted"`
	Against    string       `json:"against"`
	Agree      bool         `json:"agree"`
	How        string       `json:"how"`
	Replay     *Amount      `json:"replay,omitempty"`
	ReplayDiff *Amount      `json:"replay_minus_metered,omitempty"`
}

// JSONEstimate is one compute type of a what-if in `-o json`.
type JSONEstimate struct {
	JSONBill
	Ran           bool    `json:"ran"`
	Metered       *Amount `json:"metered,omitempty"`
	Throttles     uint64  `json:"throttles"`
	ColdStarts    uint64  `json:"cold_starts"`
	SpillOvers    uint64  `json:"spill_overs"`
	InstanceHours float64 `json:"instance_hours"`
	PeakInstances int     `json:"peak_instances"`
	Provisioned   int     `json:"provisioned,omitempty"`
}

// JSONWhatIf is a function's what-if in `-o json`.
type JSONWhatIf struct {
	Start          time.Time      `json:"start"`
	Step           string         `json:"step"`
	Steps          int            `json:"steps"`
	InitMs         float64        `json:"init_ms"`
	Estimates      []JSONEstimate `json:"estimates"`
	Cheapest       cost.Compute   `json:"cheapest"`
	Recommendation string         `json:"recommendation"`
	Assumptions    []string       `json:"assumptions"`
}

// JSONFunction is one function's bill in `-o json`.
type JSONFunction struct {
	Function             string         `json:"function"`
	Computes             []cost.Compute `json:"computes"`
	Architecture         string         `json:"architecture"`
	MemoryMB             int            `json:"memory_mb"`
	Invocations          int64          `json:"invocations"`
	ColdStarts           int64          `json:"cold_starts"`
	SpillOvers           int64          `json:"spill_overs"`
	BilledMs             int64          `json:"billed_ms"`
	DurationMs           float64        `json:"duration_ms"`
	CPUMs                float64        `json:"cpu_ms"`
	ProvisionedGBSeconds string         `json:"provisioned_gb_seconds"`
	Total                Amount         `json:"total"`
	Bills                []JSONBill     `json:"bills"`
	Checks               []JSONCheck    `json:"checks"`
	WhatIf               *JSONWhatIf    `json:"what_if,omitempty"`
	WhatIfNote           string         `json:"what_if_note,omitempty"`
}

// JSONInstanceUsage is one instance type's billed time in `-o json`.
type JSONInstanceUsage struct {
	Type    string `json:"type"`
	Seconds string `json:"seconds"`
	Hours   string `json:"hours"`
}

// JSONProvider is one capacity provider's bill in `-o json`.
type JSONProvider struct {
	Name      string              `json:"name"`
	Functions []string            `json:"functions"`
	Requests  int64               `json:"requests"`
	Instances int                 `json:"instances"`
	Usage     []JSONInstanceUsage `json:"usage"`
	Bill      JSONBill            `json:"bill"`
	// Fleet is the billed time by the fleet's record of its instances;
	// absent when the report had none.
	Fleet *JSONFleet `json:"fleet,omitempty"`
}

// JSONFleet is a capacity provider's billed time by the fleet's record, and
// whether the ledger agrees with it.
type JSONFleet struct {
	Instances int                 `json:"instances"`
	Usage     []JSONInstanceUsage `json:"usage"`
	Agree     bool                `json:"agree"`
}

// JSONReport is the document `shoal cost report -o json` prints.
type JSONReport struct {
	Catalog           cost.CatalogRef `json:"catalog"`
	Since             time.Time       `json:"since"`
	Until             time.Time       `json:"until"`
	Hours             string          `json:"hours"`
	Events            map[string]int  `json:"events"`
	Total             Amount          `json:"total"`
	Totals            []JSONBill      `json:"totals"`
	Functions         []JSONFunction  `json:"functions"`
	CapacityProviders []JSONProvider  `json:"capacity_providers"`
	Assumptions       []string        `json:"assumptions"`
	Warnings          []string        `json:"warnings"`
}

// JSON converts a report to the `-o json` document.
func (r *Report) JSON() JSONReport {
	out := JSONReport{
		Catalog: r.Catalog, Since: r.Since.UTC(), Until: r.Until.UTC(), Hours: r.Period.Hours.String(),
		Events: map[string]int{"invocation": r.Invocations, "provisioned": r.ProvisionedSegments, "instance": r.InstanceSegments},
		Total:  amount(r.Total), Totals: []JSONBill{}, Functions: []JSONFunction{}, CapacityProviders: []JSONProvider{},
		Assumptions: r.Assumptions, Warnings: r.Warnings,
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, o := range r.Totals {
		out.Totals = append(out.Totals, jsonBill(o))
	}
	for _, f := range r.Functions {
		jf := JSONFunction{
			Function: f.Function, Computes: f.Computes, Architecture: string(f.Architecture), MemoryMB: f.MemoryMB,
			Invocations: f.Invocations, ColdStarts: f.ColdStarts, SpillOvers: f.SpillOvers, BilledMs: f.BilledMs,
			DurationMs: f.DurationMs, CPUMs: f.CPUMs, ProvisionedGBSeconds: f.ProvisionedGBSeconds.String(),
			Total: amount(f.Total), Bills: []JSONBill{}, Checks: []JSONCheck{}, WhatIfNote: f.WhatIfNote,
		}
		if jf.Computes == nil {
			jf.Computes = []cost.Compute{}
		}
		for _, o := range f.Bills {
			jf.Bills = append(jf.Bills, jsonBill(o))
		}
		for _, c := range f.Checks {
			jc := JSONCheck{Compute: c.Compute, Metered: amount(c.Metered), Predicted: amount(c.Predicted), Against: c.Against, Agree: c.Agree(), How: c.How}
			if c.Replay != nil {
				a, d := amount(*c.Replay), amount(c.ReplayDiff())
				jc.Replay, jc.ReplayDiff = &a, &d
			}
			jf.Checks = append(jf.Checks, jc)
		}
		if w := f.WhatIf; w != nil {
			jw := &JSONWhatIf{Start: w.Start.UTC(), Step: w.Step.String(), Steps: w.Steps, InitMs: w.InitMs,
				Cheapest: w.Cheapest, Recommendation: w.Recommendation, Assumptions: w.Assumptions}
			for _, e := range w.Estimates {
				je := JSONEstimate{JSONBill: jsonBill(e.Bill), Ran: e.Ran, Throttles: e.Throttles, ColdStarts: e.ColdStarts,
					SpillOvers: e.SpillOvers, InstanceHours: e.InstanceHours, PeakInstances: e.PeakInstances, Provisioned: e.Provisioned}
				je.Compute = e.Compute
				if e.Ran {
					m := amount(e.Metered)
					je.Metered = &m
				}
				jw.Estimates = append(jw.Estimates, je)
			}
			jf.WhatIf = jw
		}
		out.Functions = append(out.Functions, jf)
	}
	for _, p := range r.CapacityProviders {
		jp := JSONProvider{Name: p.Name, Functions: p.Functions, Requests: p.Requests, Instances: p.Instances,
			Usage: []JSONInstanceUsage{}, Bill: jsonBill(p.Bill)}
		if jp.Functions == nil {
			jp.Functions = []string{}
		}
		for _, u := range p.Usage {
			jp.Usage = append(jp.Usage, JSONInstanceUsage{Type: u.Type, Seconds: u.Seconds.String(), Hours: u.Hours().String()})
		}
		if p.Fleet != nil {
			jp.Fleet = &JSONFleet{Instances: p.Fleet.Instances, Usage: []JSONInstanceUsage{}, Agree: p.FleetAgrees()}
			for _, u := range p.Fleet.Usage {
				jp.Fleet.Usage = append(jp.Fleet.Usage, JSONInstanceUsage{Type: u.Type, Seconds: u.Seconds.String(), Hours: u.Hours().String()})
			}
		}
		out.CapacityProviders = append(out.CapacityProviders, jp)
	}
	return out
}

// WriteJSON writes the `-o json` document, indented.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}

func newTable(w io.Writer, align ...tw.Align) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(tw.Alignment(align)),
	)
}

func qty(it cost.Item) string {
	switch {
	case it.Unit == "share":
		return it.Quantity.Shift(2).Round(2).String() + " %"
	case it.Unit == "requests" && it.Quantity.Equal(decimal.NewFromInt(1)):
		return "1 request"
	}
	return cost.GroupThousands(it.Quantity.Round(2).String()) + " " + it.Unit
}

func (r *Report) heading() string {
	return fmt.Sprintf("usage from %s to %s (%s h): %d invocations, %d provisioned and %d instance segments",
		r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339), r.Period.Hours.Round(2).String(),
		r.Invocations, r.ProvisionedSegments, r.InstanceSegments)
}

func (f *FunctionBill) configuration() string {
	s := fmt.Sprintf("%d MB %s, %s", f.MemoryMB, f.Architecture, plural(f.Invocations, "invocation"))
	if f.ColdStarts > 0 {
		s += ", " + plural(f.ColdStarts, "cold start")
	}
	if f.SpillOvers > 0 {
		s += ", " + plural(f.SpillOvers, "spill-over")
	}
	return s
}

func computes(cs []cost.Compute) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, " + ")
}

// WriteTable writes the report for a terminal: totals per compute type, per
// function and per capacity provider, every bill line, the predicted-against-
// metered checks, each function's what-if and the assumptions.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintln(w, r.heading())
	fmt.Fprintf(w, "prices: catalogue %s dated %s (%s, %s)\n\n", r.Catalog.Version, r.Catalog.Date, r.Catalog.Region, r.Catalog.Currency)

	t := newTable(w, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight)
	t.Header("FUNCTION / CAPACITY PROVIDER", "COMPUTE", "USAGE", "TOTAL")
	for _, f := range r.Functions {
		if err := t.Append(f.Function, computes(f.Computes), f.configuration(), usd(f.Total)); err != nil {
			return err
		}
	}
	for _, p := range r.CapacityProviders {
		var use []string
		for _, u := range p.Usage {
			use = append(use, u.Hours().Round(4).String()+" h "+u.Type)
		}
		if err := t.Append("provider "+p.Name, string(cost.ManagedInstances),
			fmt.Sprintf("%s, %s; %s", plural(int64(p.Instances), "instance"), strings.Join(use, ", "), plural(p.Requests, "request")), usd(p.Bill.Total)); err != nil {
			return err
		}
	}
	for _, o := range r.Totals {
		if err := t.Append("all", string(o.Compute), "", usd(o.Total)); err != nil {
			return err
		}
	}
	if err := t.Append("TOTAL", "", "", usd(r.Total)); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(r.CapacityProviders) > 0 {
		fmt.Fprintln(w, "(a Managed Instances function's total includes its share of its capacity provider; TOTAL is the sum of the \"all\" rows)")
	}

	fmt.Fprintln(w)
	b := newTable(w, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight)
	b.Header("BILL", "COMPUTE", "ITEM", "QUANTITY", "UNIT PRICE", "USD")
	lines := func(who string, o cost.Option) error {
		for _, it := range o.Items {
			if err := b.Append(who, string(o.Compute), it.Name, qty(it), unitPrice(it), usd(it.USD)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range r.Functions {
		for _, o := range f.Bills {
			if err := lines(f.Function, o); err != nil {
				return err
			}
		}
	}
	for _, p := range r.CapacityProviders {
		if err := lines("provider "+p.Name, p.Bill); err != nil {
			return err
		}
	}
	for _, o := range r.Totals {
		if err := lines("all", o); err != nil {
			return err
		}
	}
	if err := b.Render(); err != nil {
		return err
	}
	for _, p := range r.CapacityProviders {
		if p.Fleet != nil {
			fmt.Fprintf(w, "\nprovider %s — %s\n", p.Name, p.fleetSentence())
		}
	}

	for _, f := range r.Functions {
		fmt.Fprintf(w, "\n%s — what the same traffic would have cost\n", f.Function)
		for _, c := range f.Checks {
			fmt.Fprintf(w, "  %s\n", c.sentence())
		}
		if f.WhatIf == nil {
			if f.WhatIfNote != "" {
				fmt.Fprintf(w, "  no what-if: %s\n", f.WhatIfNote)
			}
			continue
		}
		fmt.Fprintf(w, "  replayed from %s over %d steps of %v:\n", f.WhatIf.Start.UTC().Format(time.RFC3339), f.WhatIf.Steps, f.WhatIf.Step)
		e := newTable(w, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight)
		e.Header("COMPUTE", "REPLAYED", "METERED", "COLD STARTS", "SPILL-OVERS", "THROTTLES", "INSTANCE-HOURS")
		for _, x := range f.WhatIf.Estimates {
			name, metered := string(x.Compute), ""
			if x.Compute == f.WhatIf.Cheapest {
				name += " *"
			}
			if x.Ran {
				metered = fine(x.Metered)
			}
			if err := e.Append(name, fine(x.Bill.Total), metered, fmt.Sprint(x.ColdStarts), fmt.Sprint(x.SpillOvers),
				fmt.Sprint(x.Throttles), fmt.Sprintf("%.2f", x.InstanceHours)); err != nil {
				return err
			}
		}
		if err := e.Render(); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", f.WhatIf.Recommendation)
	}
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

// fleetSentence states the capacity provider's instance-time check in words.
func (p ProviderBill) fleetSentence() string {
	s := fmt.Sprintf("billed instance time: metered %s s on %s, the fleet's launch and terminate times %s s on %s",
		cost.GroupThousands(p.MeteredSeconds().String()), plural(int64(p.Instances), "instance"),
		cost.GroupThousands(p.FleetSeconds().String()), plural(int64(p.Fleet.Instances), "instance"))
	if p.FleetAgrees() {
		return s + " (agree)"
	}
	return s + fmt.Sprintf(" (differ by %s s)", p.FleetSeconds().Sub(p.MeteredSeconds()).String())
}

// sentence states a check in words.
func (c Check) sentence() string {
	s := fmt.Sprintf("%s: metered $%s, %s $%s", c.Compute, exact(c.Metered), c.Against, exact(c.Predicted))
	if c.Agree() {
		s += " (agree)"
	} else {
		s += fmt.Sprintf(" (differ by $%s)", c.Predicted.Sub(c.Metered).String())
	}
	if c.Replay != nil {
		s += fmt.Sprintf("; the replay's model estimates %s (%s)", fine(*c.Replay), signedFine(c.ReplayDiff()))
	}
	return s
}

func signedFine(d decimal.Decimal) string {
	if d.IsNegative() {
		return fine(d)
	}
	return "+" + fine(d)
}

// exact shows an unrounded amount to 1e-10 dollars.
func exact(d decimal.Decimal) string { return d.Round(10).String() }

// unitPrice shows a unit price as the catalogue has it, or, for a share of a
// capacity provider, the provider's instance cost.
func unitPrice(it cost.Item) string {
	if it.Unit == "share" {
		return money(it.UnitPrice)
	}
	return "$" + it.UnitPrice.String()
}

// money shows an amount in cents from a dollar up, and finer below.
func money(d decimal.Decimal) string {
	if d.Abs().GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return usd(d)
	}
	return fine(d)
}

// fine shows an amount to a hundredth of a cent (to a ten-thousandth below
// a cent), so that the small bills of a short period still compare.
func fine(d decimal.Decimal) string {
	places := int32(4)
	if d.Abs().LessThan(decimal.New(1, -2)) {
		places = 6
	}
	s := d.Round(places).StringFixed(places)
	if strings.HasPrefix(s, "-") {
		return "-$" + cost.GroupThousands(s[1:])
	}
	return "$" + cost.GroupThousands(s)
}

// Page builds the self-contained HTML report: the totals, each function's
// what-if, every bill line and the assumptions.
func Page(r *Report) cost.Page {
	p := cost.Page{
		Title: "shoal cost report",
		Subtitle: fmt.Sprintf("%s to %s — prices %s dated %s, %s", r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339),
			r.Catalog.Version, r.Catalog.Date, r.Catalog.Region),
		Summary:     []string{fmt.Sprintf("Total for the period: %s.", usd(r.Total))},
		Warnings:    r.Warnings,
		Assumptions: r.Assumptions,
	}
	totals := cost.Table{Title: "Totals", Header: []string{"Function / capacity provider", "Compute", "Usage", "USD"}, Numeric: []bool{false, false, false, true}}
	for _, f := range r.Functions {
		totals.Rows = append(totals.Rows, []string{f.Function, computes(f.Computes), f.configuration(), usd(f.Total)})
	}
	for _, pb := range r.CapacityProviders {
		totals.Rows = append(totals.Rows, []string{"provider " + pb.Name, string(cost.ManagedInstances), fmt.Sprintf("%s, %s", plural(int64(pb.Instances), "instance"), plural(pb.Requests, "request")), usd(pb.Bill.Total)})
	}
	for _, o := range r.Totals {
		totals.Rows = append(totals.Rows, []string{"all", string(o.Compute), "", usd(o.Total)})
	}
	totals.Rows = append(totals.Rows, []string{"Total", "", "", usd(r.Total)})
	totals.Strong = []int{len(totals.Rows) - 1}
	p.Tables = append(p.Tables, totals)
	for _, pb := range r.CapacityProviders {
		if pb.Fleet != nil {
			p.Summary = append(p.Summary, "Provider "+pb.Name+" — "+pb.fleetSentence()+".")
		}
	}
	for _, f := range r.Functions {
		for _, c := range f.Checks {
			p.Summary = append(p.Summary, f.Function+" — "+c.sentence()+".")
		}
		if f.WhatIf == nil {
			continue
		}
		p.Summary = append(p.Summary, f.Function+": "+f.WhatIf.Recommendation)
		if f.WhatIf.Replay != nil && len(f.WhatIf.Replay.Series) > 1 {
			ch := replay.Charts(f.WhatIf.Replay)[0]
			ch.Title = f.Function + ": cumulative cost of the recorded traffic, replayed on each compute type"
			p.Charts = append(p.Charts, ch)
		}
		t := cost.Table{Title: f.Function + ": what the same traffic would have cost",
			Header:  []string{"Compute", "Replayed", "Metered", "Cold starts", "Spill-overs", "Throttles", "Instance-hours"},
			Numeric: []bool{false, true, true, true, true, true, true}}
		for i, x := range f.WhatIf.Estimates {
			metered := ""
			if x.Ran {
				metered = fine(x.Metered)
			}
			t.Rows = append(t.Rows, []string{string(x.Compute), fine(x.Bill.Total), metered, fmt.Sprint(x.ColdStarts),
				fmt.Sprint(x.SpillOvers), fmt.Sprint(x.Throttles), fmt.Sprintf("%.2f", x.InstanceHours)})
			if x.Compute == f.WhatIf.Cheapest {
				t.Strong = append(t.Strong, i)
			}
		}
		p.Tables = append(p.Tables, t)
	}
	items := cost.Table{Title: "Bill lines", Header: []string{"Bill", "Compute", "Item", "Quantity", "Unit price", "USD"},
		Numeric: []bool{false, false, false, true, true, true}}
	add := func(who string, o cost.Option) {
		for _, it := range o.Items {
			items.Rows = append(items.Rows, []string{who, string(o.Compute), it.Name, qty(it), unitPrice(it), usd(it.USD)})
		}
	}
	for _, f := range r.Functions {
		for _, o := range f.Bills {
			add(f.Function, o)
		}
	}
	for _, pb := range r.CapacityProviders {
		add("provider "+pb.Name, pb.Bill)
	}
	for _, o := range r.Totals {
		add("all", o)
	}
	p.Tables = append(p.Tables, items)
	return p
}

// WriteHTML writes the self-contained HTML report.
func WriteHTML(w io.Writer, r *Report) error { return Page(r).WriteHTML(w) }

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return cost.GroupThousands(fmt.Sprint(n)) + " " + what + "s"
}
