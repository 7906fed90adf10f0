package meter

import "time"

// Outcome classifies an invocation by its X-Amz-Function-Error and its
// error type.
func Outcome(functionError, errorType string) string {
	switch {
	case functionError == "":
		return OutcomeSuccess
	case errorType == "Sandbox.Timedout":
		return OutcomeTimeout
	case errorType == "Runtime.ExitError" || errorType == "Runtime.OutOfMemory":
		return OutcomeCrash
	default:
		return OutcomeError
	}
}

// Ms is d in milliseconds, as events carry durations.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
