package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
)

// TestDrainLetsInFlightFinish: stopping an environment lets the invocations
// in flight finish and counts them; a drain waits for the function's
// timeout at most, not for a handler that runs past it.
func TestDrainLetsInFlightFinish(t *testing.T) {
	ta := startTestAgent(t)
	ctx := context.Background()
	st := ta.start(t, "env-d", 4)
	if st.Build != "provided" {
		t.Errorf("environment build %q; want the provided runtime's", st.Build)
	}
	inFlight := func(id string, n int) func() error {
		return func() error {
			hb, _ := ta.hbs.get(ta.cfg.ID)
			for _, e := range hb.Environments {
				if e.ID == id && e.InFlight == n {
					return nil
				}
			}
			return fmt.Errorf("%s has not %d in flight", id, n)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		wg.Go(func() {
			res, err := ta.conn.Invoke(ctx, "env-d", env.Invocation{RequestID: fmt.Sprintf("d-%d", i), Payload: []byte(`{"op":"sleep","ms":1500}`)})
			if err == nil && res.FunctionError != "" {
				err = fmt.Errorf("function error %s", res.Payload)
			}
			errs <- err
		})
	}
	poll.Until(t, 10*time.Second, inFlight("env-d", 3))
	if err := ta.client.StopEnvironment(ctx, ta.cfg.ID, "env-d"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("invocation in flight when the drain began: %v", err)
		}
	}
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		if hb.DrainedInvocations != 3 || hb.CutInvocations != 0 {
			return fmt.Errorf("drained %d, cut %d; want 3 and 0", hb.DrainedInvocations, hb.CutInvocations)
		}
		if hb.Bootstrap == "" || hb.Runtimes["provided"] != "provided" {
			return fmt.Errorf("runtimes %v, bootstrap %q", hb.Runtimes, hb.Bootstrap)
		}
		return nil
	})

	// A handler that runs past its one-second timeout holds the drain no
	// longer than the timeout: its invocation answers Sandbox.Timedout.
	spec := sleepySpec(2)
	spec.Timeout = time.Second
	if _, err := ta.client.StartEnvironment(ctx, ta.cfg.ID, StartEnv{EnvID: "env-t", CapacityProvider: "cp1", CodeSha256: ta.sha, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	long := make(chan env.Result, 1)
	go func() {
		res, _ := ta.conn.Invoke(ctx, "env-t", env.Invocation{RequestID: "long", Payload: []byte(`{"op":"sleep","ms":60000}`)})
		long <- res
	}()
	poll.Until(t, 10*time.Second, inFlight("env-t", 1))
	stopped := make(chan error, 1)
	go func() { stopped <- ta.client.StopEnvironment(ctx, ta.cfg.ID, "env-t") }()
	poll.Until(t, 30*time.Second, func() error {
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
			return nil
		default:
			return errors.New("still draining")
		}
	})
	if res := <-long; res.ErrorType != "Sandbox.Timedout" {
		t.Errorf("the long invocation answered %s %s; want Sandbox.Timedout", res.ErrorType, res.Payload)
	}
}
