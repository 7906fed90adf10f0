package replay

import (
	"math"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/scaler"
	"github.com/shoal-dev/shoal/internal/trace"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// constant builds a series of steps with n invocations each of durMs wall time,
// cpuMs CPU time, at memMB.
func series(step time.Duration, memMB int, durMs, cpuMs float64, counts ...uint32) *trace.Series {
	s := trace.NewSeries(t0, step, len(counts))
	s.MemoryMB = memMB
	s.Functions = []string{"fn"}
	for i, n := range counts {
		s.Count[i] = n
		s.BusyMs[i] = float64(n) * durMs
		s.CPUMs[i] = float64(n) * cpuMs
		s.GBs[i] = float64(n) * trace.BilledGBs(durMs, memMB)
	}
	return s
}

func repeat(n int, v uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func run(t *testing.T, s *trace.Series, cfg Config) *Result {
	t.Helper()
	r, err := Run(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Options {
		if o.Invocations+o.Throttles != s.Total() {
			t.Fatalf("%s: %d served + %d throttled ≠ %d in the trace", o.Compute, o.Invocations, o.Throttles, s.Total())
		}
	}
	return r
}

func usd(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestConstantTraffic(t *testing.T) {
	// One hour, 600 invocations a minute of 1 s at 1024 MB: 10 in flight all the time.
	s := series(time.Minute, 1024, 1000, 100, repeat(60, 600)...)
	r := run(t, s, Config{})

	od := r.Option(OnDemand)
	if od.ColdStarts != 10 || od.Throttles != 0 || od.PeakEnvironments != 10 {
		t.Fatalf("on-demand: %d cold starts, %d throttles, %d environments; want 10, 0, 10", od.ColdStarts, od.Throttles, od.PeakEnvironments)
	}
	// 36,000 requests × $0.20/M + 36,000 GB-s × $0.0000166667.
	if want := usd("0.0072").Add(usd("36000").Mul(usd("0.0000166667"))); !od.Total().Equal(want) {
		t.Fatalf("on-demand total %s, want %s", od.Total(), want)
	}

	pc := r.Option(Provisioned)
	if pc.Provisioned != 10 || pc.SpillOvers != 0 || pc.ColdStarts != 0 {
		t.Fatalf("provisioned: level %d, %d spill-overs, %d cold starts; want 10, 0, 0", pc.Provisioned, pc.SpillOvers, pc.ColdStarts)
	}
	// 10 × 1 GB × 3600 s provisioned, 36,000 GB-s executed, requests.
	want := usd("36000").Mul(usd("0.0000041667")).Add(usd("36000").Mul(usd("0.0000097222"))).Add(usd("0.0072"))
	if !pc.Total().Equal(want) {
		t.Fatalf("provisioned total %s, want %s", pc.Total(), want)
	}

	// Managed Instances: 10 in flight of 64 slots, 1 vCPU of CPU: the minimum of
	// 3 environments on 3 m7i.large for the hour, no throttles.
	mi := r.Option(ManagedInstances)
	if mi.Throttles != 0 || mi.PeakInstances != 3 || mi.PeakEnvironments != 3 || mi.InstanceHours != 3 {
		t.Fatalf("managed: %d throttles, %d instances, %d environments, %v instance-hours; want 0, 3, 3, 3",
			mi.Throttles, mi.PeakInstances, mi.PeakEnvironments, mi.InstanceHours)
	}
	// 3 instance-hours × $0.1008 × 1.15 + requests.
	if want := usd("3").Mul(usd("0.1008")).Mul(usd("1.15")).Add(usd("0.0072")); !mi.Total().Equal(want) {
		t.Fatalf("managed total %s, want %s", mi.Total(), want)
	}

	// Hybrid: the floor is all the traffic, so it is the Managed Instances bill.
	hy := r.Option(Hybrid)
	if hy.ColdStarts != 0 || hy.SpillOvers != 0 || !hy.Total().Equal(mi.Total()) {
		t.Fatalf("hybrid: %d cold starts, %d spill-overs, total %s; want 0, 0, %s", hy.ColdStarts, hy.SpillOvers, hy.Total(), mi.Total())
	}
	if r.Cheapest != ManagedInstances && r.Cheapest != Hybrid {
		t.Fatalf("cheapest %s", r.Cheapest)
	}
	if len(r.Series) != 60 || r.Series[59].Instances != 3 {
		t.Fatalf("series: %d points, last %+v", len(r.Series), r.Series[len(r.Series)-1])
	}
}

func TestOnDemandKeepAlive(t *testing.T) {
	// One short invocation in minutes 0, 5, 16 and 17; idle environments live 10 minutes.
	counts := make([]uint32, 20)
	counts[0], counts[5], counts[16], counts[17] = 1, 1, 1, 1
	s := series(time.Minute, 128, 100, 100, counts...)
	r := run(t, s, Config{})
	if got := r.Option(OnDemand).ColdStarts; got != 2 {
		t.Fatalf("%d cold starts; want 2 (minutes 0 and 16)", got)
	}
	r = run(t, s, Config{KeepAlive: 3 * time.Minute})
	if got := r.Option(OnDemand).ColdStarts; got != 3 {
		t.Fatalf("keep-alive 3m: %d cold starts; want 3 (minutes 0, 5 and 16)", got)
	}
}

func TestAccountConcurrencyThrottles(t *testing.T) {
	// 1,500 in flight against 1,000 allowed: a third throttles.
	s := series(time.Minute, 128, 1000, 1, repeat(5, 90000)...)
	r := run(t, s, Config{})
	od := r.Option(OnDemand)
	if od.Throttles != 150000 || od.ColdStarts != 1000 {
		t.Fatalf("on-demand: %d throttles, %d cold starts; want 150000 and 1000", od.Throttles, od.ColdStarts)
	}
}

func TestProvisionedSpillOver(t *testing.T) {
	// 15 in flight for 10 minutes on 10 provisioned environments: a third spills,
	// and 5 on-demand environments start cold once.
	s := series(time.Minute, 1024, 1000, 100, repeat(10, 900)...)
	r := run(t, s, Config{Provisioned: 10})
	pc := r.Option(Provisioned)
	if pc.SpillOvers != 3000 || pc.ColdStarts != 5 || pc.Throttles != 0 {
		t.Fatalf("provisioned: %d spill-overs, %d cold starts, %d throttles; want 3000, 5, 0", pc.SpillOvers, pc.ColdStarts, pc.Throttles)
	}
	// Spill is 3,000 invocations of 1 GB-s at on-demand rates.
	var spill decimal.Decimal
	for _, it := range pc.Bill.Items {
		if it.Unit == "GB-s" && it.UnitPrice.Equal(usd("0.0000166667")) {
			spill = it.Quantity
		}
	}
	if !spill.Equal(usd("3000")) {
		t.Fatalf("spill-over GB-s %s; want 3000 (items %+v)", spill, pc.Bill.Items)
	}
}

func TestManagedThrottlesWhenTrafficMoreThanDoubles(t *testing.T) {
	// Environments of 4 slots, CPU-light work: slots bind. 10 in flight for
	// 30 minutes holds ⌈2 × 10 / 4⌉ = 5 environments (20 slots).
	base := repeat(30, 600)
	cfg := Config{EnvConcurrency: 4}
	tests := []struct {
		name      string
		after     uint32 // invocations per minute after minute 30
		throttles bool
	}{
		{"steady", 600, false},
		{"2x step", 1200, false},
		{"3x step", 1800, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := series(time.Minute, 1024, 1000, 10, append(base, repeat(30, tc.after)...)...)
			r := run(t, s, cfg)
			mi := r.Option(ManagedInstances)
			if got := mi.Throttles > 0; got != tc.throttles {
				t.Fatalf("%d throttles; want throttles: %v", mi.Throttles, tc.throttles)
			}
			if !tc.throttles {
				return
			}
			// The first minute of the step serves 20 of 30 in flight: 600 of 1,800
			// throttle; the scale-out takes minutes, so more follow, but far fewer
			// than the whole remaining half hour.
			if math.Round(r.Series[30].Throttles) != 600 {
				t.Fatalf("minute 30: %v throttles; want 600", r.Series[30].Throttles)
			}
			if mi.Throttles <= 600 || mi.Throttles >= 600*10 {
				t.Fatalf("%d throttles in all; want more than the first minute's 600 and less than 10 minutes' worth", mi.Throttles)
			}
			if mi.PeakEnvironments != 15 { // ⌈2 × 30 / 4⌉
				t.Fatalf("peak %d environments; want 15", mi.PeakEnvironments)
			}
			// An option that dropped invocations is not the cheapest way to
			// serve the traffic, however small its bill.
			if c := r.Option(r.Cheapest); c.Throttles > 0 {
				t.Fatalf("cheapest is %s, which throttled %d invocations", r.Cheapest, c.Throttles)
			}
		})
	}
}

func TestManagedScalesInGradually(t *testing.T) {
	// 40 in flight for an hour, then 4: the fleet shrinks step by step.
	s := series(time.Minute, 1024, 1000, 10, append(repeat(60, 2400), repeat(60, 240)...)...)
	r := run(t, s, Config{EnvConcurrency: 4})
	mi := r.Option(ManagedInstances)
	if mi.Throttles != 0 {
		t.Fatalf("%d throttles", mi.Throttles)
	}
	if mi.PeakEnvironments != 20 || mi.PeakInstances != 10 {
		t.Fatalf("peak %d environments on %d instances; want 20 on 10", mi.PeakEnvironments, mi.PeakInstances)
	}
	prev := r.Series[60].Instances
	for i := 61; i < 120; i++ {
		if d := prev - r.Series[i].Instances; d > 1 {
			t.Fatalf("minute %d: %d instances drained at once", i, d)
		}
		prev = r.Series[i].Instances
	}
	if last := r.Series[119].Instances; last != 3 {
		t.Fatalf("after an hour at 4 in flight: %d instances; want the minimum 3", last)
	}
	if r.Series[64].Instances != 10 {
		t.Fatalf("minute 64: %d instances; scale-in should wait out the 5-minute peak window", r.Series[64].Instances)
	}
}

func TestHybridFloor(t *testing.T) {
	// A floor of 10 in flight with a 30-minute burst to 40 each hour-long window.
	counts := append(append(repeat(30, 600), repeat(30, 2400)...), repeat(60, 600)...)
	s := series(time.Minute, 1024, 1000, 10, counts...)
	r := run(t, s, Config{})
	hy := r.Option(Hybrid)
	// Above the floor: 30 minutes × 1,800 invocations go on-demand, 30 cold starts once.
	if hy.Provisioned != 10 || hy.SpillOvers != 54000 || hy.ColdStarts != 30 || hy.Throttles != 0 {
		t.Fatalf("hybrid: floor %d, %d to on-demand, %d cold starts, %d throttles; want 10, 54000, 30, 0",
			hy.Provisioned, hy.SpillOvers, hy.ColdStarts, hy.Throttles)
	}
	if hy.PeakInstances != 3 {
		t.Fatalf("hybrid fleet %d instances; want 3", hy.PeakInstances)
	}
}

func TestOneSecondSteps(t *testing.T) {
	s := series(time.Second, 1024, 200, 20, repeat(3600, 100)...) // 100 req/s, 200 ms: 20 in flight
	r := run(t, s, Config{})
	od := r.Option(OnDemand)
	if od.ColdStarts != 20 || od.Throttles != 0 {
		t.Fatalf("on-demand: %d cold starts, %d throttles", od.ColdStarts, od.Throttles)
	}
	// The article's figure for an hour: $30.5280576 a day ÷ 24.
	if want := usd("30.5280576").Div(usd("24")); !od.Total().Round(9).Equal(want.Round(9)) {
		t.Fatalf("on-demand hour %s, want %s", od.Total(), want)
	}
	if mi := r.Option(ManagedInstances); mi.Throttles != 0 || mi.InstanceHours != 3 {
		t.Fatalf("managed: %d throttles, %v instance-hours", mi.Throttles, mi.InstanceHours)
	}
}

func TestValidate(t *testing.T) {
	s := series(time.Minute, 128, 10, 10, 1, 2)
	for _, cfg := range []Config{
		{MemoryMB: -1}, {EnvConcurrency: 2000}, {Provisioned: -1}, {MinEnvs: 5, MaxEnvs: 2},
		{InstanceType: "m7g.large"}, {InstanceType: "no.such"}, {Runtime: "cobol"}, {FloorPercentile: 200},
	} {
		if _, err := Run(s, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := Run(series(1500*time.Millisecond, 128, 10, 10, 1), Config{}); err == nil {
		t.Error("fractional-second step accepted")
	}
}

func TestManagedManualMode(t *testing.T) {
	// CPU-bound: 10 in flight use 10 vCPUs. At a 50 % target the scaler holds
	// 20 one-vCPU environments on 10 m7i.large; at 80 %, 13 on 7.
	s := series(time.Minute, 1024, 1000, 1000, repeat(60, 600)...)
	for _, tc := range []struct {
		target     float64
		envs, inst int
	}{{50, 20, 10}, {80, 13, 7}} {
		cfg := Config{}
		cfg.Scaling.Mode, cfg.Scaling.TargetCPUPercent = "Manual", tc.target
		r := run(t, s, cfg)
		mi := r.Option(ManagedInstances)
		if mi.Throttles != 0 || mi.PeakEnvironments != tc.envs || mi.PeakInstances != tc.inst {
			t.Fatalf("target %v%%: %d throttles, %d environments on %d instances; want 0, %d on %d",
				tc.target, mi.Throttles, mi.PeakEnvironments, mi.PeakInstances, tc.envs, tc.inst)
		}
		if want := float64(tc.inst); mi.InstanceHours != want {
			t.Fatalf("target %v%%: %v instance-hours; want %v", tc.target, mi.InstanceHours, want)
		}
	}
}

func TestSavingsPlanAndFreeTier(t *testing.T) {
	s := series(time.Minute, 1024, 1000, 100, repeat(60, 600)...)
	r := run(t, s, Config{SavingsPlan: usd("0.3"), FreeTier: true})
	// 3 instance-hours at 70 % of $0.1008 plus the fee on the full price; the
	// hour's share of the free requests (1M ÷ 730) comes off the request charge.
	months := usd("1").Div(usd("730"))
	freeReq := usd("1000000").Mul(months)
	req := usd("36000").Sub(freeReq).Mul(usd("0.0000002"))
	want := usd("3").Mul(usd("0.1008")).Mul(usd("0.85")).Add(req)
	if mi := r.Option(ManagedInstances); !mi.Total().Round(9).Equal(want.Round(9)) {
		t.Fatalf("managed with a 30%% Savings Plan and the free tier: %s, want %s", mi.Total(), want)
	}
	gbs := usd("36000").Sub(usd("400000").Mul(months))
	want = req.Add(gbs.Mul(usd("0.0000166667")))
	if od := r.Option(OnDemand); !od.Total().Round(9).Equal(want.Round(9)) {
		t.Fatalf("on-demand with the free tier: %s, want %s", od.Total(), want)
	}
	if _, err := Run(s, Config{SavingsPlan: usd("1")}); err == nil {
		t.Fatal("a 100% Savings Plan was accepted")
	}
}

// TestBootingInstancesAreNotBilled: an instance bills from when it has booted,
// as the usage ledger bills no pending time.
func TestBootingInstancesAreNotBilled(t *testing.T) {
	dec, err := scaler.New(scaler.Config{Instance: scaler.InstanceShape{Type: "m7i.large", VCPU: 2, MemoryMiB: 8192}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(dec, scaler.Version{EnvVCPU: 1, EnvMemoryMiB: 2048, EnvSlots: 8}, time.Unix(0, 0), time.Minute, 4*time.Minute, time.Minute)
	// One instance that runs from the start, one that boots until step 4.
	f.insts = []fleetInst{{id: "i-1", readyAt: 0}, {id: "i-2", readyAt: 4}}
	for i := range 10 {
		f.serve(i, 0, 0)
	}
	if got, want := f.instanceSeconds(), int64((10+6)*60); got != want {
		t.Errorf("%d instance-seconds over 10 one-minute steps, want %d (10 + 6 booted steps)", got, want)
	}
}
