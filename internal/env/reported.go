package env

import "time"

// ReportedInitError is the failed init of an environment that ran elsewhere
// (an agent's, from its reply), as an *InitError: Answer names the
// invocation's request id where the platform made the error (platform: an
// exit, a timeout, a missing bootstrap), and records nothing unless
// Recording says where.
func ReportedInitError(errorType, message string, payload, log []byte, initDuration time.Duration, platform bool) *InitError {
	return &InitError{ErrorType: errorType, Message: message, Payload: payload, Log: log,
		InitDuration: initDuration, platform: platform}
}

// Platform reports that the platform made the error, not the function's init.
func (e *InitError) Platform() bool { return e.platform }

// Recording makes Answer record the invocation it answers in usage, as an
// environment of spec in this process would have, its init begun at started:
// the front that answers an invocation with a failed init that ran on
// another machine meters it, exactly once. It returns e.
func (e *InitError) Recording(spec Spec, usage UsageSink, started time.Time) *InitError {
	spec.withDefaults()
	e.spec, e.usage, e.started = spec, usage, started
	return e
}
