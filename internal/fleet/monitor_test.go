package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/instance"
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
	beat := func(envs ...instance.EnvStatus) {
		seq++
		body, _ := json.Marshal(instance.Heartbeat{ID: "i-fake", State: instance.StateRunning, Pid: 4242, Seq: seq,
			MemoryMB: 8192, MemoryUsedMB: 2048, CPUUtilization: 0.25, InvokeNetwork: "unix", InvokeAddr: "/x",
			Environments: envs})
		if err := f.bus.Conn().Publish(instance.HeartbeatSubject("i-fake"), body); err != nil {
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
	beat(instance.EnvStatus{ID: "e1", State: instance.EnvReady, Slots: 4})
	if ev := <-events; len(ev.Instance.Environments) != 1 || ev.Previous != StateRunning {
		t.Fatalf("environment event %+v", ev)
	}
	beat(instance.EnvStatus{ID: "e1", State: instance.EnvReady, Slots: 4, InFlight: 3})
	// Heartbeats every second keep it running across many timeouts' worth of time.
	for range 20 {
		eventually(t, 5*time.Second, func() error {
			if in, _ := l.Instance("i-fake"); !in.LastHeartbeat.Equal(fake.Now()) {
				return fmt.Errorf("heartbeat at %v not seen (now %v)", in.LastHeartbeat, fake.Now())
			}
			return nil
		})
		fake.Advance(time.Second)
		beat(instance.EnvStatus{ID: "e1", State: instance.EnvReady, Slots: 4, InFlight: 3})
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
	eventually(t, 5*time.Second, func() error {
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
