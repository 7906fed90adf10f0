package clock

import (
	"testing"
	"time"
)

func TestFakeTimerAndTicker(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	tm := f.NewTimer(2 * time.Second)
	tk := f.NewTicker(time.Second)
	f.Advance(time.Second)
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	default:
	}
	if got := <-tk.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	f.Advance(time.Second)
	if got := <-tm.C(); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("timer at %v", got)
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported it was pending")
	}
	tk.Stop()
	if n := f.Waiters(); n != 0 {
		t.Fatalf("waiters = %d, want 0", n)
	}
}
