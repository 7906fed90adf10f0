package lambdaapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/randid"
)

// upperMessage lists the errors whose body spells the message "Message": Lambda's
// model names the member so for these, "message" for the rest. The SDKs decode a
// modelled error's members by these names, so a wrong spelling loses the message.
var upperMessage = map[string]bool{
	awserr.CodeResourceNotFound:          true,
	awserr.CodeResourceInUse:             true,
	awserr.CodeService:                   true,
	awserr.CodeInvalidZipFile:            true,
	awserr.CodeInvalidRuntime:            true,
	awserr.CodeNoPublishedVersion:        true,
	"CodeSigningConfigNotFoundException": true,
	"InvalidSecurityGroupIDException":    true,
	"InvalidSubnetIDException":           true,
	"ServiceQuotaExceededException":      true,
	"RecursiveInvocationException":       true,
	"SnapStartException":                 true,
	"SnapStartNotReadyException":         true,
	"KMSAccessDeniedException":           true,
	"EFSIOException":                     true,
	"ENILimitReachedException":           true,
	awserr.CodeUnknownOperation:          true,
}

// untyped lists errors that Lambda's front end answers before the service model
// applies; their body has only a message, as AWS sends them (none when the error
// has none).
var untyped = map[string]bool{
	awserr.CodeValidation:                 true,
	awserr.CodeAccessDenied:               true,
	"RequestEntityTooLargeException":      true,
	awserr.CodeMissingAuthenticationToken: true,
	awserr.CodeUnrecognizedClient:         true,
	awserr.CodeInvalidSignature:           true,
	awserr.CodeIncompleteSignature:        true,
}

// errorBody is the JSON of an error response. Field order follows Lambda's.
type errorBody struct {
	Type         string  `json:"Type,omitempty"`
	UpperMessage *string `json:"Message,omitempty"`
	LowerMessage *string `json:"message,omitempty"`
	Reason       string  `json:"Reason,omitempty"`
}

// writeError is the one place an error becomes a response: status, X-Amzn-ErrorType,
// Retry-After on throttles, and the body. Errors that are not *awserr.Error are
// internal failures: logged, and sent as a 500 ServiceException.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := awserr.As(err)
	if e == nil {
		e = awserr.Service(err, "An internal error occurred.")
	}
	if e.Status >= 500 {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(w), "err", err)
	} else {
		a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(w), "code", e.Code, "message", e.Message)
	}
	status, header, body := errorResponse(e)
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError answers err as Lambda does, with a fresh request id, for a part of
// shoal that refuses a request before the API sees it (signature verification).
// Errors that are not *awserr.Error are sent as a 500 ServiceException.
func WriteError(w http.ResponseWriter, err error) {
	e := awserr.As(err)
	if e == nil {
		e = awserr.Service(err, "An internal error occurred.")
	}
	status, header, body := errorResponse(e)
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	h[hdrRequestID] = []string{randid.UUID()}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorResponse renders e as Lambda does.
func errorResponse(e *awserr.Error) (status int, header http.Header, body []byte) {
	status = e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	header = http.Header{
		"Content-Type":     {"application/json"},
		"X-Amzn-Errortype": {e.Code},
	}
	if e.RetryAfterSeconds > 0 {
		header["Retry-After"] = []string{strconv.Itoa(e.RetryAfterSeconds)}
	}
	msg := e.Message
	var b errorBody
	switch {
	case untyped[e.Code] && msg == "":
		// Sent with no message at all (AccessDeniedException for another account).
	case untyped[e.Code]:
		b.LowerMessage = &msg
	case upperMessage[e.Code]:
		b.UpperMessage = &msg
	default:
		b.LowerMessage = &msg
	}
	if !untyped[e.Code] && !e.Untyped {
		b.Type = e.Type
		if b.Type == "" {
			b.Type = "User"
		}
	}
	b.Reason = e.Reason
	body, _ = json.Marshal(&b)
	return status, header, body
}

// Recovering serves h so that a handler that panics never takes the server
// down: the panic is logged with its stack and answered 500 ServiceException
// (through errorResponse), or, when the handler had already begun its
// response, the connection is cut so that the client sees it broken rather
// than complete. The Lambda API serves itself this way; shoal up wraps its
// other endpoints in it too.
func Recovering(h http.Handler, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return recovering(h, logger.With("component", "lambdaapi"))
}

func recovering(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveRecovering(h, log, w, r) })
}

// serveRecovering serves one request of h as Recovering does.
func serveRecovering(h http.Handler, log *slog.Logger, w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(*recoverWriter); ok {
		h.ServeHTTP(w, r) // an outer Recovering answers
		return
	}
	rw := &recoverWriter{ResponseWriter: w}
	defer guard.Recover(log, "HTTP request", func(err error) {
		if rw.wrote {
			panic(http.ErrAbortHandler)
		}
		status, header, body := errorResponse(awserr.Service(err, "An internal error occurred."))
		h := w.Header()
		for k := range h {
			if k != hdrRequestID { // what the handler meant to send goes
				delete(h, k)
			}
		}
		for k, v := range header {
			h[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	h.ServeHTTP(rw, r)
}

// recoverWriter notes whether a response has begun.
type recoverWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *recoverWriter) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *recoverWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (log tails) flush through the wrapper.
func (w *recoverWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *recoverWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
