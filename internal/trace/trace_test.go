package trace

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The sample traces ship with the repository (data/traces, CC-BY 4.0).
const tracesDir = "../../data/traces"

func TestParseCSV(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want []Invocation
		err  string
	}{
		{
			name: "four fields, no cpu",
			in:   "2026-01-01T00:00:00Z,200,1024,api\n2026-01-01T00:00:00.5Z,12.5,512,worker\n",
			want: []Invocation{
				{Time: t0, DurationMs: 200, CPUMs: -1, MemoryMB: 1024, Function: "api"},
				{Time: t0.Add(500 * time.Millisecond), DurationMs: 12.5, CPUMs: -1, MemoryMB: 512, Function: "worker"},
			},
		},
		{
			name: "five fields with empty cpu, comments and blanks",
			in:   "# a comment\n\n1767225600,200,50,1024,api\n1767225601.25,100,,128,api\n",
			want: []Invocation{
				{Time: t0, DurationMs: 200, CPUMs: 50, MemoryMB: 1024, Function: "api"},
				{Time: t0.Add(1250 * time.Millisecond), DurationMs: 100, CPUMs: -1, MemoryMB: 128, Function: "api"},
			},
		},
		{
			name: "header in another order",
			in:   "function,memory_mb,timestamp,duration_ms\napi,256,2026-01-01T00:00:00Z,3\n",
			want: []Invocation{{Time: t0, DurationMs: 3, CPUMs: -1, MemoryMB: 256, Function: "api"}},
		},
		{
			name: "byte-order mark and CRLF",
			in:   "\ufefftimestamp,duration_ms,memory_mb,function\r\n0,5,128,a\r\n",
			want: []Invocation{{Time: time.Unix(0, 0).UTC(), DurationMs: 5, CPUMs: -1, MemoryMB: 128, Function: "a"}},
		},
		{name: "wrong field count", in: "1,2,3\n", err: "want 4 or 5 fields"},
		{name: "ragged", in: "1,2,128,a\n1,2,3,128,a\n", err: "want 4 fields"},
		{name: "negative duration", in: "1,-2,128,a\n", err: "duration"},
		{name: "bad memory", in: "1,2,0,a\n", err: "memory"},
		{name: "bad timestamp", in: "yesterday,2,128,a\n", err: "timestamp"},
		{name: "empty function", in: "1,2,128, \n", err: "empty function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("invocations (-want +got):\n%s", d)
			}
		})
	}
}

func TestBinInvocations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	invs := []Invocation{
		{Time: t0, DurationMs: 100.2, CPUMs: -1, MemoryMB: 1024, Function: "a"},
		{Time: t0.Add(10 * time.Second), DurationMs: 200, CPUMs: 20, MemoryMB: 2048, Function: "a"},
		{Time: t0.Add(2 * time.Minute), DurationMs: 0, CPUMs: -1, MemoryMB: 1024, Function: "b"},
	}
	s, err := BinInvocations(invs, BinOptions{CPUFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || !s.Start.Equal(t0.Truncate(time.Minute)) {
		t.Fatalf("len %d start %v", s.Len(), s.Start)
	}
	want := &Series{
		Start: t0.Truncate(time.Minute), Step: time.Minute, MemoryMB: 2048, Functions: []string{"a", "b"},
		Count:  []uint32{2, 0, 1},
		BusyMs: []float64{300.2, 0, 0},
		CPUMs:  []float64{50.1 + 20, 0, 0},
		GBs:    []float64{0.101*1 + 0.2*2, 0, 0.001},
	}
	if d := cmp.Diff(want, s, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); d != "" {
		t.Fatalf("series (-want +got):\n%s", d)
	}
	s, err = BinInvocations(invs, BinOptions{Function: "b", MemoryMB: 512, Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 1 || s.Len() != 1 || s.MemoryMB != 512 {
		t.Fatalf("function filter: total %d len %d mem %d", s.Total(), s.Len(), s.MemoryMB)
	}
	if _, err := BinInvocations(invs, BinOptions{Function: "c"}); err == nil {
		t.Fatal("unknown function accepted")
	}
}

func loadSample(t testing.TB, name string) *Azure {
	t.Helper()
	a, err := LoadAzure(filepath.Join(tracesDir, name))
	if err != nil {
		t.Fatalf("sample trace: %v", err)
	}
	return a
}

func TestAzureSamples(t *testing.T) {
	tests := []struct {
		dir            string
		functions      int
		first, minutes int
		total          uint64
	}{
		// Totals from the folders' READMEs.
		{"azure2019_sample500_8h", 500, 480, 480, 3_037_902},
		{"azure2019_top10_24h", 10, 1, 1440, 13_037_064},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			a := loadSample(t, tc.dir)
			if len(a.Functions) != tc.functions || a.FirstMinute != tc.first || a.Minutes != tc.minutes {
				t.Fatalf("functions %d first %d minutes %d", len(a.Functions), a.FirstMinute, a.Minutes)
			}
			if got := a.Total(); got != tc.total {
				t.Fatalf("total %d, want %d", got, tc.total)
			}
			for i := range a.Functions {
				f := &a.Functions[i]
				if f.Duration == nil || f.Memory == nil {
					t.Fatalf("function %s lacks its duration or memory row", f.Function)
				}
				if m := f.MemoryMB(); m < 128 || m%128 != 0 {
					t.Fatalf("function %s memory %d", f.Function, m)
				}
			}
			for _, step := range []time.Duration{time.Second, 15 * time.Second, time.Minute, 5 * time.Minute} {
				s, err := BinAzure(a, BinOptions{Step: step})
				if err != nil {
					t.Fatal(err)
				}
				if s.Total() != tc.total {
					t.Fatalf("step %v: binned total %d, want %d", step, s.Total(), tc.total)
				}
				if s.Duration() < time.Duration(tc.minutes)*time.Minute {
					t.Fatalf("step %v: series covers %v", step, s.Duration())
				}
			}
		})
	}
}

func TestAzureTop10Function(t *testing.T) {
	a := loadSample(t, "azure2019_top10_24h")
	// 308ecb6c: 6,171,429 invocations a day, 14 ms average, 184 MB average memory (README).
	s, err := BinAzure(a, BinOptions{Function: "308ecb6c"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 6_171_429 || len(s.Functions) != 1 {
		t.Fatalf("total %d functions %v", s.Total(), s.Functions)
	}
	var busy float64
	for _, b := range s.BusyMs {
		busy += b
	}
	if want := 14.0 * 6_171_429; busy != want {
		t.Fatalf("busy ms %v, want %v", busy, want)
	}
	if _, err := BinAzure(a, BinOptions{Step: 7 * time.Second}); err == nil {
		t.Fatal("7s step accepted for a per-minute trace")
	}
}

func TestAzureParseErrors(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"empty", "", "empty file"},
		{"no minutes", "HashOwner,HashApp,HashFunction,Trigger\n", "minute columns"},
		{"gap in labels", "HashOwner,HashApp,HashFunction,Trigger,1,3\n", "not consecutive"},
		{"negative count", "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,-1\n", "count"},
		{"duplicate", "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,1\no,a,f,http,2\n", "twice"},
		{"short row", "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1\n", "fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAzureInvocations(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.err)
			}
		})
	}
	if _, err := ParseAzureDurations(strings.NewReader("HashOwner,HashApp\n")); err == nil {
		t.Fatal("durations header without columns accepted")
	}
	if _, err := ParseAzureMemory(strings.NewReader("HashFunction,HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\nf,o,a,1,NaN,1,1,1,1,1,1,1,1\n")); err == nil {
		t.Fatal("NaN memory accepted")
	}
}

func TestLongInvocationsSpreadOverSteps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	invs := []Invocation{
		// 150 s from 00:00:30: half of minute 0, all of minutes 1 and 2.
		{Time: t0.Add(30 * time.Second), DurationMs: 150_000, CPUMs: 75_000, MemoryMB: 1024, Function: "long"},
		// 10 minutes from 00:03:00 runs past the trace's end (00:04): only minute 3 stays.
		{Time: t0.Add(3 * time.Minute), DurationMs: 600_000, CPUMs: -1, MemoryMB: 1024, Function: "long"},
	}
	s, err := BinInvocations(invs, BinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-6 })
	if d := cmp.Diff([]float64{30_000, 60_000, 60_000, 60_000}, s.BusyMs, approx); d != "" {
		t.Fatalf("busy ms (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]float64{15_000, 30_000, 30_000, 60_000}, s.CPUMs, approx); d != "" {
		t.Fatalf("cpu ms (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]uint32{1, 0, 0, 1}, s.Count); d != "" {
		t.Fatalf("counts (-want +got):\n%s", d)
	}
	if s.GBs[0] != 150 || s.GBs[3] != 600 {
		t.Fatalf("GB-s billed in the start step: %v", s.GBs)
	}

	// An Azure function of 150 s on average, 2 invocations in its first minute,
	// binned in 30-second steps: both start at 00:00 and run 5 steps.
	a := &Azure{FirstMinute: 0, Minutes: 4, Functions: []AzureFunction{{
		AzureKey: AzureKey{Function: "f"}, Counts: []uint32{2, 0, 0, 0},
		Duration: &AzureDuration{AverageMs: 150_000},
	}}}
	s, err = BinAzure(a, BinOptions{Step: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 1 invocation per 30-second step of minute 0: steps 0..4 and 1..5.
	want := []float64{30_000, 60_000, 60_000, 60_000, 60_000, 30_000, 0, 0}
	if d := cmp.Diff(want, s.BusyMs, approx); d != "" {
		t.Fatalf("azure busy ms (-want +got):\n%s", d)
	}
}
