package asyncq

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	const sixHours = 6 * time.Hour
	cases := []struct {
		name string
		a    Attempt
		want Plan
	}{
		{"success", Attempt{Outcome: OutcomeSuccess, Runs: 1, RetryAttempts: 2, MaxEventAge: sixHours}, Plan{Kind: PlanDone}},
		{"success after retries", Attempt{Outcome: OutcomeSuccess, Runs: 3, RetryAttempts: 2, MaxEventAge: sixHours}, Plan{Kind: PlanDone}},
		{"first function error waits a minute", Attempt{Outcome: OutcomeFunctionError, Age: time.Second, Runs: 1, RetryAttempts: 2, MaxEventAge: sixHours},
			Plan{Kind: PlanRetry, Delay: time.Minute}},
		{"second function error waits two", Attempt{Outcome: OutcomeFunctionError, Age: 61 * time.Second, Runs: 2, RetryAttempts: 2, MaxEventAge: sixHours},
			Plan{Kind: PlanRetry, Delay: 2 * time.Minute}},
		{"third function error exhausts the retries", Attempt{Outcome: OutcomeFunctionError, Age: 3 * time.Minute, Runs: 3, RetryAttempts: 2, MaxEventAge: sixHours},
			Plan{Kind: PlanFail, Condition: ConditionRetriesExhausted}},
		{"no retries", Attempt{Outcome: OutcomeFunctionError, Runs: 1, RetryAttempts: 0, MaxEventAge: sixHours},
			Plan{Kind: PlanFail, Condition: ConditionRetriesExhausted}},
		// AWS, recorded: a 60 s maximum age leaves no room for the first retry.
		{"the next retry would come after the maximum age", Attempt{Outcome: OutcomeFunctionError, Age: time.Second, Runs: 1, RetryAttempts: 2, MaxEventAge: time.Minute},
			Plan{Kind: PlanFail, Condition: ConditionEventAgeExceeded}},
		// AWS, recorded: with 90 s, one retry happens and the second does not.
		{"one retry fits in 90 s", Attempt{Outcome: OutcomeFunctionError, Age: 2 * time.Second, Runs: 1, RetryAttempts: 2, MaxEventAge: 90 * time.Second},
			Plan{Kind: PlanRetry, Delay: time.Minute}},
		{"the second does not", Attempt{Outcome: OutcomeFunctionError, Age: 63 * time.Second, Runs: 2, RetryAttempts: 2, MaxEventAge: 90 * time.Second},
			Plan{Kind: PlanFail, Condition: ConditionEventAgeExceeded}},
		{"first throttle: 1 s", Attempt{Outcome: OutcomeThrottled, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: time.Second}},
		{"throttles double", Attempt{Outcome: OutcomeThrottled, Backoffs: 3, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: 8 * time.Second}},
		{"up to 5 minutes", Attempt{Outcome: OutcomeThrottled, Backoffs: 20, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: 5 * time.Minute}},
		{"service errors back off as throttles", Attempt{Outcome: OutcomeServiceError, Backoffs: 2, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: 4 * time.Second}},
		{"the last wait ends at the maximum age", Attempt{Outcome: OutcomeThrottled, Age: 58 * time.Second, Backoffs: 5, MaxEventAge: time.Minute},
			Plan{Kind: PlanRetry, Delay: 2 * time.Second}},
		{"throttled at the maximum age", Attempt{Outcome: OutcomeThrottled, Age: time.Minute, Backoffs: 6, MaxEventAge: time.Minute},
			Plan{Kind: PlanFail, Condition: ConditionEventAgeExceeded}},
		{"managed instances wait briefly", Attempt{Outcome: OutcomeThrottled, Managed: true, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: 50 * time.Millisecond}},
		{"and at most a second", Attempt{Outcome: OutcomeThrottled, Managed: true, Backoffs: 9, MaxEventAge: sixHours}, Plan{Kind: PlanRetry, Delay: time.Second}},
		{"a deleted function drops the event", Attempt{Outcome: OutcomeGone, MaxEventAge: sixHours}, Plan{Kind: PlanDrop}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := p.Decide(c.a); got != c.want {
				t.Errorf("Decide(%+v) = %+v, want %+v", c.a, got, c.want)
			}
		})
	}
}
