package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/guard"
)

// These unit tests drive the router's admission and pooling logic with an
// in-memory environment that stands in for a runtime process; the end-to-end
// tests in test/ run the same router with real processes.

type fakeEnv struct {
	id      int
	done    chan struct{}
	closed  atomic.Bool
	gate    chan struct{} // when non-nil, Invoke waits for it
	replace bool
	calls   atomic.Int32
	// donePanics is how many more calls of Done panic.
	donePanics atomic.Int32
}

func (f *fakeEnv) Invoke(ctx context.Context, inv env.Invocation) (env.Result, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
		}
	}
	return env.Result{Payload: []byte(fmt.Sprintf(`{"env":%d}`, f.id)), Replace: f.replace}, nil
}

func (f *fakeEnv) Done() <-chan struct{} {
	if f.donePanics.Add(-1) >= 0 {
		panic("the environment broke")
	}
	return f.done
}

func (f *fakeEnv) Close(context.Context) error {
	if f.closed.CompareAndSwap(false, true) {
		close(f.done)
	}
	return nil
}

type fakeStarter struct {
	mu      sync.Mutex
	envs    []*fakeEnv
	specs   []env.Spec
	gate    chan struct{}
	replace bool
	initErr *env.InitError
}

func (s *fakeStarter) start(ctx context.Context, _ *Target, spec env.Spec) (Env, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initErr != nil {
		return nil, s.initErr
	}
	e := &fakeEnv{id: len(s.envs), done: make(chan struct{}), gate: s.gate, replace: s.replace}
	s.envs = append(s.envs, e)
	s.specs = append(s.specs, spec)
	return e, nil
}

func (s *fakeStarter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.envs)
}

type dirCode struct{}

func (dirCode) CodeDir(ctx context.Context, sha string) (string, error) { return "/code/" + sha, nil }
func (dirCode) OptDir(ctx context.Context, layers []string) (string, error) {
	if len(layers) == 0 {
		return "", nil
	}
	return "/opt-of/" + strings.Join(layers, "+"), nil
}

func newTestRouter(t *testing.T, cfg Config, st *fakeStarter, clk clock.Clock) *Router {
	t.Helper()
	r, err := New(cfg, st.start, dirCode{}, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

func target(fn string, reserved *int) *Target {
	return &Target{Key: fn + ":1", Function: fn, Version: "1", CodeSha256: "abc",
		Spec: env.Spec{FunctionName: fn, Version: "1"}, Reserved: reserved}
}

func TestWarmReuseAndColdStart(t *testing.T) {
	st := &fakeStarter{}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	tg := target("f", nil)
	for i := range 3 {
		res, err := r.Invoke(context.Background(), tg, env.Invocation{RequestID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Payload) != `{"env":0}` {
			t.Fatalf("invoke %d ran on %s, want the one warm environment", i, res.Payload)
		}
	}
	if n := st.count(); n != 1 {
		t.Fatalf("started %d environments, want 1", n)
	}
	spec := st.specs[0]
	if spec.CodeDir != "/code/abc" || spec.InitType != "on-demand" || spec.MaxConcurrency != 1 {
		t.Fatalf("spec = %+v", spec)
	}
}

func TestConcurrentInvocationsGetOwnEnvironments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		st := &fakeStarter{gate: gate}
		r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
		tg := target("f", nil)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := r.Invoke(context.Background(), tg, env.Invocation{}); err != nil {
					t.Error(err)
				}
			})
		}
		settled(t, func() error {
			if n, _ := r.InFlight("f"); n != 4 {
				return fmt.Errorf("in flight %d", n)
			}
			if n := st.count(); n != 4 {
				return fmt.Errorf("started %d", n)
			}
			return nil
		})
		close(gate)
		wg.Wait()
	})
}

func TestReservedConcurrencyThrottles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		st := &fakeStarter{gate: gate}
		r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
		one := 1
		tg := target("f", &one)
		done := make(chan error, 1)
		go func() {
			_, err := r.Invoke(context.Background(), tg, env.Invocation{})
			done <- err
		}()
		settled(t, func() error {
			if n, _ := r.InFlight("f"); n != 1 {
				return fmt.Errorf("in flight %d", n)
			}
			return nil
		})
		_, err := r.Invoke(context.Background(), tg, env.Invocation{})
		e := awserr.As(err)
		if e == nil || e.Code != awserr.CodeTooManyRequests || e.Reason != awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded || e.Status != 429 {
			t.Fatalf("err = %v, want a 429 reserved-concurrency throttle", err)
		}
		zero := 0
		if _, err := r.Invoke(context.Background(), target("g", &zero), env.Invocation{}); !awserr.Is(err, awserr.CodeTooManyRequests) {
			t.Fatalf("reserved 0: err = %v, want throttle", err)
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestAccountConcurrencyThrottles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		st := &fakeStarter{gate: gate}
		r := newTestRouter(t, Config{AccountConcurrency: 3}, st, clock.NewFake(time.Unix(0, 0)))
		r.SetReservedSum(1) // one unit reserved elsewhere: the unreserved pool is 2
		var wg sync.WaitGroup
		for _, fn := range []string{"a", "b"} {
			wg.Go(func() { _, _ = r.Invoke(context.Background(), target(fn, nil), env.Invocation{}) })
		}
		settled(t, func() error {
			if _, total := r.InFlight(""); total != 2 {
				return fmt.Errorf("total %d", total)
			}
			return nil
		})
		_, err := r.Invoke(context.Background(), target("c", nil), env.Invocation{})
		if e := awserr.As(err); e == nil || e.Reason != awserr.ReasonConcurrentInvocationLimitExceeded {
			t.Fatalf("err = %v, want account throttle", err)
		}
		close(gate)
		wg.Wait()
		if _, total := r.InFlight(""); total != 0 {
			t.Fatalf("total in flight after all returned = %d", total)
		}
	})
}

func TestReplacedEnvironmentIsDiscarded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{replace: true}
		r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
		tg := target("f", nil)
		for range 2 {
			if _, err := r.Invoke(context.Background(), tg, env.Invocation{}); err != nil {
				t.Fatal(err)
			}
		}
		if n := st.count(); n != 2 {
			t.Fatalf("started %d environments, want a fresh one after a replace", n)
		}
		settled(t, func() error {
			if !st.envs[0].closed.Load() {
				return errors.New("replaced environment not closed")
			}
			return nil
		})
	})
}

func TestInitFailureAnswersFunctionError(t *testing.T) {
	st := &fakeStarter{initErr: &env.InitError{ErrorType: "Runtime.ExitError", Payload: []byte(`{"errorType":"Runtime.ExitError"}`)}}
	r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
	res, err := r.Invoke(context.Background(), target("f", nil), env.Invocation{RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || res.ErrorType != "Runtime.ExitError" {
		t.Fatalf("result = %+v", res)
	}
}

func TestIdleEnvironmentsAreReaped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(0, 0))
		st := &fakeStarter{}
		r := newTestRouter(t, Config{KeepAlive: time.Minute, ReapInterval: 10 * time.Second}, st, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		if _, err := r.Invoke(context.Background(), target("f", nil), env.Invocation{}); err != nil {
			t.Fatal(err)
		}
		settled(t, func() error {
			if clk.Waiters() == 0 {
				return errors.New("reaper not armed")
			}
			return nil
		})
		clk.Advance(30 * time.Second)
		synctest.Wait()
		if st.envs[0].closed.Load() {
			t.Fatal("reaped before keep-alive ran out")
		}
		for range 4 {
			clk.Advance(10 * time.Second)
			synctest.Wait()
		}
		settled(t, func() error {
			if !st.envs[0].closed.Load() {
				return errors.New("idle environment not reaped")
			}
			return nil
		})
	})
}

// TestReaperSurvivesPanic: a reaping round that panics is logged and
// skipped; the next rounds reap as usual.
func TestReaperSurvivesPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(0, 0))
		st := &fakeStarter{}
		r := newTestRouter(t, Config{KeepAlive: time.Minute, ReapInterval: 10 * time.Second}, st, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		if _, err := r.Invoke(context.Background(), target("f", nil), env.Invocation{}); err != nil {
			t.Fatal(err)
		}
		before := guard.Panics()
		st.envs[0].donePanics.Store(1)
		settled(t, func() error {
			if clk.Waiters() == 0 {
				return errors.New("reaper not armed")
			}
			return nil
		})
		// The first round, before the keep-alive runs out, asks whether the
		// environment is done, and panics.
		clk.Advance(10 * time.Second)
		settled(t, func() error {
			if guard.Panics() == before {
				return errors.New("no round has panicked yet")
			}
			return nil
		})
		for range 7 {
			clk.Advance(10 * time.Second)
			synctest.Wait()
		}
		settled(t, func() error {
			if !st.envs[0].closed.Load() {
				return errors.New("idle environment not reaped")
			}
			return nil
		})
	})
}

func TestProvisionedFirstThenSpillOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		st := &fakeStarter{gate: gate}
		r := newTestRouter(t, Config{}, st, clock.NewFake(time.Unix(0, 0)))
		tg := target("f", nil)
		r.SetProvisioned(tg, 2)
		settled(t, func() error {
			ready, err := r.ProvisionedStatus(tg.Key)
			if err != nil || ready != 2 {
				return fmt.Errorf("ready %d, err %v", ready, err)
			}
			return nil
		})
		for _, s := range st.specs {
			if s.InitType != "provisioned-concurrency" {
				t.Fatalf("provisioned spec init type %q", s.InitType)
			}
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { _, _ = r.Invoke(context.Background(), tg, env.Invocation{}) })
		}
		settled(t, func() error {
			if n := st.count(); n != 3 {
				return fmt.Errorf("started %d, want 2 provisioned + 1 spill-over", n)
			}
			return nil
		})
		close(gate)
		wg.Wait()
		if st.specs[2].InitType != "on-demand" {
			t.Fatalf("spill-over init type %q", st.specs[2].InitType)
		}
		for i := range 2 {
			if st.envs[i].calls.Load() != 1 {
				t.Fatalf("provisioned env %d served %d calls, want 1", i, st.envs[i].calls.Load())
			}
		}
		r.SetProvisioned(tg, 0)
		settled(t, func() error {
			if ready, _ := r.ProvisionedStatus(tg.Key); ready != 0 {
				return fmt.Errorf("ready %d after removing", ready)
			}
			return nil
		})
	})
}

// settled waits until every goroutine of the test's bubble is blocked
// (synctest.Wait) and fails the test if check does not hold then: the router
// and the fake environments are all in the bubble, so what they will do
// without further input is done.
func settled(t *testing.T, check func() error) {
	t.Helper()
	synctest.Wait()
	if err := check(); err != nil {
		t.Fatal(err)
	}
}
