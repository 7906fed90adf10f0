package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// TestHeartbeatTimeoutWithFakeClock drives the provider's clock: an instance
// is running while heartbeats come and lost once none came for
// HeartbeatTimeout. No agent process runs: the launch delay never passes on
// the fake clock and the test publishes the heartbeats.
func TestHeartbeatTimeoutWithFakeClock(t *testing.T) {
	f := newFixture(t)
	fake := clock.NewFake(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	cfg := f.cfg
	cfg.LaunchDelay = 24 * time.Hour
	cfg.Heartbeat = time.Second
	cfg.HeartbeatTimeout = 5 * time.Second
	deps := f.deps
	deps.Clock = fake
	l, err := NewLocal(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	events := l.Watch(ctx)
	if err := l.Launch(ctx, InstanceSpec{ID: "i-fake", CapacityProvider: "cp", Type: "m7g.large", Zone: "us-east-1b"}); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Instance.State != StatePending || ev.Previous != "" {
		t.Fatalf("first event %+v", ev)
	}
	seq := uint64(0)
	beat := func(envs ...agent.EnvStatus) {
		seq++
		body, _ := json.Marshal(agent.Heartbeat{ID: "i-fake", State: agent.StateRunning, Pid: 4242, Seq: seq,
			MemoryMB: 8192, MemoryUsedMB: 2048, CPUUtilization: 0.25, InvokeNetwork: "unix", InvokeAddr: "/x",
			Environments: envs})
		if err := f.bus.Conn().Publish(agent.HeartbeatSubject("i-fake"), body); err != nil {
			t.Fatal(err)
		}
		f.bus.Conn().Flush()
	}
	beat()
	ev := <-events
	if ev.Instance.State != StateRunning || ev.Previous != StatePending ||
		ev.Instance.MemoryUtilization != 0.25 || ev.Instance.CPUUtilization != 0.25 || ev.Instance.InvokeAddr != "/x" {
		t.Fatalf("running event %+v", ev)
	}
	// A new environment is an event; a change of in-flight count alone is not.
	beat(agent.EnvStatus{ID: "e1", State: agent.EnvReady, Slots: 4})
	if ev := <-events; len(ev.Instance.Environments) != 1 || ev.Previous != StateRunning {
		t.Fatalf("environment event %+v", ev)
	}
	beat(agent.EnvStatus{ID: "e1", State: agent.EnvReady, Slots: 4, InFlight: 3})
	// Heartbeats every second keep it running across many timeouts' worth of time.
	for range 20 {
		poll.Until(t, 5*time.Second, func() error {
			if in, _ := l.Instance("i-fake"); !in.LastHeartbeat.Equal(fake.Now()) {
				return fmt.Errorf("heartbeat at %v not seen (now %v)", in.LastHeartbeat, fake.Now())
			}
			return nil
		})
		fake.Advance(time.Second)
		beat(agent.EnvStatus{ID: "e1", State: agent.EnvReady, Slots: 4, InFlight: 3})
	}
	if got := stateOf(l, "i-fake"); got != StateRunning {
		t.Fatalf("state %s while heartbeating", got)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	// Silence: lost once HeartbeatTimeout has passed, not before.
	poll.Until(t, 5*time.Second, func() error {
		if in, _ := l.Instance("i-fake"); !in.LastHeartbeat.Equal(fake.Now()) {
			return fmt.Errorf("last heartbeat not seen")
		}
		return nil
	})
	fake.Advance(5 * time.Second)
	fake.Advance(0)
	if got := stateOf(l, "i-fake"); got != StateRunning {
		t.Fatalf("state %s at exactly the timeout", got)
	}
	fake.Advance(time.Second)
	ev = <-events
	if ev.Instance.State != StateLost || ev.Previous != StateRunning {
		t.Fatalf("lost event %+v", ev)
	}
	t.Logf("lost: %s", ev.Instance.StateReason)
	if err := l.Terminate(ctx, "i-fake"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Instance.State != StateTerminated {
		t.Fatalf("terminated event %+v", ev)
	}
}

// usageLog keeps the events a provider records.
type usageLog struct {
	mu  sync.Mutex
	evs []meter.Event
}

func (u *usageLog) Record(ev *meter.Event) {
	u.mu.Lock()
	u.evs = append(u.evs, *ev)
	u.mu.Unlock()
}

func (u *usageLog) events() []meter.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.evs)
}

// TestAdoptionRecordsTheGap: a control plane dies without closing its
// instance-time segments; the one that adopts the instance a minute later
// records the minute, so the instance's segments run without a hole from
// its launch to the end. A second instance's agent died with the control
// plane: the successor records its time up to the agent's alive stamp. No
// agent process runs: the test publishes the heartbeats, answers the
// successor's status request for the live one and writes the dead one's stamp.
func TestAdoptionRecordsTheGap(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	cfg := f.cfg
	cfg.LaunchDelay = 24 * time.Hour
	cfg.Heartbeat = time.Second
	cfg.HeartbeatTimeout = time.Hour
	first, second := &usageLog{}, &usageLog{}
	c1 := clock.NewFake(t0)
	deps := f.deps
	deps.Clock, deps.Usage = c1, first
	l1, err := NewLocal(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events := l1.Watch(ctx)
	if err := l1.Launch(ctx, InstanceSpec{ID: "i-gap", CapacityProvider: "cp", Type: "m7g.large", Zone: "us-east-1a"}); err != nil {
		t.Fatal(err)
	}
	<-events // pending
	// i-dead's agent dies with the control plane; i-gap's lives on.
	if err := l1.Launch(ctx, InstanceSpec{ID: "i-dead", CapacityProvider: "cp", Type: "m7g.large", Zone: "us-east-1b"}); err != nil {
		t.Fatal(err)
	}
	<-events // pending
	hb := agent.Heartbeat{ID: "i-gap", State: agent.StateRunning, Pid: 4242, Seq: 1, MemoryMB: 8192}
	c1.Advance(2 * time.Second) // two seconds of boot
	for _, id := range []string{"i-gap", "i-dead"} {
		hb := hb
		hb.ID = id
		body, _ := json.Marshal(hb)
		if err := f.bus.Conn().Publish(agent.HeartbeatSubject(id), body); err != nil {
			t.Fatal(err)
		}
		if ev := <-events; ev.Instance.State != StateRunning {
			t.Fatalf("event %+v", ev)
		}
	}
	// Twelve seconds running: checkpoints record the time in segments of at
	// least 5 s, and the record says where the recorded time ends.
	for range 12 {
		c1.Advance(time.Second)
	}
	var until time.Time
	poll.Until(t, 10*time.Second, func() error {
		for _, id := range []string{"i-gap", "i-dead"} {
			e, err := l1.kv.Get(ctx, id)
			if err != nil {
				return err
			}
			var rec record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return err
			}
			if !rec.MeteredUntil.After(t0.Add(2 * time.Second)) {
				return fmt.Errorf("%s metered until %v", id, rec.MeteredUntil)
			}
		}
		e, err := l1.kv.Get(ctx, "i-gap")
		if err != nil {
			return err
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return err
		}
		until = rec.MeteredUntil
		var last time.Time
		for _, ev := range first.events() {
			if ev.Instance == "i-gap" && ev.End.After(last) {
				last = ev.End
			}
		}
		if !until.After(t0.Add(2*time.Second)) || !until.Equal(last) {
			return fmt.Errorf("record metered until %v, the ledger until %v", until, last)
		}
		return nil
	})
	// The control plane dies: it stops without recording its open segments.
	// i-dead's agent stamped its last heartbeat 3 s after the last checkpoint.
	_ = l1.sub.Unsubscribe()
	close(l1.stop)
	<-l1.loopEnd
	var deadUntil time.Time
	for _, ev := range first.events() {
		if ev.Instance == "i-dead" && ev.End.After(deadUntil) {
			deadUntil = ev.End
		}
	}
	l1.mu.Lock()
	deadDir := l1.insts["i-dead"].dir
	l1.mu.Unlock()
	lastBeat := deadUntil.Add(3 * time.Second)
	if err := os.MkdirAll(filepath.Join(deadDir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deadDir, "work", agent.AliveFile), fmt.Appendf(nil, "%020d", lastBeat.UnixNano()), 0o644); err != nil {
		t.Fatal(err)
	}

	// A minute later its successor finds the agent answering.
	sub, err := f.bus.Conn().Subscribe(agent.CommandSubject("i-gap"), func(m *nats.Msg) {
		rep, _ := json.Marshal(agent.Reply{OK: true, Heartbeat: &hb})
		_ = m.Respond(rep)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c2 := clock.NewFake(t0.Add(74 * time.Second))
	deps.Clock, deps.Usage = c2, second
	l2, err := NewLocal(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if got := stateOf(l2, "i-gap"); got != StateRunning {
		t.Fatalf("adopted instance is %s", got)
	}
	// The dead instance's life is in the history, ending where its time in
	// the ledger ends (checked below): at its last heartbeat.
	gone, err := l2.Terminated(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].ID != "i-dead" || !gone[0].TerminatedAt.Equal(lastBeat) || !gone[0].StartedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("history %+v, want i-dead started at 2 s and terminated at %v", gone, lastBeat)
	}
	if in, _ := l2.Instance("i-gap"); !in.StartedAt.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("the adopted instance started at %v, want 2 s", in.StartedAt)
	}
	c2.Advance(3 * time.Second)
	l2.Close()

	// Pending [0, 2 s), then running without a hole up to 77 s; the minute
	// from 12 s to 74 s recorded by the successor, in one segment.
	var segs, dead []meter.Event
	var gap []meter.Event
	for _, ev := range append(first.events(), second.events()...) {
		switch {
		case ev.Kind != meter.KindInstance:
			t.Fatalf("unexpected event %+v", ev)
		case ev.Instance == "i-gap":
			segs = append(segs, ev)
		case ev.Instance == "i-dead":
			dead = append(dead, ev)
		}
	}
	for _, ev := range second.events() {
		if ev.Instance == "i-gap" {
			gap = append(gap, ev)
		}
	}
	slices.SortFunc(segs, func(a, b meter.Event) int { return a.Start.Compare(b.Start) })
	at := t0
	ids := map[string]bool{}
	for i, ev := range segs {
		if !ev.Start.Equal(at) || !ev.End.After(ev.Start) {
			t.Fatalf("segment %d is [%v, %v), want it to start at %v; all: %+v", i, ev.Start, ev.End, at, segs)
		}
		if want := map[bool]string{true: StatePending, false: StateRunning}[i == 0]; ev.State != want {
			t.Errorf("segment %d in state %s, want %s", i, ev.State, want)
		}
		if ids[ev.ID] {
			t.Errorf("segment id %s twice", ev.ID)
		}
		ids[ev.ID] = true
		at = ev.End
	}
	if want := t0.Add(77 * time.Second); !at.Equal(want) {
		t.Errorf("segments end at %v, want %v", at, want)
	}
	if len(gap) == 0 || !gap[0].Start.Equal(until) || !gap[0].End.Equal(t0.Add(74*time.Second)) {
		t.Errorf("the successor's first segment is %+v, want [%v, 74 s)", gap, until)
	}
	// The dead instance: its time up to its last heartbeat, in one more
	// segment from the successor.
	slices.SortFunc(dead, func(a, b meter.Event) int { return a.Start.Compare(b.Start) })
	if n := len(dead); n < 2 || !dead[n-1].Start.Equal(deadUntil) || !dead[n-1].End.Equal(lastBeat) ||
		dead[n-1].State != StateRunning || !dead[n-2].End.Equal(deadUntil) {
		t.Errorf("the dead instance's segments end %+v, want the last one [%v, %v)", dead, deadUntil, lastBeat)
	}
}
