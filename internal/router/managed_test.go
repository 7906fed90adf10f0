package router

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/wire"
)

// These tests run the Managed Instances router over real internal/wire
// connections to in-process agents whose environments are slot counters (the
// instance and fleet packages test real agents and processes).

type fakeAgent struct {
	mu    sync.Mutex
	slots map[string]int // env id → free slots
	gate  chan struct{}
	hits  map[string]*atomic.Int32
}

func (a *fakeAgent) Invoke(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
	a.mu.Lock()
	free, ok := a.slots[envID]
	if !ok {
		a.mu.Unlock()
		return env.Result{}, wire.Refused(wire.ReasonUnknown, "no environment %s", envID)
	}
	if free == 0 {
		a.mu.Unlock()
		return env.Result{}, wire.Refused(wire.ReasonConcurrency, "busy")
	}
	a.slots[envID] = free - 1
	a.hits[envID].Add(1)
	a.mu.Unlock()
	if a.gate != nil {
		<-a.gate
	}
	a.mu.Lock()
	a.slots[envID]++
	a.mu.Unlock()
	return env.Result{Payload: []byte(`"` + envID + `"`)}, nil
}

// startAgents serves one fake agent per zone on Unix sockets and returns the
// instances as the fleet would report them, each with one ready environment of
// version "f:1" with the given slots.
func startAgents(t *testing.T, zones []string, slots int, gate chan struct{}) ([]fleet.Instance, *fakeAgent, []net.Listener) {
	t.Helper()
	fa := &fakeAgent{slots: map[string]int{}, gate: gate, hits: map[string]*atomic.Int32{}}
	var out []fleet.Instance
	var lns []net.Listener
	for i, z := range zones {
		sock := filepath.Join(t.TempDir(), "a.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := wire.NewServer(fa, nil, nil)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		envID := fmt.Sprintf("env-%d", i)
		fa.slots[envID] = slots
		fa.hits[envID] = &atomic.Int32{}
		out = append(out, fleet.Instance{ID: fmt.Sprintf("i-%d", i), Zone: z, State: fleet.StateRunning,
			InvokeNetwork: "unix", InvokeAddr: sock,
			Environments: []agent.EnvStatus{{ID: envID, Function: "f", Version: "1", Slots: slots, State: "ready"}}})
		lns = append(lns, ln)
	}
	return out, fa, lns
}

func TestManagedSpreadsAndThrottles(t *testing.T) {
	gate := make(chan struct{})
	insts, fa, _ := startAgents(t, []string{"a", "b", "c"}, 2, gate)
	pool := fleet.NewPool(nil)
	defer pool.Close()
	m := NewManaged(pool)
	m.Update(insts)
	if n := m.Environments("f:1"); n != 3 {
		t.Fatalf("routable environments = %d", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			_, err := m.Invoke(context.Background(), "f:1", env.Invocation{})
			errs <- err
		})
	}
	poll.Until(t, 10*time.Second, func() error {
		total := 0
		for _, h := range fa.hits {
			total += int(h.Load())
		}
		if total != 6 {
			return fmt.Errorf("%d of 6 running", total)
		}
		return nil
	})
	for id, h := range fa.hits {
		if h.Load() != 2 {
			t.Fatalf("environment %s got %d invocations, want 2 (every slot used, none over)", id, h.Load())
		}
	}
	// Every slot is taken: the seventh is throttled at once, not queued.
	_, err := m.Invoke(context.Background(), "f:1", env.Invocation{})
	if e := awserr.As(err); e == nil || e.Status != 429 {
		t.Fatalf("seventh invocation: %v, want 429", err)
	}
	if got := m.Stats("f:1").ThrottlesConcurrency.Load(); got != 1 {
		t.Fatalf("concurrency throttles = %d", got)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Stats("f:1").Invocations.Load(); got != 6 {
		t.Fatalf("invocations counted %d", got)
	}
}

func TestManagedSkipsUnreachableInstance(t *testing.T) {
	insts, _, lns := startAgents(t, []string{"a", "b"}, 4, nil)
	pool := fleet.NewPool(nil)
	defer pool.Close()
	m := NewManaged(pool)
	m.Update(insts)
	lns[0].Close() // instance a is gone; the router has not heard yet
	for i := range 10 {
		res, err := m.Invoke(context.Background(), "f:1", env.Invocation{})
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
		if string(res.Payload) != `"env-1"` {
			t.Fatalf("invocation %d ran on %s", i, res.Payload)
		}
	}
}

func TestManagedUnknownVersionThrottles(t *testing.T) {
	m := NewManaged(fleet.NewPool(nil))
	_, err := m.Invoke(context.Background(), "nope:1", env.Invocation{})
	if !awserr.Is(err, awserr.CodeTooManyRequests) {
		t.Fatalf("err = %v", err)
	}
}

// TestManagedAlternate: an invocation whose route has no environment that
// could take it — none routable yet, or none that knows it — runs on the
// alternate route; one whose environments are busy is throttled at once.
func TestManagedAlternate(t *testing.T) {
	gate := make(chan struct{})
	insts, fa, _ := startAgents(t, []string{"a", "b"}, 1, nil)
	// Instance a hosts the new version f:2, instance b the old one f:1.
	insts[0].Environments[0].Version = "2"
	pool := fleet.NewPool(nil)
	defer pool.Close()
	m := NewManaged(pool)
	invoke := func() (string, bool, error) {
		res, alt, err := m.InvokeEither(context.Background(), "f:2", "f:1", env.Invocation{})
		return string(res.Payload), alt, err
	}
	m.Update(insts[1:]) // the new version's environment is not in the table yet
	if ran, alt, err := invoke(); err != nil || !alt || ran != `"env-1"` {
		t.Fatalf("new version not routable: ran %s (alternate %v), %v; want the old one's env-1", ran, alt, err)
	}
	m.Update(insts)
	if ran, alt, err := invoke(); err != nil || alt || ran != `"env-0"` {
		t.Fatalf("new version routable: ran %s (alternate %v), %v; want env-0", ran, alt, err)
	}
	fa.mu.Lock()
	delete(fa.slots, "env-0") // its agent no longer knows it (it was stopped)
	fa.mu.Unlock()
	if ran, alt, err := invoke(); err != nil || !alt || ran != `"env-1"` {
		t.Fatalf("new version's environment gone: ran %s (alternate %v), %v", ran, alt, err)
	}
	// Busy is not gone: the one slot of env-0 is taken, the next is throttled.
	fa.mu.Lock()
	fa.slots["env-0"] = 1
	fa.gate = gate
	fa.mu.Unlock()
	held := make(chan error, 1)
	go func() {
		_, err := m.Invoke(context.Background(), "f:2", env.Invocation{})
		held <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		if n := fa.hits["env-0"].Load(); n != 2 {
			return fmt.Errorf("env-0 has run %d", n)
		}
		return nil
	})
	before := fa.hits["env-1"].Load()
	if _, alt, err := invoke(); !awserr.Is(err, awserr.CodeTooManyRequests) || alt {
		t.Fatalf("busy new version: alternate %v, %v; want a 429", alt, err)
	}
	if fa.hits["env-1"].Load() != before {
		t.Fatal("a busy route sent its invocation to the alternate")
	}
	if got := m.Stats("f:2").ThrottlesConcurrency.Load(); got != 1 {
		t.Fatalf("f:2 concurrency throttles = %d", got)
	}
	close(gate)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}
