package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
)

// hostState is host name's state as c sees it ("" when c does not know it).
func hostState(c *Cluster, name string) string {
	i := slices.IndexFunc(c.Hosts(), func(h HostStatus) bool { return h.Name == name })
	if i < 0 {
		return ""
	}
	return c.Hosts()[i].State
}

// TestHostDrain: a host that drains takes no more instances and goes on
// heartbeating while an invocation in flight on its instance finishes, for
// longer than the fleet waits for a silent host: the instance is never taken
// for lost, and the invocation succeeds. Once drained and closed, the host
// has left: the fleet forgets it instead of finding it lost.
func TestHostDrain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cfg := f.cfg
	cfg.Host, cfg.Zones = "h1", []string{"z1"}
	l, err := NewLocal(cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, err := NewHost(HostConfig{Name: "h1", Zone: "z1", VCPU: 8, MemoryMB: 32768, Heartbeat: 100 * time.Millisecond},
		l, f.bus.Conn(), testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const hostTimeout = 500 * time.Millisecond
	c, err := NewCluster(ClusterConfig{HostTimeout: hostTimeout}, ClusterDeps{NATS: f.bus.Conn(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetLeader(true)
	events := c.Watch(ctx)
	poll.Until(t, 10*time.Second, func() error {
		if s := hostState(c, "h1"); s != HostUp {
			return fmt.Errorf("host h1 is %q", s)
		}
		return nil
	})

	id := NewInstanceID()
	if err := c.Launch(ctx, InstanceSpec{ID: id, CapacityProvider: "cp1", Type: "m7i.large"}); err != nil {
		t.Fatal(err)
	}
	var in Instance
	poll.Until(t, 30*time.Second, func() error {
		for _, i := range c.Instances() {
			if i.ID == id && i.State == StateRunning && i.InvokeAddr != "" {
				in = i
				return nil
			}
		}
		return fmt.Errorf("instance %s not running: %+v", id, c.Instances())
	})
	agents := agent.NewClient(f.bus.Conn())
	spec := env.Spec{FunctionName: "fn", Version: "1", Runtime: "provided.al2023", Handler: "bootstrap",
		MemoryMB: 512, Timeout: 30 * time.Second, MaxConcurrency: 2}
	if _, err := agents.StartEnvironment(ctx, id, agent.StartEnv{EnvID: "env-1", CapacityProvider: "cp1",
		CodeSha256: f.sha, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		got, _ := l.Instance(id)
		if len(got.Environments) != 1 || got.Environments[0].State != agent.EnvReady {
			return fmt.Errorf("environments %+v", got.Environments)
		}
		return nil
	})
	pool := NewPool(func(id string) []byte {
		creds, err := f.cfg.Secret.CredentialsFor(bus.AgentIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		return creds.WireKey()
	})
	defer pool.Close()

	// An invocation four times longer than the fleet waits for a silent host.
	sleep := 4 * hostTimeout
	slow := make(chan error, 1)
	go func() {
		payload := fmt.Sprintf(`{"op":"sleep","ms":%d}`, sleep.Milliseconds())
		res, err := pool.Invoke(ctx, in, "env-1", env.Invocation{RequestID: "slow", Payload: []byte(payload)})
		if err == nil && string(res.Payload) != fmt.Sprintf(`{"slept_ms":%d}`, sleep.Milliseconds()) {
			err = fmt.Errorf("payload %s", res.Payload)
		}
		slow <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		got, _ := l.Instance(id)
		if len(got.Environments) == 1 && got.Environments[0].InFlight == 1 {
			return nil
		}
		return errors.New("not in flight yet")
	})

	drained := make(chan error, 1)
	go func() { drained <- h.Drain(ctx) }()
	poll.Until(t, 10*time.Second, func() error {
		if s := hostState(c, "h1"); s != HostDraining {
			return fmt.Errorf("host h1 is %q", s)
		}
		return nil
	})
	if err := c.Launch(ctx, InstanceSpec{CapacityProvider: "cp1", Type: "m7i.large"}); !errors.Is(err, ErrNoRoom) {
		t.Errorf("launch on a draining host: %v, want %v", err, ErrNoRoom)
	}
	if err := <-slow; err != nil {
		t.Errorf("the invocation in flight when the host began to drain: %v", err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if len(l.Instances()) != 0 {
		t.Errorf("instances left after the drain: %+v", l.Instances())
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if s := hostState(c, "h1"); s != "" {
			return fmt.Errorf("host h1 is %q, want it forgotten", s)
		}
		return nil
	})
	for {
		select {
		case ev := <-events:
			if ev.Instance.State == StateLost {
				t.Errorf("instance %s was taken for lost: %s", ev.Instance.ID, ev.Instance.StateReason)
			}
			continue
		default:
		}
		break
	}
}

// TestLostHostsInstancesAreMarkedLost: when a host stops heartbeating, the
// leader writes its instances' records back as lost; a record that was
// deleted after the leader read it (the instance was terminated meanwhile)
// stays deleted.
func TestLostHostsInstancesAreMarkedLost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC))
	const hostTimeout = 5 * time.Second
	c, err := NewCluster(ClusterConfig{HostTimeout: hostTimeout}, ClusterDeps{NATS: f.bus.Conn(), Logger: testLogger(), Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetLeader(true)
	beat, _ := json.Marshal(HostStatus{Name: "h1", Zone: "z1", VCPU: 8, MemoryMB: 32768})
	if err := f.bus.Conn().Publish(HostHeartbeatSubject("h1"), beat); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"i-1", "i-2"} {
		body, _ := json.Marshal(record{Instance: Instance{ID: id, CapacityProvider: "cp", Type: "m7i.large", Zone: "z1", Host: "h1", State: StateRunning}})
		if _, err := c.kv.Put(ctx, id, body); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, func() error {
		if s := hostState(c, "h1"); s != HostUp || len(c.Instances()) != 2 {
			return fmt.Errorf("host h1 is %q with %d instances", s, len(c.Instances()))
		}
		return nil
	})
	stored := func(id string) (record, bool) {
		e, err := c.kv.Get(ctx, id)
		if err != nil {
			return record{}, false
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatal(err)
		}
		return rec, true
	}

	// i-2 is terminated after the leader read its record.
	c.mu.Lock()
	read := c.records["i-2"]
	c.mu.Unlock()
	if err := c.kv.Delete(ctx, "i-2"); err != nil {
		t.Fatal(err)
	}
	c.markLost(read)
	if rec, ok := stored("i-2"); ok {
		t.Errorf("a deleted record came back as %+v", rec.Instance)
	}

	// h1 goes silent: i-1 is marked lost.
	poll.Until(t, 10*time.Second, func() error {
		fake.Advance(time.Second)
		if rec, ok := stored("i-1"); !ok || rec.State != StateLost {
			return fmt.Errorf("i-1 is %q (stored %v)", rec.State, ok)
		}
		return nil
	})
	if s := hostState(c, "h1"); s != HostLost {
		t.Errorf("host h1 is %q, want %q", s, HostLost)
	}
}
