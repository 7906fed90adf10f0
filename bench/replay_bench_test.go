// Package bench holds shoal's benchmarks; each records its results beside it.
package bench

import (
	"math"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/cost/replay"
	"github.com/shoal-dev/shoal/internal/trace"
)

// monthAtOneSecond builds 30 days of traffic at one-second resolution
// (2,592,000 steps): a daily cycle between about 20 and 180 requests a second,
// deterministic jitter, and a ten-minute burst to three times the rate every
// six hours, for a 1024 MB function of 200 ms (40 ms of CPU).
func monthAtOneSecond() *trace.Series {
	const steps = 30 * 24 * 3600
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := trace.NewSeries(start, time.Second, steps)
	s.MemoryMB = 1024
	s.Functions = []string{"api"}
	gbs := trace.BilledGBs(200, 1024)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < steps; i++ {
		day := float64(i%86400) / 86400
		rate := 100 + 80*math.Sin(2*math.Pi*(day-0.25))
		if i%(6*3600) < 600 {
			rate *= 3
		}
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		jitter := float64(x%1000)/1000 - 0.5 // ±50 %
		n := uint32(math.Max(0, math.Round(rate*(1+jitter*0.5))))
		s.Count[i] = n
		s.BusyMs[i] = float64(n) * 200
		s.CPUMs[i] = float64(n) * 40
		s.GBs[i] = float64(n) * gbs
	}
	return s
}

// BenchmarkReplayMonthOneSecond replays 30 days at one-second resolution through
// all four compute options. The target is under 2 seconds per replay.
func BenchmarkReplayMonthOneSecond(b *testing.B) {
	s := monthAtOneSecond()
	b.ReportAllocs()
	var r *replay.Result
	for b.Loop() {
		var err error
		r, err = replay.Run(s, replay.Config{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Len()), "steps")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Len()), "ns/step")
	mi := r.Option(replay.ManagedInstances)
	b.ReportMetric(float64(mi.PeakInstances), "mi-peak-instances")
	b.ReportMetric(float64(mi.Throttles), "mi-throttles")
}
