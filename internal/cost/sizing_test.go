package cost

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

func TestRuntimeConcurrency(t *testing.T) {
	tests := []struct {
		runtime string
		family  string
		perVCPU int
	}{
		{"nodejs22.x", "nodejs", 64},
		{"node", "nodejs", 64},
		{"", "nodejs", 64},
		{"python3.13", "python", 16},
		{"java21", "java", 32},
		{"dotnet8", "dotnet", 32},
		{"provided.al2023", "provided", 8},
		{"rust", "provided", 8},
	}
	for _, tt := range tests {
		got, err := RuntimeConcurrency(tt.runtime)
		if err != nil || got.Family != tt.family || got.PerVCPU != tt.perVCPU {
			t.Errorf("RuntimeConcurrency(%q) = %+v, %v; want %s %d", tt.runtime, got, err, tt.family, tt.perVCPU)
		}
	}
	if _, err := RuntimeConcurrency("ruby3.3"); err == nil {
		t.Error("ruby is not a Managed Instances runtime")
	}
}

func TestSizeFleet(t *testing.T) {
	cat := pricing.Default()
	type want struct {
		Type            string
		Instances       int
		Env             Environment
		EnvsPerInstance int
		SlotEnvs        int
		CPUEnvs         int
		Environments    int
		Binding         string
		Carries         bool
	}
	tests := []struct {
		name string
		req  FleetRequest
		want want
	}{
		{
			name: "CPU-bound article load picks the cheapest vCPU, fewest instances on a tie",
			req:  FleetRequest{Rate: dec("100"), Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64},
			// 100 × 0.2 s = 20 vCPU of work, 40 at 50 %; c6i is the cheapest x86 vCPU;
			// 20 × large, 10 × xlarge and 5 × 2xlarge cost the same.
			want: want{"c6i.2xlarge", 5, Environment{1, 2, 64}, 8, 1, 40, 40, "CPU", true},
		},
		{
			name: "IO-bound article load is the minimum fleet",
			req:  FleetRequest{Rate: dec("100"), Duration: 200 * time.Millisecond, CPUTime: 15 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64},
			want: want{"c6i.large", 3, Environment{1, 2, 64}, 2, 1, 3, 3, "minimum fleet", true},
		},
		{
			name: "python's 16 per vCPU makes concurrency bind",
			req:  FleetRequest{Rate: dec("100"), Duration: time.Second, CPUTime: 10 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64, Runtime: "python3.13"},
			// 100 in flight, 200 slots at 50 %, 16 per environment → 13 environments, 2 per c6i.large.
			want: want{"c6i.large", 7, Environment{1, 2, 16}, 2, 13, 2, 13, "concurrency", true},
		},
		{
			name: "given type, sized count",
			req:  FleetRequest{Rate: dec("100"), Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64, InstanceType: "m7i.large"},
			// m family: 4 GiB per vCPU, so a 1 GB function gets a 1 vCPU, 4 GiB environment.
			want: want{"m7i.large", 20, Environment{1, 4, 64}, 2, 1, 40, 40, "CPU", true},
		},
		{
			name: "given type and count that are too small",
			req:  FleetRequest{Rate: dec("100"), Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64, InstanceType: "m7i.large", Instances: 3},
			want: want{"m7i.large", 3, Environment{1, 4, 64}, 2, 1, 40, 40, "CPU", false},
		},
		{
			name: "given count, cheapest type that carries it",
			req:  FleetRequest{Rate: dec("20"), Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64, Instances: 3},
			// 4 vCPU of work at 50 % → 8 environments of 1 vCPU; 3 × c6i.xlarge hold 12.
			want: want{"c6i.xlarge", 3, Environment{1, 2, 64}, 4, 1, 8, 8, "minimum fleet", true},
		},
		{
			name: "8 GB function fits the m family's ratio best",
			req:  FleetRequest{Rate: dec("1"), Duration: 100 * time.Millisecond, MemoryMB: 8192, Arch: pricing.X86_64},
			want: want{"m6i.large", 3, Environment{2, 8, 128}, 1, 1, 1, 3, "minimum fleet", true},
		},
		{
			name: "arm64 picks Graviton",
			req:  FleetRequest{Rate: dec("100"), Duration: 200 * time.Millisecond, CPUTime: 15 * time.Millisecond, MemoryMB: 2048, Arch: pricing.ARM64},
			want: want{"c6g.large", 3, Environment{1, 2, 64}, 2, 1, 3, 3, "minimum fleet", true},
		},
		{
			name: "no traffic still pays the minimum fleet",
			req:  FleetRequest{Rate: decimal.Zero, Duration: 200 * time.Millisecond, MemoryMB: 1024, Arch: pricing.X86_64},
			want: want{"c6i.large", 3, Environment{1, 2, 64}, 2, 0, 0, 3, "minimum fleet", true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := SizeFleet(cat, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := want{f.Type.Name, f.Instances, f.Env, f.EnvsPerInstance, f.SlotEnvironments, f.CPUEnvironments, f.Environments, f.Binding, f.CarriesLoad()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fleet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSizeFleetIsCheapestThatFits(t *testing.T) {
	cat := pricing.Default()
	req := FleetRequest{Rate: dec("250"), Duration: 300 * time.Millisecond, CPUTime: 40 * time.Millisecond, MemoryMB: 3008, Arch: pricing.ARM64, Runtime: "java21"}
	best, err := SizeFleet(cat, req)
	if err != nil {
		t.Fatal(err)
	}
	if !best.CarriesLoad() || best.Instances < MinInstances {
		t.Fatalf("best fleet %d × %s does not carry the load", best.Instances, best.Type.Name)
	}
	for _, it := range cat.InstanceTypes(pricing.ARM64) {
		r := req
		r.InstanceType = it.Name
		f, err := SizeFleet(cat, r)
		if err != nil {
			continue // does not fit the environment
		}
		if f.Hourly().LessThan(best.Hourly()) {
			t.Errorf("%d × %s costs %s/h, less than the chosen %d × %s at %s/h", f.Instances, it.Name, f.Hourly(), best.Instances, best.Type.Name, best.Hourly())
		}
	}
}

func TestErlangB(t *testing.T) {
	tests := []struct {
		a    float64
		c    int
		want float64
	}{
		{20, 20, 0.1589},
		{20, 25, 0.0502},
		{20, 30, 0.0085},
		{1, 1, 0.5},
		{2, 0, 1},
		{0, 5, 0},
	}
	for _, tt := range tests {
		if got := ErlangB(tt.a, tt.c); math.Abs(got-tt.want) > 5e-5 {
			t.Errorf("ErlangB(%v, %d) = %.5f, want %.4f", tt.a, tt.c, got, tt.want)
		}
	}
}

func TestSizeProvisioned(t *testing.T) {
	tests := []struct {
		name   string
		rate   string
		dur    time.Duration
		fixed  int
		target float64
		want   int
	}{
		{"article load at 1 %", "100", 200 * time.Millisecond, 0, 0, 30},
		{"article load at 5 %", "100", 200 * time.Millisecond, 0, 0.05, 26},
		{"low load", "5", 200 * time.Millisecond, 0, 0, 5},
		{"no load", "0", 200 * time.Millisecond, 0, 0, 0},
		{"fixed", "100", 200 * time.Millisecond, 12, 0, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := SizeProvisioned(dec(tt.rate), tt.dur, tt.fixed, tt.target)
			if p.Provisioned != tt.want {
				t.Errorf("provisioned = %d, want %d (spill %.4f)", p.Provisioned, tt.want, p.SpillFraction)
			}
			if p.Sized && p.Provisioned > 0 && p.SpillFraction > p.SpillTarget {
				t.Errorf("spill %.4f above target %.4f", p.SpillFraction, p.SpillTarget)
			}
			if p.Sized && p.Provisioned > 1 && ErlangB(p.OfferedLoad, p.Provisioned-1) <= p.SpillTarget {
				t.Errorf("%d is not the smallest level", p.Provisioned)
			}
		})
	}
}

// TestEnvConcurrencyGiven: a PerExecutionEnvironmentMaxConcurrency below the
// runtime's default needs more environments for the same requests in flight.
func TestEnvConcurrencyGiven(t *testing.T) {
	w := Workload{Rate: decimal.NewFromInt(100), Duration: 200 * time.Millisecond, CPUTime: 15 * time.Millisecond, MemoryMB: 1024}
	def, err := Compare(pricing.Default(), w, Config{InstanceType: "c6i.large"})
	if err != nil {
		t.Fatal(err)
	}
	one, err := Compare(pricing.Default(), w, Config{InstanceType: "c6i.large", EnvConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	// 100 req/s × 0.2 s = 20 in flight; at the 50 % target 40 slots: 40
	// environments of one slot, two per c6i.large.
	if def.Fleet.Instances != 3 || one.Fleet.Env.Concurrency != 1 || one.Fleet.SlotEnvironments != 40 || one.Fleet.Instances != 20 {
		t.Errorf("default %d instances; concurrency 1: %d per environment, %d environments for slots, %d instances; want 3, then 1, 40, 20",
			def.Fleet.Instances, one.Fleet.Env.Concurrency, one.Fleet.SlotEnvironments, one.Fleet.Instances)
	}
	if _, err := Compare(pricing.Default(), w, Config{EnvConcurrency: 1601}); err == nil {
		t.Error("a concurrency of 1601 was accepted")
	}
}
