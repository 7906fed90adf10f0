package env

import (
	"time"

	"github.com/shoal-dev/shoal/internal/meter"
)

// UsageEvent is the usage event of one finished invocation of an environment
// of spec, on the given compute type (meter.OnDemand, meter.Provisioned or
// meter.ManagedInstances). The caller adds where it ran.
func UsageEvent(spec *Spec, requestID string, start time.Time, r *Result, compute string) *meter.Event {
	ev := &meter.Event{
		ID: "inv-" + requestID, Kind: meter.KindInvocation, Start: start, End: start.Add(r.Duration),
		Function: spec.FunctionName, Version: spec.Version, Compute: compute,
		Architecture: spec.Architecture, MemoryMB: spec.MemoryMB,
		RequestID: requestID, DurationMs: meter.Ms(r.Duration), InitMs: meter.Ms(r.InitDuration),
		CPUMs: meter.Ms(r.CPUTime), MaxMemoryUsedMB: r.MaxMemoryUsedMB,
		Outcome: meter.Outcome(r.FunctionError, r.ErrorType), ErrorType: r.ErrorType,
	}
	if compute != meter.ManagedInstances {
		ev.BilledMs = int64(r.BilledDuration / time.Millisecond)
	}
	if ev.Architecture == "" {
		ev.Architecture = "x86_64"
	}
	return ev
}
