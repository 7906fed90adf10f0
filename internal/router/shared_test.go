package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
)

// fakeShared stands in for a cluster's provisioned environments: it serves
// an invocation while free is positive, and shares the environments the
// test's starter marks.
type fakeShared struct {
	free   atomic.Int32
	calls  atomic.Int32
	gate   chan struct{} // when non-nil, Invoke waits for it
	shares func(Env) bool
}

func (s *fakeShared) Invoke(ctx context.Context, t *Target, inv env.Invocation) (env.Result, bool, error) {
	if s.free.Add(-1) < 0 {
		s.free.Add(1)
		return env.Result{}, false, nil
	}
	defer s.free.Add(1)
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	return env.Result{Payload: []byte(`"shared"`)}, true, nil
}

func (s *fakeShared) Shares(e Env) bool { return s.shares(e) }

// TestSharedProvisionedFirst: with a Shared, an invocation runs on a free
// shared provisioned environment; when none is free it runs on demand;
// admission counts it either way.
func TestSharedProvisionedFirst(t *testing.T) {
	st := &fakeStarter{}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	sh := &fakeShared{shares: func(Env) bool { return true }}
	sh.free.Store(1)
	r.Share(sh)
	one := 1
	tg := target("f", &one)
	res, err := r.Invoke(context.Background(), tg, env.Invocation{})
	if err != nil || string(res.Payload) != `"shared"` {
		t.Fatalf("invoke = %s, %v; want the shared environment's answer", res.Payload, err)
	}
	if n := st.count(); n != 0 {
		t.Fatalf("started %d environments while a shared one was free", n)
	}
	sh.free.Store(0)
	res, err = r.Invoke(context.Background(), tg, env.Invocation{})
	if err != nil || string(res.Payload) != `{"env":0}` {
		t.Fatalf("invoke = %s, %v; want an on-demand environment's answer", res.Payload, err)
	}
}

// TestSharedProvisionedIsAdmitted: reserved concurrency bounds what runs on
// shared environments too.
func TestSharedProvisionedIsAdmitted(t *testing.T) {
	st := &fakeStarter{}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	sh := &fakeShared{gate: make(chan struct{}), shares: func(Env) bool { return true }}
	sh.free.Store(5)
	r.Share(sh)
	one := 1
	done := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), target("g", &one), env.Invocation{})
		done <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		if n, _ := r.InFlight("g"); n != 1 || sh.calls.Load() != 1 {
			return fmt.Errorf("in flight %d, on shared environments %d", n, sh.calls.Load())
		}
		return nil
	})
	if _, err := r.Invoke(context.Background(), target("g", &one), env.Invocation{}); !awserr.Is(err, awserr.CodeTooManyRequests) {
		t.Fatalf("err = %v, want a reserved-concurrency throttle", err)
	}
	close(sh.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sh.calls.Load() != 1 || st.count() != 0 {
		t.Fatalf("%d shared invocations and %d environments started, want the one shared", sh.calls.Load(), st.count())
	}
}

// TestSharedProvisionedAreKeptNotTaken: the provisioned environments the
// Shared shares are kept by the router (started, counted, replaced) but
// never taken for an invocation; spill-over runs on demand.
func TestSharedProvisionedAreKeptNotTaken(t *testing.T) {
	st := &fakeStarter{}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	var mu sync.Mutex
	provisioned := map[Env]bool{}
	r.Share(&fakeShared{shares: func(e Env) bool {
		mu.Lock()
		defer mu.Unlock()
		provisioned[e] = true
		return true
	}})
	tg := target("f", nil)
	r.SetProvisioned(tg, 2)
	poll.Until(t, 10*time.Second, func() error {
		if ready, err := r.ProvisionedStatus(tg.Key); ready != 2 || err != nil {
			return fmt.Errorf("ready %d, err %v", ready, err)
		}
		return nil
	})
	if _, err := r.Invoke(context.Background(), tg, env.Invocation{}); err != nil {
		t.Fatal(err)
	}
	if n := st.count(); n != 3 || st.specs[2].InitType != env.InitOnDemand {
		t.Fatalf("started %d environments, the last %q: want the invocation on a third, on demand", n, st.specs[2].InitType)
	}
	for i := range 2 {
		if c := st.envs[i].calls.Load(); c != 0 {
			t.Fatalf("shared provisioned environment %d was invoked %d times by the router", i, c)
		}
	}
	// A shared environment that ends (its host is gone) is replaced.
	st.envs[0].Close(context.Background())
	poll.Until(t, 10*time.Second, func() error {
		if n := st.count(); n != 4 {
			return fmt.Errorf("started %d, want a replacement", n)
		}
		if ready, _ := r.ProvisionedStatus(tg.Key); ready != 2 {
			return fmt.Errorf("ready %d", ready)
		}
		return nil
	})
	if st.specs[3].InitType != env.InitProvisioned {
		t.Fatalf("replacement init type %q", st.specs[3].InitType)
	}
	r.SetProvisioned(tg, 0)
	poll.Until(t, 10*time.Second, func() error {
		for _, i := range []int{1, 3} {
			if !st.envs[i].closed.Load() {
				return errors.New("shared provisioned environments not stopped")
			}
		}
		return nil
	})
}

// TestIdleProvisionedEnvironmentThatEndsIsReplaced: a provisioned
// environment in this process whose runtime ends between invocations is
// replaced at once, not when an invocation finds it.
func TestIdleProvisionedEnvironmentThatEndsIsReplaced(t *testing.T) {
	st := &fakeStarter{}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	tg := target("f", nil)
	r.SetProvisioned(tg, 1)
	poll.Until(t, 10*time.Second, func() error {
		if ready, _ := r.ProvisionedStatus(tg.Key); ready != 1 {
			return fmt.Errorf("ready %d", ready)
		}
		return nil
	})
	st.envs[0].Close(context.Background())
	poll.Until(t, 10*time.Second, func() error {
		if n := st.count(); n != 2 {
			return fmt.Errorf("started %d, want a replacement", n)
		}
		if ready, _ := r.ProvisionedStatus(tg.Key); ready != 1 {
			return fmt.Errorf("ready %d", ready)
		}
		return nil
	})
	res, err := r.Invoke(context.Background(), tg, env.Invocation{})
	if err != nil || string(res.Payload) != `{"env":1}` {
		t.Fatalf("invoke = %s, %v; want the replacement", res.Payload, err)
	}
}

// TestWithoutCodeSourceTheStarterGetsTheTarget: a router without a
// CodeSource leaves the code to its Starter, which gets the target.
func TestWithoutCodeSourceTheStarterGetsTheTarget(t *testing.T) {
	var got []string
	var mu sync.Mutex
	start := func(ctx context.Context, tg *Target, spec env.Spec) (Env, error) {
		mu.Lock()
		got = append(got, tg.Key+" "+tg.CodeSha256+" "+spec.CodeDir)
		mu.Unlock()
		return &fakeEnv{done: make(chan struct{})}, nil
	}
	r, err := New(Config{}, start, nil, clock.NewFake(time.Unix(0, 0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if _, err := r.Invoke(context.Background(), target("f", nil), env.Invocation{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "f:1 abc " {
		t.Fatalf("the starter got %q, want the target and no code dir", got)
	}
}
