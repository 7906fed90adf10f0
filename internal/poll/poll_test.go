package poll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheCheckPasses(t *testing.T) {
	calls := 0
	Until(t, time.Minute, func() error {
		calls++
		if calls < 4 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 4 {
		t.Fatalf("check called %d times, want 4", calls)
	}
}

// fatalRecorder is a test whose Fatalf records the message instead of
// stopping the goroutine.
type fatalRecorder struct {
	testing.TB
	failed string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestUntilFailsWithTheLastError(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	calls := 0
	Until(rec, 20*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("still %d", calls)
	})
	if calls < 2 {
		t.Errorf("check called %d times, want it retried", calls)
	}
	want := fmt.Sprintf("condition not met after 20ms: still %d", calls)
	if rec.failed != want {
		t.Errorf("failed with %q, want %q", rec.failed, want)
	}
}

func TestUntilChecksOnceMoreAtTheDeadline(t *testing.T) {
	// A zero timeout still calls the check once and passes if it holds.
	Until(t, 0, func() error { return nil })
	err := until(0, func() error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Fatalf("until = %v, want the check's error", err)
	}
}
