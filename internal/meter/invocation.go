package meter

import (
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// InvocationEvent is the usage event of one finished invocation of an
// environment of spec. The caller adds where it ran.
func InvocationEvent(spec *env.Spec, requestID string, start time.Time, r *env.Result, compute string) *Event {
	ev := &Event{
		ID: "inv-" + requestID, Kind: KindInvocation, Start: start, End: start.Add(r.Duration),
		Function: spec.FunctionName, Version: spec.Version, Compute: compute,
		Architecture: spec.Architecture, MemoryMB: spec.MemoryMB,
		RequestID: requestID, DurationMs: ms(r.Duration), InitMs: ms(r.InitDuration),
		CPUMs: ms(r.CPUTime), MaxMemoryUsedMB: r.MaxMemoryUsedMB,
		Outcome: Outcome(r), ErrorType: r.ErrorType,
	}
	if compute != ManagedInstances {
		ev.BilledMs = int64(r.BilledDuration / time.Millisecond)
	}
	if ev.Architecture == "" {
		ev.Architecture = "x86_64"
	}
	return ev
}

// Outcome classifies a result.
func Outcome(r *env.Result) string {
	switch {
	case r.FunctionError == "":
		return OutcomeSuccess
	case r.ErrorType == "Sandbox.Timedout":
		return OutcomeTimeout
	case r.ErrorType == "Runtime.ExitError" || r.ErrorType == "Runtime.OutOfMemory":
		return OutcomeCrash
	default:
		return OutcomeError
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
