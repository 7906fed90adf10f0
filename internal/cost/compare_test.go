package cost

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func cents(d decimal.Decimal) string { return pricing.RoundCents(d).StringFixed(2) }

// articleWorkload is the worked example of the article: 200 ms, 1 GB, x86.
func articleWorkload(rate string) Workload {
	return Workload{Rate: dec(rate), Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64}
}

func articleFleet(p Period) Config {
	return Config{Period: p, InstanceType: "m7i.large", Instances: 3}
}

func TestArticleWorkedExamples(t *testing.T) {
	cat := pricing.Default()
	tests := []struct {
		name    string
		rate    string
		period  Period
		compute Compute
		want    string
	}{
		{"100 req/s on-demand per day", "100", Day, OnDemand, "30.53"},
		{"100 req/s on-demand per month", "100", Month, OnDemand, "928.56"},
		{"100 req/s managed instances per day", "100", Day, ManagedInstances, "10.07"},
		{"100 req/s managed instances per month", "100", Month, ManagedInstances, "306.42"},
		{"5 req/s on-demand per day", "5", Day, OnDemand, "1.53"},
		{"5 req/s managed instances per day", "5", Day, ManagedInstances, "8.43"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Compare(cat, articleWorkload(tt.rate), articleFleet(tt.period))
			if err != nil {
				t.Fatal(err)
			}
			o, ok := res.Option(tt.compute)
			if !ok {
				t.Fatalf("no %s option", tt.compute)
			}
			if got := cents(o.Total); got != tt.want {
				t.Errorf("%s total = %s (exact %s), want %s", tt.compute, got, o.Total, tt.want)
			}
		})
	}
}

func TestArticleLineItems(t *testing.T) {
	res, err := Compare(pricing.Default(), articleWorkload("100"), articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	od, _ := res.Option(OnDemand)
	want := map[string]string{"Requests": "1.728", "Duration (x86_64)": "28.8000576"}
	for _, it := range od.Items {
		if w, ok := want[it.Name]; ok && !it.USD.Equal(dec(w)) {
			t.Errorf("on-demand %s = %s, want %s", it.Name, it.USD, w)
		}
	}
	if !od.Total.Equal(dec("30.5280576")) {
		t.Errorf("on-demand exact total = %s, want 30.5280576", od.Total)
	}
	mi, _ := res.Option(ManagedInstances)
	if len(mi.Items) != 3 {
		t.Fatalf("managed instances items = %+v", mi.Items)
	}
	for i, w := range []string{"7.2576", "1.08864", "1.728"} {
		if !mi.Items[i].USD.Equal(dec(w)) {
			t.Errorf("managed instances item %q = %s, want %s", mi.Items[i].Name, mi.Items[i].USD, w)
		}
	}
	// The article adds rounded components (7.26 + 1.09 + 1.73 = 10.08); the exact sum is 10.07424.
	if !mi.Total.Equal(dec("10.07424")) {
		t.Errorf("managed instances exact total = %s, want 10.07424", mi.Total)
	}
	if res.Cheapest != ManagedInstances {
		t.Errorf("cheapest = %s", res.Cheapest)
	}
}

func TestArticleBreakEven(t *testing.T) {
	cat := pricing.Default()
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"per day", articleFleet(Day), "28.98"},
		{"per month", articleFleet(Month), "28.98"},
		// Research cross-checks: with the free tier 29.74; with a 30 % EC2 Savings Plan 21.42.
		{"with free tier", Config{Period: Month, InstanceType: "m7i.large", Instances: 3, FreeTier: true}, "29.74"},
		{"with 30% savings plan", Config{Period: Month, InstanceType: "m7i.large", Instances: 3, SavingsPlan: dec("0.3")}, "21.42"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Compare(cat, articleWorkload("100"), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.BreakEvenRPS == nil {
				t.Fatal("no break-even")
			}
			if got := res.BreakEvenRPS.Round(2).StringFixed(2); got != tt.want {
				t.Errorf("break-even = %s (%s), want %s", got, res.BreakEvenRPS, tt.want)
			}
			// At the break-even rate both cost the same to within a cent.
			at, err := Compare(cat, Workload{Rate: *res.BreakEvenRPS, Duration: 200 * time.Millisecond, MemoryMB: 1024}, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			od, _ := at.Option(OnDemand)
			mi, _ := at.Option(ManagedInstances)
			if od.Total.Sub(mi.Total).Abs().GreaterThan(dec("0.01")) {
				t.Errorf("at break-even on-demand %s vs managed instances %s", od.Total, mi.Total)
			}
		})
	}
	// The break-even scales as 1/(memory × duration): 512 MB at 200 ms breaks even at twice the rate.
	res, err := Compare(cat, Workload{Rate: dec("100"), Duration: 200 * time.Millisecond, MemoryMB: 512}, articleFleet(Month))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.BreakEvenRPS.Round(2).StringFixed(2); got != "57.96" {
		t.Errorf("512 MB break-even = %s, want 57.96", got)
	}
}

func TestSavingsPlanLeavesFeeUntouched(t *testing.T) {
	cat := pricing.Default()
	cfg := articleFleet(Month)
	cfg.SavingsPlan = dec("0.3")
	res, err := Compare(cat, articleWorkload("100"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mi, _ := res.Option(ManagedInstances)
	// EC2 3 × 0.1008 × 730 × 0.7 = 154.5264; fee 3 × 0.1008 × 730 × 0.15 = 33.1128; requests 52.56.
	want := []string{"154.5264", "33.1128", "52.56"}
	for i, w := range want {
		if !mi.Items[i].USD.Equal(dec(w)) {
			t.Errorf("%s = %s, want %s", mi.Items[i].Name, mi.Items[i].USD, w)
		}
	}
	if got := cents(mi.Total); got != "240.20" {
		t.Errorf("total with 30%% savings plan = %s, want 240.20", got)
	}
}

func TestProvisionedConcurrency(t *testing.T) {
	cat := pricing.Default()
	tests := []struct {
		name        string
		provisioned int
		want        string
		spill       string
	}{
		// Research §6 item 8: PC = 20 → $840.56 (15.9 % spill), PC = 30 → $895.15 (0.85 %).
		{"20 provisioned", 20, "840.56", "15.89"},
		{"30 provisioned", 30, "895.15", "0.85"},
		{"sized", 0, "895.15", "0.85"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := articleFleet(Month)
			cfg.Provisioned = tt.provisioned
			res, err := Compare(cat, articleWorkload("100"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			pc, _ := res.Option(Provisioned)
			if got := cents(pc.Total); got != tt.want {
				t.Errorf("PC total = %s (%s), want %s", got, pc.Total, tt.want)
			}
			if got := fmtPct(pc.SpillFraction); got != tt.spill {
				t.Errorf("spill = %s %%, want %s %%", got, tt.spill)
			}
			if tt.provisioned == 0 && (pc.Provisioned != 30 || !res.Provisioned.Sized) {
				t.Errorf("sized level = %d", pc.Provisioned)
			}
		})
	}
	// Provisioned rate alone: 10 environments × 512 MB for a day = 432,000 GB-s × 0.0000041667 = 1.80.
	o, err := PriceProvisioned(cat, ProvisionedUsage{Arch: pricing.X86_64, Provisioned: 10, ProvisionedGBSeconds: dec("432000")}, Day, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := cents(o.Total); got != "1.80" {
		t.Errorf("idle PC = %s, want 1.80 (not the executed rate's 4.20)", got)
	}
	// arm64 provisioned and executed rates.
	o, err = PriceProvisioned(cat, ProvisionedUsage{Arch: pricing.ARM64, Provisioned: 1, ProvisionedGBSeconds: dec("1000000"), ExecutedGBSeconds: dec("1000000")}, Month, false)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Total.Equal(dec("11.1112")) { // 3.3334 + 7.7778
		t.Errorf("arm64 PC = %s, want 11.1112", o.Total)
	}
}

func TestArm64AndFreeTier(t *testing.T) {
	cat := pricing.Default()
	w := articleWorkload("5")
	w.Arch = pricing.ARM64
	res, err := Compare(cat, w, Config{Period: Month})
	if err != nil {
		t.Fatal(err)
	}
	od, _ := res.Option(OnDemand)
	// 13,140,000 requests = 2.628; 2,628,000 GB-s × 0.0000133334 = 35.0401752.
	if !od.Total.Equal(dec("37.6681752")) {
		t.Errorf("arm64 on-demand = %s, want 37.6681752", od.Total)
	}
	if res.Fleet.Type.Arch != pricing.ARM64 {
		t.Errorf("arm64 fleet on %s", res.Fleet.Type.Name)
	}

	res, err = Compare(cat, articleWorkload("5"), Config{Period: Month, FreeTier: true})
	if err != nil {
		t.Fatal(err)
	}
	od, _ = res.Option(OnDemand)
	// (13,140,000 − 1,000,000) × 0.2e-6 = 2.428; (2,628,000 − 400,000) × 0.0000166667 = 37.1334076. Research: $39.56.
	if !od.Total.Equal(dec("39.5614076")) {
		t.Errorf("free-tier on-demand = %s, want 39.5614076", od.Total)
	}
	// Without the free tier the month is $46.43.
	res, _ = Compare(cat, articleWorkload("5"), Config{Period: Month})
	od, _ = res.Option(OnDemand)
	if got := cents(od.Total); got != "46.43" {
		t.Errorf("5 req/s month = %s, want 46.43", got)
	}
	// A tiny workload is free.
	res, _ = Compare(cat, Workload{Requests: dec("1000"), Duration: 100 * time.Millisecond}, Config{Period: Month, FreeTier: true})
	od, _ = res.Option(OnDemand)
	if !od.Total.IsZero() {
		t.Errorf("1000 requests with free tier = %s, want 0", od.Total)
	}
}

func TestPerMillisecondRounding(t *testing.T) {
	cat := pricing.Default()
	a, err := Compare(cat, Workload{Requests: dec("1000000"), Duration: 200*time.Millisecond + 100*time.Microsecond}, Config{Period: Month})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compare(cat, Workload{Requests: dec("1000000"), Duration: 201 * time.Millisecond}, Config{Period: Month})
	oa, _ := a.Option(OnDemand)
	ob, _ := b.Option(OnDemand)
	if a.BilledMs != 201 || !oa.Total.Equal(ob.Total) {
		t.Errorf("200.1 ms billed %d ms costing %s; 201 ms costs %s", a.BilledMs, oa.Total, ob.Total)
	}
}

func TestRequestsPerPeriod(t *testing.T) {
	res, err := Compare(pricing.Default(), Workload{Requests: dec("8640000"), Duration: 200 * time.Millisecond}, articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rate.Equal(dec("100")) {
		t.Errorf("rate = %s", res.Rate)
	}
	od, _ := res.Option(OnDemand)
	if got := cents(od.Total); got != "30.53" {
		t.Errorf("on-demand = %s", got)
	}
}

func TestAssumptionsAndWarnings(t *testing.T) {
	res, err := Compare(pricing.Default(), articleWorkload("100"), articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Assumptions, "\n")
	for _, want := range []string{"730 h", "1 GB = 1024 MB", "Little's law", "Erlang-B", "double within 5 minutes", "28.98", "Free tier not applied", "m7i.large"} {
		if !strings.Contains(all, want) {
			t.Errorf("assumptions do not mention %q:\n%s", want, all)
		}
	}
	// With the CPU time defaulting to 200 ms, 3 × m7i.large cannot carry 100 req/s.
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "cannot carry") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if !strings.Contains(res.Recommendation, "28.98") || !strings.Contains(res.Recommendation, "past what that fleet carries") {
		t.Errorf("recommendation = %q", res.Recommendation)
	}
	// At 28.98 req/s and 200 ms of CPU each the fleet is past its 50 % target:
	// 3 × m7i.large hold 6 environments of 1 vCPU, 3 at the target, 15 req/s.
	if got := res.Fleet.MaxRate(200*time.Millisecond, 0); !got.Equal(dec("15")) {
		t.Errorf("the article's fleet carries %s req/s, want 15", got)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.Contains(w, "break-even rate of 28.98 req/s") && strings.Contains(w, "up to 15.00 req/s")
	}) {
		t.Errorf("no warning that the break-even is past the fleet: %q", res.Warnings)
	}
	// IO-bound: 15 ms of CPU each fits the article's fleet.
	w := articleWorkload("100")
	w.CPUTime = 15 * time.Millisecond
	res, err = Compare(pricing.Default(), w, articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("IO-bound warnings = %q", res.Warnings)
	}
}

// TestFleetWarnings: a fleet below the minimum of three instances that carries
// the load is told only that it is below the minimum; a fleet past the default
// MaxVCpuCount is told to raise it.
func TestFleetWarnings(t *testing.T) {
	w := Workload{Rate: dec("1"), Duration: 100 * time.Millisecond, MemoryMB: 1024}
	res, err := Compare(pricing.Default(), w, Config{InstanceType: "m7i.large", Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Warnings, "\n")
	if !strings.Contains(all, "below the default minimum of 3") || strings.Contains(all, "cannot carry") || !res.Fleet.CarriesLoad() {
		t.Errorf("one instance for 1 req/s: warnings %q, carries the load %v", res.Warnings, res.Fleet.CarriesLoad())
	}
	res, err = Compare(pricing.Default(), Workload{Rate: dec("2000"), Duration: 200 * time.Millisecond}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	vcpus := res.Fleet.Instances * res.Fleet.Type.VCPU
	raise := slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "raise MaxVCpuCount to at least "+strconv.Itoa(vcpus)) })
	if vcpus <= DefaultMaxVCPU || !raise {
		t.Errorf("2000 req/s of 200 ms CPU: %d vCPU, warnings %q", vcpus, res.Warnings)
	}
}

func TestCompareRejects(t *testing.T) {
	cat := pricing.Default()
	tests := []struct {
		name string
		w    Workload
		cfg  Config
	}{
		{"no duration", Workload{Rate: dec("1")}, Config{}},
		{"negative rate", Workload{Rate: dec("-1"), Duration: time.Millisecond}, Config{}},
		{"memory too large", Workload{Rate: dec("1"), Duration: time.Millisecond, MemoryMB: 40000}, Config{}},
		{"savings plan 1", Workload{Rate: dec("1"), Duration: time.Millisecond}, Config{SavingsPlan: dec("1")}},
		{"unknown type", Workload{Rate: dec("1"), Duration: time.Millisecond}, Config{InstanceType: "t3.micro"}},
		{"arch mismatch", Workload{Rate: dec("1"), Duration: time.Millisecond, Arch: pricing.ARM64}, Config{InstanceType: "m7i.large"}},
		{"unknown runtime", Workload{Rate: dec("1"), Duration: time.Millisecond, Runtime: "cobol"}, Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compare(cat, tt.w, tt.cfg); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestParsePeriod(t *testing.T) {
	for in, want := range map[string]string{"day": "24", "month": "730", "12h": "12", "720h": "720", "1.5h": "1.5", "week": "168"} {
		p, err := ParsePeriod(in)
		if err != nil || !p.Hours.Equal(dec(want)) {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %s h", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "fortnight", "-3h", "0h", "h"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) should fail", bad)
		}
	}
}

func TestOnDemandClimbsTheTiers(t *testing.T) {
	// 1000 req/s × 1 s × 10 GB for 730 h = 26.28 billion GB-s: all three x86 tiers.
	res, err := Compare(pricing.Default(), Workload{Rate: dec("1000"), Duration: time.Second, MemoryMB: 10240}, Config{Period: Month})
	if err != nil {
		t.Fatal(err)
	}
	od, _ := res.Option(OnDemand)
	// 6e9 × 0.0000166667 + 9e9 × 0.000015 + 11.28e9 × 0.0000133334 = 385,400.952; requests 525.6.
	if !od.Total.Equal(dec("385926.552")) {
		t.Errorf("on-demand = %s, want 385926.552", od.Total)
	}
	// The same usage in a day climbs day-sized tiers (bounds × 24/730), so it costs
	// exactly 24/730 of the month.
	day, err := Compare(pricing.Default(), Workload{Rate: dec("1000"), Duration: time.Second, MemoryMB: 10240}, Config{Period: Day})
	if err != nil {
		t.Fatal(err)
	}
	dd, _ := day.Option(OnDemand)
	if got, want := cents(dd.Total), cents(od.Total.Mul(dec("24")).Div(dec("730"))); got != want {
		t.Errorf("day = %s, want %s", got, want)
	}
}

func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"day", "month", "12h", "0.5h", "-1h", "h", "1e400h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		if !p.Hours.IsPositive() {
			t.Fatalf("ParsePeriod(%q) = %s hours", s, p.Hours)
		}
		_ = p.Months()
	})
}

func BenchmarkCompare(b *testing.B) {
	cat := pricing.Default()
	w := articleWorkload("100")
	for b.Loop() {
		if _, err := Compare(cat, w, Config{Period: Month}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareChart(b *testing.B) {
	cat := pricing.Default()
	res, err := Compare(cat, articleWorkload("100"), Config{Period: Month})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := CompareChart(cat, res, Config{Period: Month}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAboveClassicMemory: a function above 10,240 MB runs only on Managed
// Instances; on-demand and Provisioned Concurrency are shown as not available,
// are never the cheapest and have no break-even.
func TestAboveClassicMemory(t *testing.T) {
	res, err := Compare(pricing.Default(), Workload{Rate: dec("1"), Duration: 100 * time.Millisecond, MemoryMB: 16384}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	od, _ := res.Option(OnDemand)
	pc, _ := res.Option(Provisioned)
	if od.Unavailable == "" || pc.Unavailable == "" || res.Cheapest != ManagedInstances || res.BreakEvenRPS != nil {
		t.Fatalf("on-demand %q, provisioned %q, cheapest %s, break-even %v", od.Unavailable, pc.Unavailable, res.Cheapest, res.BreakEvenRPS)
	}
	if !strings.HasPrefix(res.Recommendation, "Only Managed Instances can run this function") || strings.Contains(res.Recommendation, "on-demand (") {
		t.Errorf("recommendation %q", res.Recommendation)
	}
	var b strings.Builder
	if err := WriteTable(&b, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "not available: on-demand and Provisioned Concurrency allow at most 10,240 MB") || strings.Contains(b.String(), "on-demand                │ Requests") {
		t.Errorf("table:\n%s", b.String())
	}
	// At 10,240 MB all three run it.
	res, err = Compare(pricing.Default(), Workload{Rate: dec("1"), Duration: 100 * time.Millisecond, MemoryMB: 10240}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if od, _ := res.Option(OnDemand); od.Unavailable != "" {
		t.Errorf("10,240 MB: on-demand %q", od.Unavailable)
	}
	if _, err := Compare(pricing.Default(), Workload{Rate: dec("1"), Duration: 901 * time.Second}, Config{}); err == nil {
		t.Error("a 901 s invocation was priced")
	}
}
