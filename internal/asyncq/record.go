package asyncq

import (
	"encoding/json"
	"time"
)

// Conditions of an invocation record: why it was sent.
const (
	ConditionSuccess          = "Success"
	ConditionRetriesExhausted = "RetriesExhausted"
	ConditionEventAgeExceeded = "EventAgeExceeded"
	// ConditionZeroReservedConcurrency is sent when the function's reserved
	// concurrency is 0, which Lambda answers by sending events to their
	// failure targets without running them (the name Lambda gives this
	// condition is not documented; see docs/decisions/async-invocation.md).
	ConditionZeroReservedConcurrency = "ZeroReservedConcurrency"
)

// Record is Lambda's invocation record, field for field and in Lambda's
// order: what a destination receives.
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext says which event the record is about and why it was sent.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext describes the function's last answer.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// recordTimeFormat is the record's timestamp: UTC with milliseconds.
const recordTimeFormat = "2006-01-02T15:04:05.000Z"

// Response is what the function answered to one attempt.
type Response struct {
	// FunctionARN is the qualified ARN of the version that ran.
	FunctionARN     string
	ExecutedVersion string
	FunctionError   string
	Payload         []byte
}

// newRecord builds the record of an event. last is the function's last
// answer, nil when the function never ran.
func newRecord(now time.Time, requestID, functionARN, condition string, invokes int, payload []byte, last *Response) Record {
	r := Record{
		Version:   "1.0",
		Timestamp: now.UTC().Format(recordTimeFormat),
		RequestContext: RequestContext{RequestID: requestID, FunctionARN: functionARN, Condition: condition,
			ApproximateInvokeCount: invokes},
		RequestPayload: asJSON(payload),
	}
	if last != nil {
		r.RequestContext.FunctionARN = last.FunctionARN
		r.ResponseContext = &ResponseContext{StatusCode: 200, ExecutedVersion: last.ExecutedVersion, FunctionError: last.FunctionError}
		r.ResponsePayload = asJSON(last.Payload)
	}
	return r
}

// asJSON is b itself when it is JSON, else b as a JSON string: a function may
// answer bytes that are not JSON, and the record must stay a JSON document.
func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	q, _ := json.Marshal(string(b))
	return q
}

// errorMessage is the errorMessage of a function error's payload, for the
// ErrorMessage attribute of a dead letter.
func errorMessage(payload []byte) string {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &e) == nil {
		return e.ErrorMessage
	}
	return ""
}
