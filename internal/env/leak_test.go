package env

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/internal/poll"
)

// Environments leave no goroutines behind once closed, whichever way they
// end (Close, timeout, crash).
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t)
	spec := goSpec("leak")
	spec.Timeout = time.Second
	for _, payload := range []string{`"x"`, `{"mode":"exit"}`, `{"mode":"sleep","sleepMs":5000}`} {
		env, err := Start(context.Background(), spec, h.deps)
		if err != nil {
			t.Fatal(err)
		}
		r := invoke(t, env, payload, true)
		if err := env.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-env.Done()
		_ = r
	}
	// A cancelled caller whose answer arrives later.
	env, err := Start(context.Background(), spec, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for env.InFlight() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, _ = env.Invoke(ctx, Invocation{RequestID: newReqID(), Payload: []byte(`{"mode":"sleep","sleepMs":50}`)})
	poll.Until(t, 5*time.Second, func() error {
		if env.InFlight() != 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err := env.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
