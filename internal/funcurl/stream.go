package funcurl

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
)

// RESPONSE_STREAM mode: the function's response goes to the HTTP client as the
// function writes it. A function that streams with the HTTP integration
// content type (Node's awslambda.HttpResponseStream, aws-lambda-go's
// LambdaFunctionURLStreamingResponse) sends its status, headers and cookies
// first, as JSON ended by eight zero bytes; any other streamed response goes
// out with status 200 and its own content type. A function that answers at
// once has its answer sent as it is.

// integrationType is the content type of a streamed response that begins with
// its HTTP metadata.
const integrationType = "application/vnd.awslambda.http-integration-response"

// maxPrelude bounds the metadata ahead of a streamed body.
const maxPrelude = 64 << 10

var (
	preludeEnd     = make([]byte, 8)
	errBadPrelude  = errors.New("funcurl: the streamed response's metadata is not valid")
	errLongPrelude = errors.New("funcurl: the streamed response's metadata does not end")
)

// urlStream writes a streamed response to the HTTP client. It is used from one
// goroutine at a time: the runtime's connection while the function runs, the
// handler after.
type urlStream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	cors   *registry.Cors
	origin string

	started     bool   // Start was called
	integration bool   // the response begins with its HTTP metadata
	prelude     []byte // the metadata so far
	sent        bool   // status and headers are out
	failed      error
}

var _ lambdaapi.ResponseStream = (*urlStream)(nil)

func (s *urlStream) Start(contentType string) {
	s.started = true
	if contentType == integrationType {
		s.integration = true
		return
	}
	s.header(http.StatusOK, map[string]string{"content-type": contentType}, nil)
}

// header sends the status and headers.
func (s *urlStream) header(status int, headers map[string]string, cookies []string) {
	h := s.w.Header()
	for k, v := range headers {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = []string{lambdaapi.DefaultStreamContentType}
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	applyCors(h, s.cors, s.origin)
	s.w.WriteHeader(status)
	s.sent = true
	s.failed = s.rc.Flush()
}

func (s *urlStream) Write(p []byte) (int, error) {
	if s.failed != nil {
		return 0, s.failed
	}
	n := len(p)
	if s.integration && !s.sent {
		s.prelude = append(s.prelude, p...)
		i := bytes.Index(s.prelude, preludeEnd)
		if i < 0 {
			if len(s.prelude) > maxPrelude {
				s.failed = errLongPrelude
			}
			return n, s.failed
		}
		var meta struct {
			StatusCode json.RawMessage   `json:"statusCode"`
			Headers    map[string]string `json:"headers"`
			Cookies    []string          `json:"cookies"`
		}
		if err := json.Unmarshal(s.prelude[:i], &meta); err != nil {
			s.failed = errBadPrelude
			return 0, s.failed
		}
		status := http.StatusOK
		if meta.StatusCode != nil {
			code, err := strconv.Atoi(string(bytes.Trim(meta.StatusCode, `"`)))
			if err != nil || code < 100 || code > 599 {
				s.failed = errBadPrelude
				return 0, s.failed
			}
			status = code
		}
		rest := s.prelude[i+len(preludeEnd):]
		s.prelude = nil
		s.header(status, meta.Headers, meta.Cookies)
		if len(rest) == 0 || s.failed != nil {
			return n, s.failed
		}
		p = rest
	}
	if _, err := s.w.Write(p); err != nil {
		s.failed = err
		return 0, err
	}
	s.failed = s.rc.Flush()
	return n, s.failed
}

// endStream finishes a RESPONSE_STREAM answer once the invocation is over.
func (s *Server) endStream(w http.ResponseWriter, r *http.Request, st *urlStream, res *lambdaapi.InvokeResult, err error) {
	switch {
	case st.sent:
		// The answer is out; a failure now can only end it early, as on Lambda.
	case err != nil:
		s.fail(w, r, err)
	case res.FunctionError != "" || (res.Streamed && st.integration):
		// A function error before any byte, or metadata that never ended.
		internalError(w)
	case !res.Streamed:
		ct := res.ContentType
		if ct == "" {
			ct = "application/json"
		}
		st.header(http.StatusOK, map[string]string{"content-type": ct}, nil)
		_, _ = st.Write(res.Payload)
	}
}
