package runtimeapi

import (
	"net/http"
	"strconv"
)

// Header names of invocation/next, as Lambda sends them (canonical form, set
// directly in the header map to skip canonicalisation on the hot path).
const (
	hdrRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline        = "Lambda-Runtime-Deadline-Ms"
	hdrInvokedARN      = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID         = "Lambda-Runtime-Trace-Id"
	hdrClientContext   = "Lambda-Runtime-Client-Context"
	hdrCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hdrErrorType       = "Lambda-Runtime-Function-Error-Type"
)

var jsonContentType = []string{"application/json"}

// handleNext serves GET /runtime/invocation/next: a long poll that returns
// the next submitted invocation.
func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.readyOnce.Do(func() { close(s.ready) })
	inv := s.take(r.Context())
	if inv == nil {
		// The poller went away or the environment is closing; nothing was
		// handed out.
		writeError(w, http.StatusServiceUnavailable, "Runtime.Closed", "environment is shutting down")
		return
	}
	h := w.Header()
	h[hdrRequestID] = []string{inv.ID}
	h[hdrDeadline] = []string{deadlineMs(inv.Deadline)}
	h[hdrInvokedARN] = []string{inv.InvokedARN}
	if inv.TraceID != "" {
		h[hdrTraceID] = []string{inv.TraceID}
	}
	if inv.ClientContext != "" {
		h[hdrClientContext] = []string{inv.ClientContext}
	}
	if inv.CognitoIdentity != "" {
		h[hdrCognitoIdentity] = []string{inv.CognitoIdentity}
	}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	h["Date"] = nil
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}
