// Package poll waits, in tests, for a condition that other goroutines or
// processes bring about. Until calls a check again and again, backing off
// from one millisecond to 50, and fails the test with the check's last error
// once the time is up; the check's error says what is still missing.
//
// It replaces sleeping in a test. Where the code under test takes a
// clock.Clock and does no I/O, testing/synctest waits for it without polling
// (see internal/router's tests). Only tests import this package.
package poll

import (
	"testing"
	"time"
)

// maxDelay bounds the wait between two checks.
const maxDelay = 50 * time.Millisecond

// Until calls check until it returns nil. Once timeout has passed since the
// first call and check still fails, Until fails t with check's last error.
// Like t.Fatal, it must be called from the goroutine running the test.
func Until(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	if err := until(timeout, check); err != nil {
		t.Fatalf("condition not met after %v: %v", timeout, err)
	}
}

// until is Until without the test: nil once check passes, else check's last
// error when timeout has passed.
func until(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := check()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(min(delay, time.Until(deadline)+time.Millisecond))
		delay = min(2*delay, maxDelay)
	}
}
