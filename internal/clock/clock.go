// Package clock lets every ticker, timeout and reaper take its time from an
// injected source, so tests drive time instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock is the part of package time that components use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that fires every d.
	NewTicker(d time.Duration) Ticker
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Ticker fires repeatedly.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

func (Real) Now() time.Time { return time.Now() }

func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a clock that moves only when Advance is called.
type Fake struct {
	mu      sync.Mutex // guards everything below
	now     time.Time
	waiters []*fakeWaiter
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeWaiter struct {
	at     time.Time
	period time.Duration // zero for a timer
	c      chan time.Time
	done   bool
}

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) add(d, period time.Duration) *fakeWaiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{at: f.now.Add(d), period: period, c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	return w
}

func (f *Fake) NewTimer(d time.Duration) Timer { return &fakeTimer{f: f, w: f.add(d, 0)} }

func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	return &fakeTicker{f: f, w: f.add(d, d)}
}

// Advance moves the clock forward by d and fires every timer and ticker due by then.
// A ticker that is due several times fires once per period, dropping ticks its reader
// has not taken, as time.Ticker does.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.done {
			continue
		}
		for !w.done && !w.at.After(f.now) {
			select {
			case w.c <- w.at:
			default:
			}
			if w.period == 0 {
				w.done = true
			} else {
				w.at = w.at.Add(w.period)
			}
		}
		if !w.done {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

// Waiters reports how many timers and tickers are pending; tests use it to know a
// loop has armed its next wait before advancing.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiters {
		if !w.done {
			n++
		}
	}
	return n
}

func (f *Fake) stop(w *fakeWaiter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := !w.done
	w.done = true
	return was
}

type fakeTimer struct {
	f *Fake
	w *fakeWaiter
}

func (t *fakeTimer) C() <-chan time.Time { return t.w.c }
func (t *fakeTimer) Stop() bool          { return t.f.stop(t.w) }

type fakeTicker struct {
	f *Fake
	w *fakeWaiter
}

func (t *fakeTicker) C() <-chan time.Time { return t.w.c }
func (t *fakeTicker) Stop()               { t.f.stop(t.w) }
