package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/router"
)

// TestProvisionedTimeSurvivesKill: a control plane keeps a Provisioned
// Concurrency config, checkpoints it, stamps two more seconds and is killed
// (nothing closes its open segment). The next start records the open segment
// up to the last stamp, so the config's time is recorded without a hole; a
// clean stop afterwards leaves nothing open.
func TestProvisionedTimeSurvivesKill(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	js := b.JetStream()
	if err := ledger.EnsureStream(ctx, js, 0, 1); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	newRec := func() *ledger.Recorder {
		rec, err := ledger.NewRecorder(ledger.Config{Dir: t.TempDir()}, js, log)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	target := &router.Target{Function: "fn", Version: "3", Spec: env.Spec{MemoryMB: 512}}

	rec1 := newRec()
	p1 := openProvisionedUsage(rec1, dataDir, log)
	p1.set("fn:live", "live", target, 2, t0)
	p1.checkpoint(t0.Add(6*time.Second), false)
	stamp := p1.openStamp()
	stamp.Write(t0.Add(7 * time.Second))
	stamp.Write(t0.Add(8 * time.Second))
	stamp.Close()
	// Killed: the journal is published (as the next start would), the open
	// segment is never closed.
	if err := rec1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	rec2 := newRec()
	p2 := openProvisionedUsage(rec2, dataDir, log)
	p2.checkpoint(t0.Add(20*time.Second), true) // a clean stop: nothing is open
	if err := rec2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec3 := newRec()
	openProvisionedUsage(rec3, dataDir, log) // finds nothing left to record
	if err := rec3.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var segs []meter.Event
	poll.Until(t, 10*time.Second, func() error {
		evs, _, err := ledger.Read(ctx, js, ledger.Query{})
		if err != nil {
			return err
		}
		segs = nil
		for _, ev := range evs {
			if ev.Kind == meter.KindProvisioned {
				segs = append(segs, ev)
			}
		}
		if len(segs) != 2 {
			return fmt.Errorf("%d provisioned segments, want 2: %+v", len(segs), segs)
		}
		return nil
	})
	slices.SortFunc(segs, func(a, b meter.Event) int { return a.Start.Compare(b.Start) })
	want := [][2]time.Time{{t0, t0.Add(6 * time.Second)}, {t0.Add(6 * time.Second), t0.Add(8 * time.Second)}}
	for i, ev := range segs {
		if !ev.Start.Equal(want[i][0]) || !ev.End.Equal(want[i][1]) || ev.Concurrency != 2 || ev.MemoryMB != 512 ||
			ev.Function != "fn" || ev.Qualifier != "live" || ev.Version != "3" {
			t.Errorf("segment %d: %+v, want [%v, %v) of fn:live, 2 × 512 MB", i, ev, want[i][0], want[i][1])
		}
		// A checkpoint goes on; the kill ended the span (for 5-minute billing).
		if final := i == 1; ev.Final != final {
			t.Errorf("segment %d: final %v, want %v", i, ev.Final, final)
		}
	}
}
