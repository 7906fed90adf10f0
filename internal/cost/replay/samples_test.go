package replay

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/trace"
)

func loadAzure(t *testing.T, name string) *trace.Azure {
	t.Helper()
	a, err := trace.LoadAzure(filepath.Join("../../../data/traces", name))
	if err != nil {
		t.Fatalf("sample trace: %v", err)
	}
	return a
}

func TestRealSamples(t *testing.T) {
	tests := []struct {
		dir  string
		opt  trace.BinOptions
		want uint64
	}{
		{"azure2019_top10_24h", trace.BinOptions{}, 13_037_064},
		{"azure2019_top10_24h", trace.BinOptions{Step: time.Second, Function: "308ecb6c"}, 6_171_429},
		{"azure2019_top10_24h", trace.BinOptions{Function: "e72c1540", CPUFraction: 0.2}, 575_863},
		{"azure2019_sample500_8h", trace.BinOptions{MemoryMB: 512}, 3_037_902},
	}
	for _, tc := range tests {
		t.Run(tc.dir+"/"+tc.opt.Function+"/"+tc.opt.Step.String(), func(t *testing.T) {
			s, err := trace.BinAzure(loadAzure(t, tc.dir), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			r := run(t, s, Config{})
			if r.Invocations != tc.want {
				t.Fatalf("replayed %d invocations; the trace holds %d", r.Invocations, tc.want)
			}
			for _, o := range r.Options {
				if !o.Total().IsPositive() {
					t.Errorf("%s costs %s", o.Compute, o.Total())
				}
				if o.Compute == ManagedInstances && (o.PeakInstances < 3 || o.InstanceHours < 3*s.Duration().Hours()) {
					t.Errorf("managed: peak %d instances, %v instance-hours over %v", o.PeakInstances, o.InstanceHours, s.Duration())
				}
			}
			// The bill's requests are the invocations served.
			for _, o := range r.Options[:3] {
				for _, it := range o.Bill.Items {
					if it.Unit == "requests" && it.Quantity.IntPart() != int64(o.Invocations) {
						t.Errorf("%s bills %s requests for %d invocations", o.Compute, it.Quantity, o.Invocations)
					}
				}
			}
			last := r.Series[len(r.Series)-1]
			var n uint64
			for _, p := range r.Series {
				n += p.Invocations
			}
			if n != tc.want || last.Cost[0] <= 0 {
				t.Fatalf("time series holds %d invocations, last point %+v", n, last)
			}
			t.Logf("%s: cheapest %s; on-demand %s, PC %s, MI %s (peak %d instances, %d throttles), hybrid %s",
				tc.dir, r.Cheapest, r.Options[0].Total().StringFixed(2), r.Options[1].Total().StringFixed(2),
				r.Options[2].Total().StringFixed(2), r.Options[2].PeakInstances, r.Options[2].Throttles, r.Options[3].Total().StringFixed(2))
		})
	}
}
