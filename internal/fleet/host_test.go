package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
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
