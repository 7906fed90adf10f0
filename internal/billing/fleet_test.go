package billing

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// life is one instance's life as the fleet records it, and the usage segments
// the fleet writes for it: pending from launch, then its later states, with
// a checkpoint every 5 minutes while it runs.
type life struct {
	id, cp, typ                        string
	launched, started, terminated, now time.Time // terminated zero: live at now
	states                             []string  // after pending, in order, each an equal part of [started, end)
}

func (lf life) record() FleetInstance {
	fi := FleetInstance{ID: lf.id, CapacityProvider: lf.cp, Type: lf.typ, StartedAt: lf.started, TerminatedAt: lf.terminated}
	if lf.terminated.IsZero() {
		fi.MeteredUntil = lf.segments(nil)[len(lf.segments(nil))-1].End
	}
	return fi
}

// segments appends the ledger's segments of the instance to l (when l is
// not nil) and returns them.
func (lf life) segments(l *ledger) []meter.Event {
	var out []meter.Event
	add := func(state string, s, e time.Time) {
		out = append(out, meter.Event{ID: "inst-" + lf.id + "-" + s.Format(time.RFC3339Nano), Kind: meter.KindInstance,
			Start: s, End: e, CapacityProvider: lf.cp, Instance: lf.id, InstanceType: lf.typ, Zone: "us-east-1a", State: state})
	}
	started := lf.started
	end := lf.terminated
	live := end.IsZero()
	if live {
		end = lf.now
	}
	if started.IsZero() {
		started = end
	}
	add(meter.InstancePending, lf.launched, started)
	if !lf.started.IsZero() {
		part := end.Sub(started) / time.Duration(len(lf.states))
		for i, st := range lf.states {
			s, e := started.Add(time.Duration(i)*part), started.Add(time.Duration(i+1)*part)
			if i == len(lf.states)-1 {
				e = end
			}
			// Checkpoints every 5 minutes; a live instance's last, open part is not in the ledger.
			for c := s; c.Before(e); {
				next := c.Add(5 * time.Minute)
				if !next.Before(e) {
					if live && i == len(lf.states)-1 {
						break
					}
					next = e
				}
				add(st, c, next)
				c = next
			}
		}
	}
	if l != nil {
		l.events = append(l.events, out...)
	}
	return out
}

// TestFleetCheck holds the ledger's Managed Instances time against the
// fleet's record of launch and terminate times: a whole ledger agrees to the
// nanosecond, one that lost instance time differs by exactly what it lost.
func TestFleetCheck(t *testing.T) {
	cat := pricing.Default()
	ms := time.Millisecond
	lives := []life{
		// Launched before the period, terminated inside it.
		{id: "i-1", cp: "cp", typ: "m7i.large", launched: t0.Add(-10 * time.Minute), started: t0.Add(-9*time.Minute + 123456789),
			terminated: t0.Add(40*time.Minute + 7*ms), states: []string{meter.InstanceRunning, meter.InstanceDraining}},
		// Live at the end of the period: compared up to where its time is metered.
		{id: "i-2", cp: "cp", typ: "m7i.large", launched: t0.Add(5 * time.Minute), started: t0.Add(6*time.Minute + 1),
			now: t0.Add(58*time.Minute + 999*ms), states: []string{meter.InstanceRunning}},
		// Lost, then terminated.
		{id: "i-3", cp: "cp", typ: "m7i.xlarge", launched: t0.Add(20 * time.Minute), started: t0.Add(21 * time.Minute),
			terminated: t0.Add(50 * time.Minute), states: []string{meter.InstanceRunning, meter.InstanceLost}},
		// Terminated before it left pending: never billed.
		{id: "i-4", cp: "cp", typ: "m7i.large", launched: t0.Add(30 * time.Minute), terminated: t0.Add(31 * time.Minute)},
		// Another capacity provider, outliving the period.
		{id: "i-5", cp: "other", typ: "c7i.large", launched: t0.Add(-time.Hour), started: t0.Add(-59 * time.Minute),
			terminated: t0.Add(3 * time.Hour), states: []string{meter.InstanceRunning}},
	}
	build := func(t *testing.T, drop func(ev meter.Event) bool, withFleet bool) *Report {
		t.Helper()
		var l ledger
		rec := &FleetRecord{}
		for _, lf := range lives {
			for _, ev := range lf.segments(nil) {
				if drop == nil || !drop(ev) {
					l.events = append(l.events, ev)
				}
			}
			rec.Instances = append(rec.Instances, lf.record())
		}
		for i := range 20 {
			ev := l.invoke("web", "1", meter.ManagedInstances, 2048, t0.Add(time.Duration(i)*time.Minute), 50*ms, 0, 10*ms)
			ev.CapacityProvider, ev.Instance, ev.InstanceType = "cp", "i-1", "m7i.large"
		}
		ev := l.invoke("batch", "1", meter.ManagedInstances, 2048, t0.Add(10*time.Minute), 50*ms, 0, 10*ms)
		ev.CapacityProvider = "other"
		opts := hour()
		if withFleet {
			opts.Fleet = rec
		}
		r, err := Build(l.events, cat, opts)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	miCheck := func(t *testing.T, f *FunctionBill) *Check {
		t.Helper()
		i := slices.IndexFunc(f.Checks, func(c Check) bool { return c.Compute == cost.ManagedInstances })
		if i < 0 {
			return nil
		}
		return &f.Checks[i]
	}

	t.Run("whole ledger agrees", func(t *testing.T) {
		r := build(t, nil, true)
		// By hand: i-1 [t0, 40m7ms), i-2 [6m+1ns, 56m+1ns) (checkpoints every 5 minutes from its start), i-3 [21m, 50m).
		wantLarge := (40*time.Minute + 7*ms) + (56*time.Minute + 1 - (6*time.Minute + 1))
		for _, p := range r.CapacityProviders {
			if !p.FleetAgrees() || p.Fleet == nil {
				t.Errorf("provider %s: metered %s s, fleet %s s", p.Name, p.MeteredSeconds(), p.FleetSeconds())
			}
			if p.Name == "cp" {
				if got := p.Fleet.Usage[0].Seconds; p.Fleet.Usage[0].Type != "m7i.large" || !got.Equal(seconds(wantLarge)) {
					t.Errorf("fleet's m7i.large time %s s, want %s s", got, seconds(wantLarge))
				}
				if p.Fleet.Instances != 3 {
					t.Errorf("fleet's billed instances %d, want 3 (i-4 never left pending)", p.Fleet.Instances)
				}
			}
		}
		for _, fn := range []string{"web", "batch"} {
			c := miCheck(t, r.Function(fn))
			if c == nil || !c.Agree() || c.Against != "from the fleet's launch and terminate times" || c.Metered.IsZero() {
				t.Errorf("%s: managed-instances check %+v", fn, c)
			}
		}
		for _, w := range r.Warnings {
			if strings.Contains(w, "fleet") {
				t.Errorf("warning on a whole ledger: %s", w)
			}
		}
	})

	t.Run("lost instance time differs", func(t *testing.T) {
		lost := t0.Add(10 * time.Minute).Add(-9*time.Minute + 123456789) // a running segment of i-1 in the period
		r := build(t, func(ev meter.Event) bool { return ev.Instance == "i-1" && ev.Start.Equal(lost) }, true)
		p := r.CapacityProviders[0]
		if p.Name != "cp" || p.FleetAgrees() {
			t.Fatalf("provider %s agrees with a ledger that lost 5 minutes", p.Name)
		}
		if d := p.FleetSeconds().Sub(p.MeteredSeconds()); !d.Equal(decimal.NewFromInt(300)) {
			t.Errorf("differ by %s s, want 300", d)
		}
		if r.CapacityProviders[1].Name != "other" || !r.CapacityProviders[1].FleetAgrees() {
			t.Errorf("the other provider, whole, disagrees")
		}
		c := miCheck(t, r.Function("web"))
		if c == nil || c.Agree() || !c.Predicted.GreaterThan(c.Metered) {
			t.Errorf("web's check %+v, want the fleet's bill above the metered one", c)
		}
		if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "capacity provider cp: the ledger holds") }) {
			t.Errorf("no warning: %q", r.Warnings)
		}
		var tb bytes.Buffer
		if err := WriteTable(&tb, r); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"provider cp — billed instance time: metered", "(differ by 300 s)",
			"managed-instances: metered $", "from the fleet's launch and terminate times $"} {
			if !strings.Contains(tb.String(), s) {
				t.Errorf("table lacks %q:\n%s", s, tb.String())
			}
		}
		var js bytes.Buffer
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		var doc JSONReport
		if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if f := doc.CapacityProviders[0].Fleet; f == nil || f.Agree || f.Instances != 3 {
			t.Errorf("json fleet %+v", f)
		}
	})

	t.Run("a provider the ledger lost entirely", func(t *testing.T) {
		r := build(t, func(ev meter.Event) bool { return ev.CapacityProvider == "other" }, true)
		p := r.CapacityProviders[1]
		if p.Name != "other" || p.FleetAgrees() || !p.MeteredSeconds().IsZero() || !p.FleetSeconds().Equal(decimal.NewFromInt(3600)) {
			t.Errorf("provider %s: metered %s s, fleet %s s", p.Name, p.MeteredSeconds(), p.FleetSeconds())
		}
	})

	t.Run("without the fleet's record no check is made", func(t *testing.T) {
		r := build(t, nil, false)
		if c := miCheck(t, r.Function("web")); c != nil {
			t.Errorf("a check without the fleet's record: %+v", c)
		}
		if r.CapacityProviders[0].Fleet != nil {
			t.Errorf("fleet usage without the fleet's record")
		}
		if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "not checked") }) {
			t.Errorf("no warning: %q", r.Warnings)
		}
	})
}
