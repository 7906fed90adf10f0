package wire

import (
	"errors"
	"fmt"
)

// Reasons an agent refuses an invocation. A refusal is immediate: the agent
// never queues, so the router can try another environment at once.
const (
	// ReasonConcurrency: every slot of the environment is taken.
	ReasonConcurrency = "concurrency"
	// ReasonCPU: the instance's CPU utilisation is above its threshold.
	ReasonCPU = "cpu"
	// ReasonMemory: the instance's memory is nearly exhausted.
	ReasonMemory = "memory"
	// ReasonUnknown: the instance has no such environment (never started,
	// stopped, or failed).
	ReasonUnknown = "unknown"
	// ReasonDraining: the environment or the whole instance is draining.
	ReasonDraining = "draining"
)

// RefusedError is an agent's refusal of one invocation. The invocation did
// not start; it is safe to send it elsewhere.
type RefusedError struct {
	Reason  string // one of the Reason constants
	Message string
}

func (e *RefusedError) Error() string {
	if e.Message == "" {
		return "wire: invocation refused: " + e.Reason
	}
	return "wire: invocation refused: " + e.Reason + ": " + e.Message
}

// Refused builds a RefusedError.
func Refused(reason, format string, args ...any) *RefusedError {
	return &RefusedError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// AsRefused returns the refusal err wraps, if any.
func AsRefused(err error) (*RefusedError, bool) {
	var r *RefusedError
	ok := errors.As(err, &r)
	return r, ok
}

// RemoteError is a failure the agent's handler reported for one invocation
// (not a refusal): the invocation may or may not have run.
type RemoteError struct {
	Message string
}

func (e *RemoteError) Error() string { return "wire: agent: " + e.Message }

// ErrClosed is returned by Invoke once Close was called on the connection.
var ErrClosed = errors.New("wire: connection closed")

// ConnError reports that the connection broke: every invocation in flight on
// it fails with one. Whether those invocations ran is unknown.
type ConnError struct {
	Err error
}

func (e *ConnError) Error() string { return "wire: connection lost: " + e.Err.Error() }
func (e *ConnError) Unwrap() error { return e.Err }
