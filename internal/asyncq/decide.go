package asyncq

import "time"

// What happens to an event after an attempt: a pure decision, from the
// attempt's outcome, the event's history and its settings.
//
// Lambda's rules (docs.aws.amazon.com/lambda/latest/dg/invocation-async.html):
//   - a function error (the handler's error, a timeout, a crash) is retried
//     up to MaximumRetryAttempts times, one minute after the first attempt and
//     two minutes after the second; when the next attempt would come after the
//     event's maximum age, the event fails at once with EventAgeExceeded, as
//     AWS was recorded doing (LocalStack's test_maxeventage);
//   - a throttle (429) or an error of the platform (5xx) is not the
//     function's: the event goes back to the queue with a delay growing
//     exponentially from 1 second to 5 minutes, until its maximum age;
//   - on Managed Instances a throttle means every slot is busy: the event
//     waits in the queue with short delays (up to a second), so that it runs
//     as soon as a slot frees, until its maximum age.

// Outcome is how one attempt ended.
type Outcome int

const (
	// OutcomeSuccess: the function ran and answered.
	OutcomeSuccess Outcome = iota + 1
	// OutcomeFunctionError: the function ran and failed.
	OutcomeFunctionError
	// OutcomeThrottled: no concurrency was available (429).
	OutcomeThrottled
	// OutcomeServiceError: shoal could not run the function (5xx).
	OutcomeServiceError
	// OutcomeGone: the function or its qualifier no longer exists, or the
	// invocation can never succeed as it is.
	OutcomeGone
)

// Attempt is what the decision looks at.
type Attempt struct {
	Outcome Outcome
	// Age is the event's age at the end of the attempt.
	Age time.Duration
	// Runs counts the times the function ran for the event, this attempt included.
	Runs int
	// Backoffs counts the throttles and platform errors the event met since
	// the function last ran, this attempt excluded.
	Backoffs int
	// RetryAttempts and MaxEventAge are the qualifier's settings.
	RetryAttempts int
	MaxEventAge   time.Duration
	// Managed is set for a function on Managed Instances.
	Managed bool
}

// PlanKind is what to do with the event.
type PlanKind int

const (
	// PlanDone: the event succeeded.
	PlanDone PlanKind = iota + 1
	// PlanRetry: back to the queue, to be tried again after Delay.
	PlanRetry
	// PlanFail: the event failed for good (Condition says why); its failure
	// targets get it.
	PlanFail
	// PlanDrop: the event is dropped without a record (its function is gone).
	PlanDrop
)

// Plan is the decision.
type Plan struct {
	Kind      PlanKind
	Delay     time.Duration
	Condition string
}

// Policy holds the delays the decision uses.
type Policy struct {
	// RetryDelays are the waits after the first and later function errors
	// (Lambda: 1 and 2 minutes); the last repeats.
	RetryDelays []time.Duration
	// BackoffMin and BackoffMax bound the delay after a throttle or a
	// platform error (Lambda: 1 second, doubling to 5 minutes).
	BackoffMin, BackoffMax time.Duration
	// ManagedBackoffMin and ManagedBackoffMax bound it on Managed Instances.
	ManagedBackoffMin, ManagedBackoffMax time.Duration
}

// DefaultPolicy is Lambda's.
func DefaultPolicy() Policy {
	return Policy{
		RetryDelays: []time.Duration{time.Minute, 2 * time.Minute},
		BackoffMin:  time.Second, BackoffMax: 5 * time.Minute,
		ManagedBackoffMin: 50 * time.Millisecond, ManagedBackoffMax: time.Second,
	}
}

// Decide returns the plan for an attempt.
func (p Policy) Decide(a Attempt) Plan {
	switch a.Outcome {
	case OutcomeSuccess:
		return Plan{Kind: PlanDone}
	case OutcomeGone:
		return Plan{Kind: PlanDrop}
	case OutcomeFunctionError:
		if a.Runs > a.RetryAttempts {
			return Plan{Kind: PlanFail, Condition: ConditionRetriesExhausted}
		}
		delay := p.retryDelay(a.Runs)
		if a.Age+delay > a.MaxEventAge {
			return Plan{Kind: PlanFail, Condition: ConditionEventAgeExceeded}
		}
		return Plan{Kind: PlanRetry, Delay: delay}
	default: // throttled, or an error of shoal's
		remaining := a.MaxEventAge - a.Age
		if remaining <= 0 {
			return Plan{Kind: PlanFail, Condition: ConditionEventAgeExceeded}
		}
		return Plan{Kind: PlanRetry, Delay: min(p.backoff(a.Backoffs, a.Managed), remaining)}
	}
}

// retryDelay is the wait after the runs-th failed run.
func (p Policy) retryDelay(runs int) time.Duration {
	if len(p.RetryDelays) == 0 {
		return 0
	}
	return p.RetryDelays[min(runs, len(p.RetryDelays))-1]
}

// backoff is the wait after the n+1-th throttle or platform error in a row.
func (p Policy) backoff(n int, managed bool) time.Duration {
	lo, hi := p.BackoffMin, p.BackoffMax
	if managed {
		lo, hi = p.ManagedBackoffMin, p.ManagedBackoffMax
	}
	d := lo
	for range min(n, 32) {
		if d >= hi {
			break
		}
		d *= 2
	}
	return min(d, hi)
}
