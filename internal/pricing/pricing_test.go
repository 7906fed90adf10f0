package pricing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestDefaultCatalogue(t *testing.T) {
	c := Default()
	if c.Date == "" || c.Version == "" || c.Region != "us-east-1" || c.Currency != "USD" {
		t.Fatalf("catalogue header: %+v", c)
	}
	tests := []struct {
		name   string
		vcpu   int
		mem    int
		hourly string
		arch   Arch
	}{
		{"m7i.large", 2, 8, "0.1008", X86_64},
		{"m7i.xlarge", 4, 16, "0.2016", X86_64},
		{"c7i.large", 2, 4, "0.08925", X86_64},
		{"r7i.large", 2, 16, "0.1323", X86_64},
		{"m7g.large", 2, 8, "0.0816", ARM64},
		{"c7g.large", 2, 4, "0.0725", ARM64},
		{"c7g.xlarge", 4, 8, "0.145", ARM64},
		{"r7g.large", 2, 16, "0.1071", ARM64},
		{"r7g.xlarge", 4, 32, "0.2142", ARM64},
		{"m6g.large", 2, 8, "0.077", ARM64},
		{"c8g.large", 2, 4, "0.07976", ARM64},
		{"m8g.large", 2, 8, "0.08976", ARM64},
		{"r8g.large", 2, 16, "0.11782", ARM64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := c.InstanceType(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if it.VCPU != tt.vcpu || it.MemoryGiB != tt.mem || it.Arch != tt.arch || !it.OnDemandHourly.Equal(d(tt.hourly)) {
				t.Errorf("got %+v, want %d vCPU %d GiB %s %s", it, tt.vcpu, tt.mem, tt.hourly, tt.arch)
			}
		})
	}
	// Every type is C, M or R, .large or bigger, with the family's memory ratio.
	ratio := map[string]int{"c": 2, "m": 4, "r": 8}
	for _, it := range c.ManagedInstances.InstanceTypes {
		want, ok := ratio[it.Family()]
		if !ok {
			t.Errorf("%s: family %q is not C, M or R", it.Name, it.Family())
		}
		if it.MemoryGiBPerVCPU() != want {
			t.Errorf("%s: %d GiB per vCPU, want %d", it.Name, it.MemoryGiBPerVCPU(), want)
		}
		if it.VCPU < 2 || strings.Contains(it.Name, "medium") {
			t.Errorf("%s is smaller than .large", it.Name)
		}
	}
	if len(c.InstanceTypes(X86_64)) == 0 || len(c.InstanceTypes(ARM64)) == 0 {
		t.Error("both architectures need instance types")
	}
	if _, err := c.InstanceType("t3.micro"); err == nil {
		t.Error("t3.micro should not be in the catalogue")
	}
}

func TestRequestAndDurationArticleFigures(t *testing.T) {
	c := Default()
	x86, err := c.Rates(X86_64)
	if err != nil {
		t.Fatal(err)
	}
	// 100 req/s for a day: 8,640,000 requests, 200 ms at 1024 MB each.
	req := c.Lambda.RequestCost(d("8640000"))
	if !req.Equal(d("1.728")) {
		t.Errorf("request cost = %s, want 1.728", req)
	}
	gbs := GBSeconds(d("8640000").Mul(d("200")), 1024)
	if !gbs.Equal(d("1728000")) {
		t.Errorf("GB-s = %s, want 1728000", gbs)
	}
	dur := x86.DurationCost(gbs, decimal.Zero, Months(d("24")))
	if !dur.Equal(d("28.8000576")) {
		t.Errorf("duration cost = %s, want 28.8000576", dur)
	}
	if got := FormatUSD(req.Add(dur)); got != "$30.53" {
		t.Errorf("day total = %s, want $30.53", got)
	}
}

func TestDurationTiers(t *testing.T) {
	c := Default()
	x86, _ := c.Rates(X86_64)
	arm, _ := c.Rates(ARM64)
	one := d("1")
	tests := []struct {
		name   string
		rates  ArchRates
		gbs    string
		used   string
		months decimal.Decimal
		want   string
	}{
		{"x86 first tier", x86, "1000000", "0", one, "16.6667"},
		{"x86 exactly 6B", x86, "6000000000", "0", one, "100000.2"},
		{"x86 crosses into tier 2", x86, "7000000000", "0", one, "115000.2"},                 // 6e9×p1 + 1e9×0.000015
		{"x86 all three tiers", x86, "16000000000", "0", one, "248333.6"},                    // 100000.2 + 9e9×0.000015 + 1e9×0.0000133334
		{"x86 after usage already in tier 2", x86, "1000000000", "6500000000", one, "15000"}, // entirely tier 2
		{"x86 straddling with prior usage", x86, "2000000000", "5000000000", one, "31666.7"}, // 1e9×p1 + 1e9×p2
		{"arm first tier", arm, "1000000", "0", one, "13.3334"},
		{"arm tier 2 starts at 7.5B", arm, "8500000000", "0", one, "112000.6"},              // 7.5e9×0.0000133334 + 1e9×0.0000120001
		{"arm tier 3 above 18.75B", arm, "19750000000", "0", one, "245668.325"},             // 100000.5 + 11.25e9×0.0000120001 + 1e9×0.0000106667
		{"tier bounds prorate to a day", x86, "197260274", "0", Months(d("24")), "3287.68"}, // a day's share of 6B is 197,260,273.97…
		{"zero usage", x86, "0", "0", one, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rates.DurationCost(d(tt.gbs), d(tt.used), tt.months)
			if tt.name == "tier bounds prorate to a day" {
				// 197,260,273.97… GB-s at the first price, the remaining ~0.03 GB-s at the second.
				if RoundCents(got).String() != tt.want {
					t.Errorf("got %s (%s), want %s", got, RoundCents(got), tt.want)
				}
				below := tt.rates.DurationCost(d(tt.gbs), decimal.Zero, one)
				if !got.LessThan(below) {
					t.Errorf("day pricing %s should be below month pricing %s once past the prorated bound", got, below)
				}
				return
			}
			if !got.Equal(d(tt.want)) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBilledMs(t *testing.T) {
	l := Default().Lambda
	tests := []struct {
		in   time.Duration
		want int64
	}{
		{200 * time.Millisecond, 200},
		{200*time.Millisecond + time.Nanosecond, 201},
		{200400 * time.Microsecond, 201},
		{time.Microsecond, 1},
		{0, 0},
		{-time.Second, 0},
	}
	for _, tt := range tests {
		if got := l.BilledMs(tt.in); got != tt.want {
			t.Errorf("BilledMs(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
	l.BillingGranularityMs = 100
	if got := l.BilledMs(201 * time.Millisecond); got != 300 {
		t.Errorf("100 ms granularity: BilledMs(201ms) = %d, want 300", got)
	}
}

func TestFreeTierProrated(t *testing.T) {
	l := Default().Lambda
	m := l.FreeTierFor(decimal.NewFromInt(1))
	if !m.RequestsPerMonth.Equal(d("1000000")) || !m.GBSecondsPerMonth.Equal(d("400000")) {
		t.Errorf("month free tier = %+v", m)
	}
	day := l.FreeTierFor(Months(d("24")))
	if got := day.GBSecondsPerMonth.Round(2).String(); got != "13150.68" {
		t.Errorf("a day's GB-s allowance = %s, want 13150.68", got)
	}
}

func TestManagedInstancesHourly(t *testing.T) {
	c := Default()
	m7i, _ := c.InstanceType("m7i.large")
	ec2, fee := c.ManagedInstances.Hourly(m7i, decimal.Zero)
	if !ec2.Equal(d("0.1008")) || !fee.Equal(d("0.01512")) {
		t.Errorf("no discount: ec2 %s fee %s", ec2, fee)
	}
	// A 30 % Savings Plan cuts the EC2 part only; the fee stays on the on-demand price.
	ec2, fee = c.ManagedInstances.Hourly(m7i, d("0.3"))
	if !ec2.Equal(d("0.07056")) || !fee.Equal(d("0.01512")) {
		t.Errorf("30%% savings plan: ec2 %s fee %s", ec2, fee)
	}
	m7g, _ := c.InstanceType("m7g.large")
	_, fee = c.ManagedInstances.Hourly(m7g, decimal.Zero)
	if !fee.Equal(d("0.01224")) {
		t.Errorf("m7g.large fee = %s, want 0.01224", fee)
	}
	if got := c.ManagedInstances.RequestCost(d("8640000")); !got.Equal(d("1.728")) {
		t.Errorf("MI requests = %s", got)
	}
}

func TestRounding(t *testing.T) {
	tests := []struct{ in, round, usd string }{
		{"30.5280576", "30.53", "$30.53"},
		{"10.07424", "10.07", "$10.07"},
		{"0.005", "0.01", "$0.01"},
		{"0.0049999", "0", "$0.00"},
		{"2.675", "2.68", "$2.68"},
		{"1234567.891", "1234567.89", "$1,234,567.89"},
		{"999.995", "1000", "$1,000.00"},
		{"-0.005", "0", "$0.00"},
		{"-1.006", "-1.01", "-$1.01"},
	}
	for _, tt := range tests {
		if got := RoundCents(d(tt.in)); !got.Equal(d(tt.round)) {
			t.Errorf("RoundCents(%s) = %s, want %s", tt.in, got, tt.round)
		}
		if got := FormatUSD(d(tt.in)); got != tt.usd {
			t.Errorf("FormatUSD(%s) = %s, want %s", tt.in, got, tt.usd)
		}
	}
}

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{"x86_64": X86_64, "amd64": X86_64, "arm64": ARM64, "AArch64": ARM64} {
		got, err := ParseArch(in)
		if err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseArch("riscv"); err == nil {
		t.Error("riscv should be rejected")
	}
}

func TestLoadOverride(t *testing.T) {
	c := Default()
	c.Version = "test-1"
	c.Date = "2027-01-01"
	c.ManagedInstances.ManagementFee = d("0.10")
	c.ManagedInstances.InstanceTypes = c.ManagedInstances.InstanceTypes[:3]
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "test-1" || !got.ManagedInstances.ManagementFee.Equal(d("0.10")) || len(got.ManagedInstances.InstanceTypes) != 3 {
		t.Errorf("loaded %+v", got)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file should fail")
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Catalog)
		want   string
	}{
		{"schema", func(c *Catalog) { c.Schema = 2 }, "schema"},
		{"date", func(c *Catalog) { c.Date = "yesterday" }, "date"},
		{"negative request price", func(c *Catalog) { c.Lambda.RequestPerMillion = d("-1") }, "request_per_million"},
		{"granularity", func(c *Catalog) { c.Lambda.BillingGranularityMs = 0 }, "granularity"},
		{"missing arch", func(c *Catalog) { delete(c.Lambda.Architectures, ARM64) }, "arm64"},
		{"unbounded middle tier", func(c *Catalog) {
			r := c.Lambda.Architectures[X86_64]
			r.DurationTiers = []Tier{{PerGBSecond: d("1")}, {PerGBSecond: d("1")}}
			c.Lambda.Architectures[X86_64] = r
		}, "unbounded"},
		{"decreasing tiers", func(c *Catalog) {
			r := c.Lambda.Architectures[X86_64]
			a, b := d("10"), d("5")
			r.DurationTiers = []Tier{{UpToGBSeconds: &a, PerGBSecond: d("1")}, {UpToGBSeconds: &b, PerGBSecond: d("1")}, {PerGBSecond: d("1")}}
			c.Lambda.Architectures[X86_64] = r
		}, "increase"},
		{"fee above 1", func(c *Catalog) { c.ManagedInstances.ManagementFee = d("15") }, "management_fee"},
		{"duplicate type", func(c *Catalog) {
			c.ManagedInstances.InstanceTypes = append(c.ManagedInstances.InstanceTypes, c.ManagedInstances.InstanceTypes[0])
		}, "duplicate"},
		{"zero price", func(c *Catalog) { c.ManagedInstances.InstanceTypes[0].OnDemandHourly = decimal.Zero }, "on_demand_hourly"},
		{"no types", func(c *Catalog) { c.ManagedInstances.InstanceTypes = nil }, "instance_types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	data := strings.Replace(string(embedded), `"region"`, `"regoin"`, 1)
	if _, err := Parse([]byte(data)); err == nil {
		t.Error("a misspelt field should be an error")
	}
	if _, err := Parse(append(append([]byte{}, embedded...), []byte(" {}")...)); err == nil {
		t.Error("trailing data should be an error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(embedded)
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{"schema":1,"version":"x","date":"2026-01-01","currency":"USD","lambda":{"billing_granularity_ms":1,"architectures":{}}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// A catalogue that parses must be usable without panics.
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid catalogue: %v", err)
		}
		for _, a := range []Arch{X86_64, ARM64} {
			r, err := c.Rates(a)
			if err != nil {
				t.Fatal(err)
			}
			got := r.DurationCost(decimal.NewFromInt(1e12), decimal.Zero, decimal.NewFromInt(1))
			if got.IsNegative() {
				t.Fatalf("negative duration cost %s", got)
			}
		}
		for _, it := range c.ManagedInstances.InstanceTypes {
			ec2, fee := c.ManagedInstances.Hourly(it, decimal.Zero)
			if ec2.IsNegative() || fee.IsNegative() {
				t.Fatalf("negative hourly cost for %s", it.Name)
			}
		}
	})
}
