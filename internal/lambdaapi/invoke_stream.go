package lambdaapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// InvokeWithResponseStream: the function's response reaches the caller as the
// runtime sends it, in AWS's event-stream encoding — PayloadChunk events, then
// one InvokeComplete with the error (if any) and the log tail — so the AWS SDKs
// read it unchanged. The HTTP status (200) and headers go out with the first
// chunk: X-Amz-Executed-Version, and the response's content type as
// Content-Type (the SDKs' ResponseStreamContentType). A function error ends
// the stream with InvokeComplete's ErrorCode (the error type, e.g.
// Sandbox.Timedout) and ErrorDetails (its message).

// ResponseStream receives a streamed response (InvokeRequest.Stream): Start once
// with the response's content type, then Write for each piece as it arrives.
type ResponseStream interface {
	Start(contentType string)
	Write(p []byte) (int, error)
}

// DefaultStreamContentType is the content type of a streamed response whose
// function named none.
const DefaultStreamContentType = "application/octet-stream"

// maxStreamChunk bounds one PayloadChunk's payload.
const maxStreamChunk = 64 << 10

func (a *api) invokeWithResponseStream(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	dryRun := false
	switch it := headerValue(r, hdrInvocationType); it {
	case "", "RequestResponse":
	case "DryRun":
		dryRun = true
	default:
		return validationError(it, "invocationType", "Member must satisfy enum value set: [RequestResponse, DryRun]")
	}
	tail := false
	switch lt := headerValue(r, hdrLogType); lt {
	case "", "None":
	case "Tail":
		tail = true
	default:
		return validationError(lt, "logType", "Member must satisfy enum value set: [Tail, None]")
	}
	clientContext, err := decodeClientContext(headerValue(r, hdrClientContext))
	if err != nil {
		return err
	}
	payload, err := a.readPayload(r, a.cfg.MaxInvokeRequestBytes)
	if err != nil {
		return err
	}
	v, err := a.reg.ResolveInvocation(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		if ref.Qualifier == "" && awserr.Is(err, awserr.CodeResourceNotFound) {
			return awserr.NotFound("Function not found: %s", a.reg.FunctionARN(ref.Name, registry.Latest))
		}
		return err
	}
	if dryRun {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	es := &eventStreamWriter{w: w, rc: http.NewResponseController(w), executed: v.Version, enc: eventstream.NewEncoder()}
	req := &InvokeRequest{
		Version:       v,
		Qualifier:     ref.Qualifier,
		InvokedARN:    a.reg.FunctionARN(ref.Name, ref.Qualifier),
		RequestID:     requestID(w),
		Payload:       payload,
		ClientContext: clientContext,
		TailLog:       tail,
		Stream:        es,
	}
	res, err := a.inv.Invoke(r.Context(), req)
	if err != nil {
		if !es.started {
			return err // nothing sent yet: an ordinary error answer
		}
		// The stream has begun: the failure can only end it.
		e := awserr.As(err)
		if e == nil {
			e = awserr.Service(err, "An internal error occurred.")
		}
		a.log.Error("streamed invocation failed", "request_id", req.RequestID, "err", err)
		return es.complete(e.Code, e.Message, nil)
	}
	if res.ExecutedVersion != "" {
		es.executed = res.ExecutedVersion
	}
	if !es.started {
		ct := res.ContentType
		if ct == "" {
			ct = "application/json"
		}
		es.Start(ct)
	}
	if !res.Streamed && res.FunctionError == "" && len(res.Payload) > 0 {
		if _, err := es.Write(res.Payload); err != nil {
			return nil // the caller is gone
		}
	}
	var logTail []byte
	if tail {
		logTail = res.LogTail
	}
	if res.FunctionError != "" {
		code, details := functionErrorDetails(res)
		return es.complete(code, details, logTail)
	}
	return es.complete("", "", logTail)
}

// functionErrorDetails is InvokeComplete's ErrorCode and ErrorDetails for a
// function error: its type, and the message of its error JSON.
func functionErrorDetails(res *InvokeResult) (code, details string) {
	var body struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(res.Payload, &body) != nil {
		body.ErrorMessage = string(res.Payload)
	}
	code = res.ErrorType
	if code == "" {
		code = body.ErrorType
	}
	if code == "" {
		code = res.FunctionError
	}
	return code, body.ErrorMessage
}

// eventStreamWriter writes a streamed response as event-stream messages on an
// HTTP response. It is used from one goroutine at a time: the runtime's
// connection while the function runs, the handler after.
type eventStreamWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	enc      *eventstream.Encoder
	executed string
	started  bool
	failed   error
}

// Start sends the status and headers.
func (s *eventStreamWriter) Start(contentType string) {
	if s.started {
		return
	}
	s.started = true
	if contentType == "" {
		contentType = DefaultStreamContentType
	}
	h := s.w.Header()
	h["Content-Type"] = []string{contentType}
	h[hdrExecutedVersion] = []string{s.executed}
	s.w.WriteHeader(http.StatusOK)
	s.failed = s.rc.Flush()
}

// Write sends p as PayloadChunk events.
func (s *eventStreamWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.Start(DefaultStreamContentType)
	}
	if s.failed != nil {
		return 0, s.failed
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxStreamChunk)
		if err := s.send("PayloadChunk", "application/octet-stream", p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	s.failed = s.rc.Flush()
	return n, s.failed
}

// complete sends InvokeComplete.
func (s *eventStreamWriter) complete(code, details string, logTail []byte) error {
	if s.failed != nil {
		return nil
	}
	var ev struct {
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorDetails string `json:"ErrorDetails,omitempty"`
		LogResult    string `json:"LogResult,omitempty"`
	}
	ev.ErrorCode, ev.ErrorDetails = code, details
	if logTail != nil {
		ev.LogResult = base64.StdEncoding.EncodeToString(logTail)
	}
	b, _ := json.Marshal(&ev)
	if err := s.send("InvokeComplete", "application/json", b); err == nil {
		_ = s.rc.Flush()
	}
	return nil
}

func (s *eventStreamWriter) send(event, contentType string, payload []byte) error {
	err := s.enc.Encode(s.w, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue(event)},
			{Name: ":content-type", Value: eventstream.StringValue(contentType)},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: payload,
	})
	if err != nil {
		s.failed = err
	}
	return err
}
