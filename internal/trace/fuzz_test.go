package trace

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedFromFile adds the first lines of a sample file to the corpus.
func seedFromFile(f *testing.F, path string, lines int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	parts := bytes.SplitAfterN(b, []byte("\n"), lines+1)
	if len(parts) > lines {
		parts = parts[:lines]
	}
	f.Add(bytes.Join(parts, nil))
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("2026-01-01T00:00:00Z,200,1024,api\n"))
	f.Add([]byte("timestamp,duration_ms,cpu_ms,memory_mb,function\n1.5,10,,128,a\n2,0,0,32768,b\n"))
	f.Add([]byte("# c\n\n1,2,3,128,a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		invs, err := ParseCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, inv := range invs {
			if inv.DurationMs < 0 || inv.MemoryMB < 1 || inv.MemoryMB > MaxMemoryMB || inv.Function == "" {
				t.Fatalf("accepted invalid row %+v", inv)
			}
		}
		if len(invs) == 0 {
			return
		}
		s, err := BinInvocations(invs, BinOptions{Step: time.Hour})
		if err != nil {
			return
		}
		if s.Total() != uint64(len(invs)) {
			t.Fatalf("binned %d of %d invocations", s.Total(), len(invs))
		}
	})
}

func FuzzParseAzureInvocations(f *testing.F) {
	f.Add([]byte("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,3,0\n"))
	seedFromFile(f, filepath.Join(tracesDir, "azure2019_top10_24h", "invocations.csv"), 3)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAzureInvocations(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range a.Functions {
			if len(a.Functions[i].Counts) != a.Minutes {
				t.Fatalf("function %d has %d counts for %d minutes", i, len(a.Functions[i].Counts), a.Minutes)
			}
			a.Functions[i].Duration = &AzureDuration{AverageMs: 10}
		}
		if len(a.Functions) == 0 {
			return
		}
		s, err := BinAzure(a, BinOptions{Step: 30 * time.Second})
		if err != nil {
			t.Fatalf("bin of a parsed trace: %v", err)
		}
		if s.Total() != a.Total() {
			t.Fatalf("binned %d of %d invocations", s.Total(), a.Total())
		}
	})
}

func FuzzParseAzureDurations(f *testing.F) {
	seedFromFile(f, filepath.Join(tracesDir, "azure2019_top10_24h", "durations.csv"), 3)
	f.Add([]byte("HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\no,a,f,1,2,0,3,0,0,1,1,1,3,3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAzureDurations(bytes.NewReader(data))
		if err != nil {
			return
		}
		for k, d := range m {
			if k.Function == "" || d.AverageMs < 0 || d.Count < 0 {
				t.Fatalf("accepted invalid row %v %+v", k, d)
			}
		}
	})
}

func FuzzParseAzureMemory(f *testing.F) {
	seedFromFile(f, filepath.Join(tracesDir, "azure2019_top10_24h", "memory.csv"), 3)
	seedFromFile(f, filepath.Join(tracesDir, "azure2019_sample500_8h", "memory.csv"), 3)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAzureMemory(bytes.NewReader(data))
		if err != nil {
			return
		}
		for k, v := range m {
			fn := AzureFunction{AzureKey: k, Memory: &v}
			if mb := fn.MemoryMB(); mb < 128 || mb > MaxMemoryMB {
				t.Fatalf("memory %d MB from %+v", mb, v)
			}
		}
	})
}
