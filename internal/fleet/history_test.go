package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// TestInstanceLifeMatchesItsSegments drives an instance through its life on
// a fake clock (pending, running with checkpoints, lost, terminated) and
// checks that the fleet's record of it — launch, start and terminate times,
// kept in the history across a restart of the provider — meets its usage
// segments exactly, so that shoal cost report's check agrees on it. No agent
// process runs: the launch delay never passes and the test publishes the
// heartbeats.
func TestInstanceLifeMatchesItsSegments(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 123456789, time.UTC)
	fake := clock.NewFake(t0)
	cfg := f.cfg
	cfg.LaunchDelay = 24 * time.Hour
	cfg.Heartbeat = time.Second
	cfg.HeartbeatTimeout = 5 * time.Second
	log := &usageLog{}
	deps := f.deps
	deps.Clock, deps.Usage = fake, log
	l, err := NewLocal(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events := l.Watch(ctx)
	if err := l.Launch(ctx, InstanceSpec{ID: "i-life", CapacityProvider: "cp", Type: "m7i.large", Zone: "us-east-1a"}); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; !ev.Instance.LaunchedAt.Equal(t0) || !ev.Instance.StartedAt.IsZero() || !ev.Instance.MeteredUntil.Equal(t0) {
		t.Fatalf("pending event %+v", ev.Instance)
	}
	fake.Advance(1500 * time.Millisecond) // booting
	body, _ := json.Marshal(agent.Heartbeat{ID: "i-life", State: agent.StateRunning, Pid: 4242, Seq: 1, MemoryMB: 8192})
	if err := f.bus.Conn().Publish(agent.HeartbeatSubject("i-life"), body); err != nil {
		t.Fatal(err)
	}
	started := t0.Add(1500 * time.Millisecond)
	if ev := <-events; ev.Instance.State != StateRunning || !ev.Instance.StartedAt.Equal(started) {
		t.Fatalf("running event %+v", ev.Instance)
	}
	// Silence: checkpoints while it runs, then lost after the timeout.
	for range 7 {
		fake.Advance(time.Second)
	}
	ev := <-events
	if ev.Instance.State != StateLost || !ev.Instance.StartedAt.Equal(started) {
		t.Fatalf("lost event %+v", ev.Instance)
	}
	if in, _ := l.Instance("i-life"); !in.MeteredUntil.After(started) || in.MeteredUntil.After(fake.Now()) {
		t.Errorf("a lost instance metered until %v (started %v, now %v)", in.MeteredUntil, started, fake.Now())
	}
	fake.Advance(2*time.Second + 7*time.Millisecond) // lost until the scaler replaces it
	end := fake.Now()
	if err := l.Terminate(ctx, "i-life"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Instance.State != StateTerminated || !ev.Instance.TerminatedAt.Equal(end) {
		t.Fatalf("terminated event %+v", ev.Instance)
	}
	l.Close()

	// A new provider on the same buckets reads the life back.
	l2, err := NewLocal(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	gone, err := l2.Terminated(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 {
		t.Fatalf("history %+v, want i-life", gone)
	}
	in := gone[0]
	if in.ID != "i-life" || in.State != StateTerminated || !in.LaunchedAt.Equal(t0) || !in.StartedAt.Equal(started) ||
		!in.TerminatedAt.Equal(end) || in.CapacityProvider != "cp" || in.Type != "m7i.large" {
		t.Errorf("history entry %+v", in)
	}
	if later, err := l2.Terminated(ctx, end.Add(time.Nanosecond)); err != nil || len(later) != 0 {
		t.Errorf("terminated after its end: %+v, %v", later, err)
	}

	// The segments tile [launch, terminate): pending up to the start, billed after.
	at := t0
	var billed time.Duration
	for _, seg := range log.events() {
		if seg.Kind != meter.KindInstance || !seg.Start.Equal(at) {
			t.Fatalf("segment %+v, want one starting at %v", seg, at)
		}
		if (seg.State == meter.InstancePending) != (seg.End.Compare(started) <= 0) {
			t.Errorf("segment %+v in the wrong state for an instance started at %v", seg, started)
		}
		if seg.Billed() {
			billed += seg.End.Sub(seg.Start)
		}
		at = seg.End
	}
	if !at.Equal(end) || billed != end.Sub(started) {
		t.Errorf("segments end at %v with %v billed, want %v and %v", at, billed, end, end.Sub(started))
	}

	// shoal cost report's check, on the JSON round trip each side takes.
	var rec billing.FleetRecord
	for _, in := range roundTrip(t, gone) {
		rec.Instances = append(rec.Instances, billing.FleetInstance{ID: in.ID, CapacityProvider: in.CapacityProvider, Type: in.Type,
			StartedAt: in.StartedAt, TerminatedAt: in.TerminatedAt, MeteredUntil: in.MeteredUntil})
	}
	r, err := billing.Build(roundTrip(t, log.events()), pricing.Default(),
		billing.Options{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour), Fleet: &rec, NoWhatIf: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.CapacityProviders) != 1 || !r.CapacityProviders[0].FleetAgrees() {
		t.Errorf("the report's check disagrees: %+v", r.CapacityProviders)
	}
}

// roundTrip passes v through JSON, as the API and the ledger do (which
// drops the clock's monotonic readings).
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(fmt.Errorf("%w: %s", err, b))
	}
	return out
}
