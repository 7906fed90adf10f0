package meter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAppendJSONRoundTrips(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	for _, ev := range []Event{
		{ID: "a", Kind: KindInvocation, Start: t0, End: t0.Add(time.Millisecond)},
		{ID: "inv-1", Kind: KindInvocation, Start: t0, End: t0, Function: "fn", Version: "$LATEST", Compute: OnDemand,
			Architecture: "arm64", MemoryMB: 128, RequestID: "r", DurationMs: 1.25, BilledMs: 2, InitMs: 100.5, CPUMs: 0.001,
			MaxMemoryUsedMB: 20, Outcome: OutcomeError, ErrorType: "weird \"type\"\n\t\\ \x01 é \xff"},
		{ID: "inst-x", Kind: KindInstance, Start: t0, End: t0.Add(time.Hour), CapacityProvider: "cp", Instance: "i",
			InstanceType: "m7i.large", Zone: "us-east-1a", State: InstanceDraining},
		{ID: "pc", Kind: KindProvisioned, Start: t0.In(time.FixedZone("x", 3600)), End: t0, Qualifier: "live", Concurrency: 3},
		{ID: "pc-final", Kind: KindProvisioned, Start: t0, End: t0.Add(time.Minute), Qualifier: "live", Concurrency: 1, Final: true},
	} {
		var got Event
		if err := json.Unmarshal(AppendJSON(nil, &ev), &got); err != nil {
			t.Fatalf("%s: %v\n%s", ev.ID, err, AppendJSON(nil, &ev))
		}
		want := ev
		if ev.ErrorType != "" {
			want.ErrorType = "weird \"type\"\n\t\\ \x01 é \ufffd"
		}
		if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
			t.Errorf("%s: times %v %v", ev.ID, got.Start, got.End)
		}
		got.Start, got.End, want.Start, want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", ev.ID, diff)
		}
		std, _ := json.Marshal(&ev)
		var viaStd Event
		_ = json.Unmarshal(std, &viaStd)
		viaStd.Start, viaStd.End = time.Time{}, time.Time{}
		if diff := cmp.Diff(viaStd, got); diff != "" {
			t.Errorf("%s differs from encoding/json: %s", ev.ID, diff)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	at := time.Now()
	ev := &Event{ID: "inv-1", Kind: KindInvocation, Start: at, End: at.Add(time.Millisecond),
		Function: "fn", Version: "1", Compute: OnDemand, MemoryMB: 128, DurationMs: 0.7, BilledMs: 1, Outcome: OutcomeSuccess}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = AppendJSON(buf[:0], ev)
	}
}
