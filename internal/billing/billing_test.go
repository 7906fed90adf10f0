package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// ledger builds synthetic usage events the way the control plane records them.
type ledger struct {
	events []meter.Event
	n      int
}

// invoke records one invocation that starts at start, runs d, and carries an
// init of initD (0 for a warm one). Billing follows the agent: an on-demand
// invocation bills its duration plus its init, rounded up to the millisecond.
func (l *ledger) invoke(fn, version, compute string, memMB int, start time.Time, d, initD, cpu time.Duration) *meter.Event {
	l.n++
	billed := d
	if compute == meter.OnDemand {
		billed += initD
	}
	ms := max((billed+time.Millisecond-1)/time.Millisecond, 1)
	id := fmt.Sprintf("req-%d", l.n)
	ev := &meter.Event{ID: "inv-" + id, Kind: meter.KindInvocation, Start: start, End: start.Add(d),
		Function: fn, Version: version, Compute: compute, Architecture: "x86_64", MemoryMB: memMB,
		RequestID: id, DurationMs: meter.Ms(d), InitMs: meter.Ms(initD), CPUMs: meter.Ms(cpu),
		Outcome: meter.OutcomeSuccess}
	if compute != meter.ManagedInstances {
		ev.BilledMs = int64(ms)
	}
	l.events = append(l.events, *ev)
	return &l.events[len(l.events)-1]
}

func (l *ledger) provisioned(fn, version string, n, memMB int, start, end time.Time) {
	l.n++
	l.events = append(l.events, meter.Event{
		ID: fmt.Sprintf("pc-%d", l.n), Kind: meter.KindProvisioned, Start: start, End: end,
		Function: fn, Version: version, Qualifier: "live", Compute: meter.Provisioned,
		Architecture: "x86_64", MemoryMB: memMB, Concurrency: n,
	})
}

func (l *ledger) instance(cp, id, typ, state string, start, end time.Time) {
	l.n++
	l.events = append(l.events, meter.Event{
		ID: fmt.Sprintf("inst-%d", l.n), Kind: meter.KindInstance, Start: start, End: end,
		CapacityProvider: cp, Instance: id, InstanceType: typ, Zone: "us-east-1a", State: state,
	})
}

func hour() Options { return Options{Since: t0, Until: t0.Add(time.Hour)} }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func gbs(ms int64, memMB int) decimal.Decimal {
	return decimal.NewFromInt(ms * int64(memMB)).Div(decimal.NewFromInt(1024 * 1000))
}

// TestPredictedEqualsMetered checks that for on-demand and Provisioned
// Concurrency the bill the cost engine predicts from the recorded durations is
// the metered bill to the last digit, and that both are the bill worked out by
// hand from the invocations.
func TestPredictedEqualsMetered(t *testing.T) {
	cat := pricing.Default()
	rates, _ := cat.Rates(pricing.X86_64)
	rng := rand.New(rand.NewPCG(1, 2))
	var l ledger

	// On-demand, at a memory size whose GB-seconds have many decimals.
	const odMem = 1000
	var odMs int64
	for i := range 200 {
		d := time.Duration(rng.Int64N(int64(300*time.Millisecond))) + 1
		var initD time.Duration
		if i%50 == 0 {
			initD = time.Duration(rng.Int64N(int64(400 * time.Millisecond)))
		}
		ev := l.invoke("od", "$LATEST", meter.OnDemand, odMem, t0.Add(time.Duration(i)*10*time.Second), d, initD, d/3)
		odMs += ev.BilledMs
	}

	// Provisioned Concurrency: 2 environments of 768 MB for 40 minutes, with
	// invocations on them and spill-over while they were allocated, and one
	// on-demand invocation of the same version after.
	const pcMem = 768
	l.provisioned("pc", "3", 2, pcMem, t0.Add(10*time.Minute), t0.Add(50*time.Minute))
	var pcMs, spillMs int64
	for i := range 100 {
		at := t0.Add(10*time.Minute + time.Duration(i)*20*time.Second)
		d := time.Duration(rng.Int64N(int64(2*time.Second))) + 1
		if i%10 == 9 {
			ev := l.invoke("pc", "3", meter.OnDemand, pcMem, at, d, 250*time.Millisecond+time.Duration(i), d)
			spillMs += ev.BilledMs
			continue
		}
		ev := l.invoke("pc", "3", meter.Provisioned, pcMem, at, d, 0, d)
		pcMs += ev.BilledMs
	}
	after := l.invoke("pc", "3", meter.OnDemand, pcMem, t0.Add(55*time.Minute), 1500*time.Microsecond, 0, 0)

	r, err := Build(l.events, cat, hour())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Functions {
		for _, c := range f.Checks {
			if !c.Agree() {
				t.Errorf("%s on %s: predicted %s, metered %s", f.Function, c.Compute, c.Predicted, c.Metered)
			}
		}
	}

	req := cat.Lambda.RequestPerMillion.Div(decimal.NewFromInt(1_000_000))
	od := r.Function("od")
	wantOD := decimal.NewFromInt(200).Mul(req).Add(gbs(odMs, odMem).Mul(rates.FirstTierPrice()))
	if !od.Total.Equal(wantOD) {
		t.Errorf("on-demand: got %s, want %s", od.Total, wantOD)
	}
	pc := r.Function("pc")
	if diff := cmp.Diff([]cost.Compute{cost.OnDemand, cost.Provisioned}, pc.Computes); diff != "" {
		t.Errorf("pc computes (-want +got):\n%s", diff)
	}
	provGBs := decimal.NewFromInt(2 * pcMem * 40 * 60).Div(decimal.NewFromInt(1024))
	wantPC := provGBs.Mul(rates.ProvisionedPerGBSecond).
		Add(gbs(pcMs, pcMem).Mul(rates.ProvisionedDurationPerGBSecond)).
		Add(gbs(spillMs, pcMem).Mul(rates.FirstTierPrice())).
		Add(decimal.NewFromInt(100).Mul(req))
	if got := pc.Bills[1].Total; !got.Equal(wantPC) {
		t.Errorf("provisioned: got %s, want %s", got, wantPC)
	}
	wantAfter := req.Add(gbs(after.BilledMs, pcMem).Mul(rates.FirstTierPrice()))
	if got := pc.Bills[0].Total; !got.Equal(wantAfter) {
		t.Errorf("on-demand after provisioning: got %s, want %s", got, wantAfter)
	}
	if pc.SpillOvers != 10 {
		t.Errorf("spill-overs: got %d, want 10", pc.SpillOvers)
	}
	if !r.Total.Equal(wantOD.Add(wantPC).Add(wantAfter)) {
		t.Errorf("total: got %s, want %s", r.Total, wantOD.Add(wantPC).Add(wantAfter))
	}
}

// TestPredictionCatchesMisbilling checks that the check is not a tautology: a
// ledger whose billed duration leaves out a cold start's init disagrees.
func TestPredictionCatchesMisbilling(t *testing.T) {
	var l ledger
	ev := l.invoke("od", "$LATEST", meter.OnDemand, 128, t0.Add(time.Minute), 10*time.Millisecond, 200*time.Millisecond, 0)
	ev.BilledMs = 10
	r, err := Build(l.events, pricing.Default(), hour())
	if err != nil {
		t.Fatal(err)
	}
	c := r.Function("od").Checks[0]
	if c.Agree() {
		t.Fatalf("a bill without the init agrees with the prediction: %+v", c)
	}
	if want := gbs(210, 128).Sub(gbs(10, 128)).Mul(dec("0.0000166667")); !c.Predicted.Sub(c.Metered).Equal(want) {
		t.Errorf("difference %s, want %s", c.Predicted.Sub(c.Metered), want)
	}
}

func TestCapacityProvider(t *testing.T) {
	cat := pricing.Default()
	var l ledger
	// i-1 runs the whole hour (pending before it: not billed); i-2 starts
	// before the period and ends in it; i-3 is an m7i.xlarge for 30 minutes.
	l.instance("cp", "i-1", "m7i.large", meter.InstancePending, t0.Add(-2*time.Minute), t0)
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0, t0.Add(45*time.Minute))
	l.instance("cp", "i-1", "m7i.large", meter.InstanceDraining, t0.Add(45*time.Minute), t0.Add(time.Hour))
	l.instance("cp", "i-2", "m7i.large", meter.InstanceRunning, t0.Add(-30*time.Minute), t0.Add(15*time.Minute))
	l.instance("cp", "i-3", "m7i.xlarge", meter.InstanceRunning, t0.Add(10*time.Minute), t0.Add(40*time.Minute))
	// An instance of another provider; a segment after the period.
	l.instance("other", "i-9", "c7i.large", meter.InstanceRunning, t0, t0.Add(6*time.Minute))
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0.Add(time.Hour), t0.Add(2*time.Hour))
	for i := range 30 {
		fn := "a"
		if i%3 == 0 {
			fn = "b"
		}
		ev := l.invoke(fn, "1", meter.ManagedInstances, 2048, t0.Add(time.Duration(i)*time.Minute), 80*time.Millisecond, 0, 20*time.Millisecond)
		ev.CapacityProvider, ev.Instance, ev.InstanceType = "cp", "i-1", "m7i.large"
	}
	// A duplicate of the first event is counted once.
	l.events = append(l.events, l.events[len(l.events)-1])

	r, err := Build(l.events, cat, hour())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.CapacityProviders) != 2 {
		t.Fatalf("got %d capacity providers, want 2", len(r.CapacityProviders))
	}
	p := r.CapacityProviders[0]
	large, _ := cat.InstanceType("m7i.large")
	xlarge, _ := cat.InstanceType("m7i.xlarge")
	fee := cat.ManagedInstances.ManagementFee
	largeH := dec("1.25") // i-1 one hour, i-2 a quarter
	xlargeH := dec("0.5")
	ec2 := largeH.Mul(large.OnDemandHourly).Add(xlargeH.Mul(xlarge.OnDemandHourly))
	want := ec2.Add(ec2.Mul(fee)).Add(cat.ManagedInstances.RequestCost(decimal.NewFromInt(30)))
	if !p.Bill.Total.Equal(want) {
		t.Errorf("provider cp: got %s, want %s", p.Bill.Total, want)
	}
	if p.Requests != 30 || p.Instances != 3 {
		t.Errorf("provider cp: %d requests on %d instances, want 30 on 3", p.Requests, p.Instances)
	}
	if diff := cmp.Diff([]string{"a", "b"}, p.Functions); diff != "" {
		t.Errorf("functions (-want +got):\n%s", diff)
	}
	// Functions share the fleet by CPU time: a ran 20 of the 30, all alike.
	a := r.Function("a")
	fleet := ec2.Add(ec2.Mul(fee))
	wantA := cat.ManagedInstances.RequestCost(decimal.NewFromInt(20)).Add(fleet.Mul(decimal.NewFromInt(20)).Div(decimal.NewFromInt(30)))
	if a.Total.Sub(wantA).Abs().GreaterThan(dec("1e-12")) {
		t.Errorf("function a: got %s, want %s", a.Total, wantA)
	}
	mi, _ := r.TotalOf(cost.ManagedInstances)
	if want := want.Add(r.CapacityProviders[1].Bill.Total); !mi.Total.Equal(want) {
		t.Errorf("managed instances total: got %s, want %s", mi.Total, want)
	}

	// One function: the provider it ran on, whole; the other provider not.
	opts := hour()
	opts.Function = "b"
	r, err = Build(l.events, cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Functions) != 1 || len(r.CapacityProviders) != 1 || !r.CapacityProviders[0].Bill.Total.Equal(p.Bill.Total) {
		t.Errorf("--function b: %d functions, %d providers, want 1 and 1 billed whole", len(r.Functions), len(r.CapacityProviders))
	}
	if b := r.Function("b"); b == nil || b.Bills[0].Items[1].Quantity.Sub(dec("0.3333333333")).Abs().GreaterThan(dec("1e-9")) {
		t.Errorf("function b's share: %+v", b)
	}
}

func TestPeriod(t *testing.T) {
	tests := []struct {
		name string
		end  time.Time
		want int
	}{
		{"ends at the start", t0, 1},
		{"ends inside", t0.Add(30 * time.Minute), 1},
		{"ends at the end", t0.Add(time.Hour), 0},
		{"ends before", t0.Add(-time.Nanosecond), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l ledger
			l.invoke("f", "1", meter.OnDemand, 128, tt.end.Add(-5*time.Millisecond), 5*time.Millisecond, 0, 0)
			r, err := Build(l.events, pricing.Default(), Options{Since: t0, Until: t0.Add(time.Hour), NoWhatIf: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.Invocations != tt.want {
				t.Errorf("got %d invocations, want %d", r.Invocations, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"hour", hour(), true},
		{"no end", Options{Since: t0}, false},
		{"backwards", Options{Since: t0, Until: t0.Add(-time.Second)}, false},
		{"savings plan", Options{Since: t0, Until: t0.Add(time.Hour), SavingsPlan: dec("1")}, false},
		{"step", Options{Since: t0, Until: t0.Add(time.Hour), Step: 1500 * time.Millisecond}, false},
		{"runtime", Options{Since: t0, Until: t0.Add(time.Hour), Runtime: "cobol"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestWhatIf(t *testing.T) {
	cat := pricing.Default()
	var l ledger
	// A sparse on-demand function: a few invocations an hour.
	for i := range 6 {
		initD := time.Duration(0)
		if i == 0 {
			initD = 300 * time.Millisecond
		}
		l.invoke("sparse", "$LATEST", meter.OnDemand, 512, t0.Add(time.Duration(i)*10*time.Minute), 40*time.Millisecond, initD, 10*time.Millisecond)
	}
	// A busy one: 20 req/s of 200 ms at 2 GB, mostly waiting (2 ms CPU).
	for i := range 72000 {
		l.invoke("busy", "$LATEST", meter.OnDemand, 2048, t0.Add(time.Duration(i)*50*time.Millisecond), 200*time.Millisecond, 0, 2*time.Millisecond)
	}
	r, err := Build(l.events, cat, hour())
	if err != nil {
		t.Fatal(err)
	}
	sparse := r.Function("sparse")
	if sparse.WhatIf == nil {
		t.Fatalf("no what-if: %s", sparse.WhatIfNote)
	}
	w := sparse.WhatIf
	var got []cost.Compute
	for _, e := range w.Estimates {
		got = append(got, e.Compute)
	}
	if diff := cmp.Diff([]cost.Compute{cost.OnDemand, cost.Provisioned, cost.ManagedInstances, "hybrid"}, got); diff != "" {
		t.Errorf("estimates (-want +got):\n%s", diff)
	}
	if e := w.Estimate(cost.OnDemand); !e.Ran || !e.Metered.Equal(sparse.Total) {
		t.Errorf("on-demand estimate: ran %v metered %s, want the function's bill %s", e.Ran, e.Metered, sparse.Total)
	}
	if w.Cheapest != cost.OnDemand || !strings.HasPrefix(w.Recommendation, "Stay on on-demand") {
		t.Errorf("sparse: cheapest %s: %s", w.Cheapest, w.Recommendation)
	}
	if w.InitMs != 300 {
		t.Errorf("init %v ms, want the recorded 300", w.InitMs)
	}
	if sparse.Checks[0].Replay == nil {
		t.Error("the on-demand check has no replay estimate")
	}

	busy := r.Function("busy").WhatIf
	if busy == nil || busy.Cheapest == cost.OnDemand {
		t.Fatalf("busy: %+v", busy)
	}
	if !strings.Contains(busy.Recommendation, "would have been cheapest") || !strings.Contains(busy.Recommendation, "metered on on-demand") {
		t.Errorf("busy: %s", busy.Recommendation)
	}
	// The replay bills on-demand from the same durations: with no cold start
	// recorded, its estimate is the metered bill.
	od := busy.Estimate(cost.OnDemand)
	if !od.Bill.Total.Equal(od.Metered) {
		t.Errorf("busy on-demand: replayed %s, metered %s", od.Bill.Total, od.Metered)
	}
}

func TestOutputs(t *testing.T) {
	var l ledger
	l.invoke("f", "1", meter.OnDemand, 1024, t0.Add(time.Minute), 1234*time.Millisecond, 0, time.Millisecond)
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0, t0.Add(time.Hour))
	r, err := Build(l.events, pricing.Default(), hour())
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc JSONReport
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// 1.234 GB-s and a request, and an m7i.large hour with its fee.
	want := dec("1.234").Mul(dec("0.0000166667")).Add(dec("0.0000002")).Add(dec("0.1008").Mul(dec("1.15")))
	if doc.Total.Exact != want.String() || doc.Total.USD != "0.12" {
		t.Errorf("total %+v, want %s", doc.Total, want)
	}
	if len(doc.Functions) != 1 || doc.Functions[0].Checks[0].Agree != true || doc.Functions[0].WhatIf == nil {
		t.Errorf("functions: %+v", doc.Functions)
	}
	var tb bytes.Buffer
	if err := WriteTable(&tb, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"provider cp", "EC2 m7i.large", "Duration (x86_64)", "TOTAL", "$0.12", "(agree)"} {
		if !strings.Contains(tb.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tb.String())
		}
	}
	var h bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), "<title>shoal cost report</title>") || !strings.Contains(h.String(), "what the same traffic would have cost") ||
		!strings.Contains(h.String(), "<svg") {
		t.Errorf("html: %.400s", h.String())
	}
}

func TestWhatIfStartsWithUsage(t *testing.T) {
	var l ledger
	l.provisioned("pc", "1", 1, 512, t0.Add(30*time.Minute), t0.Add(time.Hour))
	l.invoke("pc", "1", meter.Provisioned, 512, t0.Add(35*time.Minute), 20*time.Millisecond, 0, time.Millisecond)
	l.instance("cp", "i-1", "m7i.large", meter.InstancePending, t0.Add(15*time.Minute), t0.Add(20*time.Minute))
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0.Add(20*time.Minute), t0.Add(time.Hour))
	ev := l.invoke("mi", "1", meter.ManagedInstances, 2048, t0.Add(40*time.Minute), 20*time.Millisecond, 0, time.Millisecond)
	ev.CapacityProvider = "cp"
	l.invoke("od", "$LATEST", meter.OnDemand, 128, t0.Add(50*time.Minute), 20*time.Millisecond, 0, time.Millisecond)
	r, err := Build(l.events, pricing.Default(), hour())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		fn    string
		start time.Time
	}{
		{"pc", t0.Add(30 * time.Minute)}, // its provisioned environment
		{"mi", t0.Add(20 * time.Minute)}, // its fleet's first billed second
		{"od", t0.Add(50 * time.Minute)}, // its first invocation
	} {
		w := r.Function(tt.fn).WhatIf
		if w == nil || !w.Start.Equal(tt.start) || w.Start.Add(time.Duration(w.Steps)*w.Step).Before(t0.Add(time.Hour)) {
			t.Errorf("%s: replay %+v, want from %v to the period's end", tt.fn, w, tt.start)
		}
	}
	if e := r.Function("mi").WhatIf.Estimate(cost.ManagedInstances); e.InstanceType != "m7i.large" {
		t.Errorf("mi replayed on %q, want the provider's m7i.large", e.InstanceType)
	}
}

func TestMixedComputes(t *testing.T) {
	var l ledger
	l.invoke("f", "$LATEST", meter.OnDemand, 256, t0.Add(time.Minute), 30*time.Millisecond, 100*time.Millisecond, 0)
	ev := l.invoke("f", "2", meter.ManagedInstances, 2048, t0.Add(2*time.Minute), 30*time.Millisecond, 0, time.Millisecond)
	ev.CapacityProvider = "cp"
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0, t0.Add(time.Hour))
	r, err := Build(l.events, pricing.Default(), hour())
	if err != nil {
		t.Fatal(err)
	}
	f := r.Function("f")
	if diff := cmp.Diff([]cost.Compute{cost.OnDemand, cost.ManagedInstances}, f.Computes); diff != "" {
		t.Fatalf("computes (-want +got):\n%s", diff)
	}
	for _, c := range f.Checks {
		if c.Replay != nil {
			t.Errorf("%s: a replay of all the function's traffic set beside one compute type's bill", c.Compute)
		}
	}
	for _, e := range f.WhatIf.Estimates {
		if e.Ran {
			t.Errorf("%s marked as the compute type that ran", e.Compute)
		}
	}
	if !strings.Contains(f.WhatIf.Recommendation, "metered on on-demand and managed-instances together") {
		t.Errorf("recommendation: %s", f.WhatIf.Recommendation)
	}
}

func TestFreeTier(t *testing.T) {
	cat := pricing.Default()
	var l ledger
	for i := range 100 {
		l.invoke("f", "$LATEST", meter.OnDemand, 1024, t0.Add(time.Duration(i)*time.Second), 500*time.Millisecond, 0, 0)
	}
	opts := hour()
	opts.NoWhatIf = true
	full, err := Build(l.events, cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.FreeTier = true
	free, err := Build(l.events, cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	// An hour's share of the allowance (1M requests, 400,000 GB-s a month) covers 100 requests of 0.5 GB-s.
	if !free.Total.IsZero() || !full.Total.IsPositive() {
		t.Errorf("total with the free tier %s, without %s", free.Total, full.Total)
	}
	if !free.Function("f").Total.Equal(full.Function("f").Total) {
		t.Error("a function's bill deducted the account's free tier")
	}
}

func TestUnknownInstanceType(t *testing.T) {
	var l ledger
	l.instance("cp", "i-1", "z9.huge", meter.InstanceRunning, t0, t0.Add(time.Hour))
	l.instance("cp", "i-2", "m7i.large", meter.InstanceRunning, t0, t0.Add(time.Hour))
	// The fleet's record agrees: the unpriced type is left out of both.
	opts := hour()
	opts.Fleet = &FleetRecord{Instances: []FleetInstance{
		{ID: "i-1", CapacityProvider: "cp", Type: "z9.huge", StartedAt: t0, TerminatedAt: t0.Add(time.Hour)},
		{ID: "i-2", CapacityProvider: "cp", Type: "m7i.large", StartedAt: t0, TerminatedAt: t0.Add(time.Hour)},
	}}
	r, err := Build(l.events, pricing.Default(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "z9.huge") || !r.CapacityProviders[0].FleetAgrees() {
		t.Errorf("warnings %q", r.Warnings)
	}
	if want := dec("0.1008").Mul(dec("1.15")); !r.Total.Equal(want) {
		t.Errorf("total %s, want the m7i.large hour alone, %s", r.Total, want)
	}
}

func TestNoUsage(t *testing.T) {
	var l ledger
	l.invoke("f", "1", meter.OnDemand, 128, t0.Add(time.Minute), time.Millisecond, 0, 0)
	for _, tt := range []struct{ name, function, want string }{
		{"empty period", "", "no usage in the period"},
		{"unknown function", "g", "function g recorded no usage"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour), Function: tt.function}
			if tt.function != "" {
				opts = hour()
				opts.Function = tt.function
			}
			r, err := Build(l.events, pricing.Default(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tt.want) || !r.Total.IsZero() {
				t.Errorf("warnings %q, total %s", r.Warnings, r.Total)
			}
		})
	}
}

func TestFunctionInfo(t *testing.T) {
	var l ledger
	l.invoke("f", "1", meter.OnDemand, 2048, t0.Add(time.Minute), 30*time.Millisecond, 0, time.Millisecond)
	opts := hour()
	opts.Functions = map[string]FunctionInfo{"f": {Runtime: "provided.al2023", EnvConcurrency: 5}}
	r, err := Build(l.events, pricing.Default(), opts)
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Join(r.Function("f").WhatIf.Assumptions, " ")
	if !strings.Contains(a, "5 concurrent invocations (provided: 8 per vCPU)") {
		t.Errorf("assumptions do not size for provided.al2023 at 5 per environment:\n%s", a)
	}
}

// TestProvisionedIncrements: a Provisioned Concurrency span (contiguous
// segments of one configuration up to its final one) that ends in the period
// is billed in whole 5 minutes; one still going at the period's end is billed
// as it stands.
func TestProvisionedIncrements(t *testing.T) {
	var l ledger
	final := func() { l.events[len(l.events)-1].Final = true }
	// 2 × 1 GB for 2 minutes in two segments, disabled: billed 5 minutes.
	l.provisioned("short", "1", 2, 1024, t0, t0.Add(time.Minute))
	l.provisioned("short", "1", 2, 1024, t0.Add(time.Minute), t0.Add(2*time.Minute))
	final()
	// Then 1 × 2 GB for 6 minutes, a new span: billed 10 minutes.
	l.provisioned("short", "1", 1, 2048, t0.Add(2*time.Minute), t0.Add(8*time.Minute))
	final()
	// 1 × 1 GB from 50 minutes, still enabled when the period ends at 60.
	l.provisioned("open", "1", 1, 1024, t0.Add(50*time.Minute), t0.Add(59*time.Minute))
	// 1 × 1 GB for exactly 5 minutes: nothing to add.
	l.provisioned("exact", "1", 1, 1024, t0.Add(10*time.Minute), t0.Add(15*time.Minute))
	final()
	r, err := Build(l.events, pricing.Default(), Options{Since: t0, Until: t0.Add(time.Hour), NoWhatIf: true})
	if err != nil {
		t.Fatal(err)
	}
	for fn, want := range map[string]string{
		"short": "1800", // 2 GB × 300 s + 2 GB × 600 s
		"open":  "540",  // 1 GB × 540 s, as recorded
		"exact": "300",
	} {
		fb := r.Function(fn)
		if fb == nil {
			t.Fatalf("no bill for %s", fn)
		}
		if !fb.ProvisionedGBSeconds.Equal(dec(want)) {
			t.Errorf("%s: %s provisioned GB-s, want %s", fn, fb.ProvisionedGBSeconds, want)
		}
	}
}

func TestSig3(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {1.04e-05, "0.0000104"}, {8.5e-05, "0.000085"}, {0.000256, "0.000256"},
		{0.12345, "0.123"}, {2.5, "2.5"}, {1234.5, "1230"}, {3e7, "30000000"},
	} {
		if got := sig3(tt.in); got != tt.want {
			t.Errorf("sig3(%g) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
