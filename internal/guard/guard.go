// Package guard keeps a panic in one of shoal's server goroutines from
// ending the process: a request handler, an invocation's goroutine, a
// connection's, a command's, one round of a background loop. Deferred at
// the top of such a goroutine (or round), Recover recovers the panic, logs
// it with its stack, counts it, and hands it to the caller as an error to
// answer with. The package knows nothing of what the goroutine serves: the
// caller answers its own caller (a ServiceException, an error frame).
package guard

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
)

// panics counts the panics recovered in this process.
var panics atomic.Int64

// Panics is how many panics Recover has recovered in this process.
func Panics() int64 { return panics.Load() }

// PanicError is a recovered panic.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack where it panicked
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Recover must be deferred directly: defer guard.Recover(log, "what", answer).
// When the goroutine panics, it recovers, logs the panic and its stack at
// Error under what, counts it, and calls answer (if not nil) with a
// *PanicError; the goroutine then returns normally from the function that
// deferred it.
func Recover(log *slog.Logger, what string, answer func(err error)) {
	v := recover()
	if v == nil {
		return
	}
	err := &PanicError{Value: v, Stack: debug.Stack()}
	panics.Add(1)
	if log != nil {
		log.Error("recovered from a panic; serving on", "in", what, "panic", fmt.Sprint(v), "stack", string(err.Stack))
	}
	if answer != nil {
		answer(err)
	}
}

// Run calls f, recovering a panic in it as Recover does; it returns the
// panic as a *PanicError, or nil when f returned normally. One round of a
// background loop runs under it, so that a panicking round is logged and the
// loop goes on to the next.
func Run(log *slog.Logger, what string, f func()) (err error) {
	defer Recover(log, what, func(e error) { err = e })
	f()
	return nil
}
