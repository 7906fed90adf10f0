package funcurl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
)

// invoke runs the function of an authorised request and answers with what it
// returned.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request, u *registry.FunctionURL, id, rawPath string, caller *Caller, rid string) {
	body, err := readBody(r, s.cfg.MaxRequestBytes)
	if err != nil {
		s.tooLarge(w)
		return
	}
	v, err := s.reg.ResolveInvocation(r.Context(), u.Function, u.Qualifier)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in := eventInput{r: r, id: id, rawPath: rawPath, body: body, requestID: rid, accountID: "anonymous",
		caller: caller, now: s.clock.Now(), domain: id + s.suffix, port: localPort(r)}
	if caller != nil {
		in.accountID = caller.AccountID
	}
	event := buildEvent(make([]byte, 0, 1024+len(body)*4/3), &in)
	if len(event) > s.cfg.MaxRequestBytes {
		s.tooLarge(w)
		return
	}
	req := &lambdaapi.InvokeRequest{Version: v, Qualifier: u.Qualifier, InvokedARN: s.reg.FunctionARN(u.Function, u.Qualifier),
		RequestID: rid, Payload: event}
	origin := r.Header.Get("Origin")
	if u.Mode() == registry.URLInvokeStream {
		st := &urlStream{w: w, rc: http.NewResponseController(w), cors: u.Cors, origin: origin}
		req.Stream = st
		res, err := s.inv.Invoke(r.Context(), req)
		s.endStream(w, r, st, res, err)
		return
	}
	res, err := s.inv.Invoke(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.FunctionError != "" || len(res.Payload) > s.cfg.MaxResponseBytes {
		internalError(w)
		return
	}
	status, headers, cookies, out, err := mapResponse(res.Payload)
	if err != nil {
		s.log.Debug("function answer not mapped", "function", u.Function, "request_id", rid, "err", err)
		internalError(w)
		return
	}
	h := w.Header()
	for k, v := range headers {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = []string{"application/json"}
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	applyCors(h, u.Cors, origin)
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		_, _ = io.CopyN(io.Discard, r.Body, maxRefusedDrain)
		return nil, errTooLarge
	}
	if r.ContentLength == 0 {
		return nil, nil
	}
	var b []byte
	var err error
	if r.ContentLength > 0 {
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	}
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		_, _ = io.CopyN(io.Discard, r.Body, maxRefusedDrain)
		return nil, errTooLarge
	}
	return b, nil
}

var errTooLarge = errors.New("funcurl: request too large")

func (s *Server) tooLarge(w http.ResponseWriter) {
	msg := "Request must be smaller than " + strconv.Itoa(s.cfg.MaxRequestBytes) + " bytes for the InvokeFunction operation"
	writeMessage(w, http.StatusRequestEntityTooLarge, awserr.CodeRequestTooLarge, &msg)
}

// fail answers an invocation that did not run: a throttle as 429, anything
// else as Lambda's 502.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e := awserr.As(err); e != nil && e.Status == http.StatusTooManyRequests {
		msg := e.Message
		writeMessage(w, http.StatusTooManyRequests, e.Code, &msg)
		return
	}
	if r.Context().Err() == nil {
		s.log.Warn("function URL invocation failed", "host", r.Host, "path", r.URL.Path, "err", err)
	}
	internalError(w)
}

// internalError is Lambda's answer when the function failed or its answer
// cannot be mapped: 502 Internal Server Error.
func internalError(w http.ResponseWriter) {
	const body = "Internal Server Error"
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, body)
}

// localPort is the port the request came in on.
func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return port
		}
	}
	return "80"
}

// urlResponse is a function's answer in the function URL response format.
type urlResponse struct {
	StatusCode      json.RawMessage `json:"statusCode"`
	Headers         map[string]any  `json:"headers"`
	Cookies         []string        `json:"cookies"`
	Body            json.RawMessage `json:"body"`
	IsBase64Encoded bool            `json:"isBase64Encoded"`
}

// mapResponse maps a function's answer to an HTTP response as Lambda does: an
// object with statusCode is the response format; a JSON string is the body; any
// other JSON is the body as it is (compacted), with status 200.
func mapResponse(payload []byte) (status int, headers map[string]string, cookies []string, body []byte, err error) {
	p := bytes.TrimSpace(payload)
	switch {
	case len(p) == 0 || string(p) == "null":
		return http.StatusOK, nil, nil, nil, nil
	case p[0] == '"':
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return 0, nil, nil, nil, err
		}
		return http.StatusOK, nil, nil, []byte(s), nil
	case p[0] == '{':
		var resp urlResponse
		if err := json.Unmarshal(p, &resp); err != nil {
			return 0, nil, nil, nil, err
		}
		if resp.StatusCode != nil {
			return structured(&resp)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		return 0, nil, nil, nil, err
	}
	return http.StatusOK, nil, nil, buf.Bytes(), nil
}

// structured maps an answer in the response format.
func structured(resp *urlResponse) (status int, headers map[string]string, cookies []string, body []byte, err error) {
	raw := strings.Trim(string(resp.StatusCode), `"`)
	status, err = strconv.Atoi(raw)
	if err != nil || status < 100 || status > 599 {
		return 0, nil, nil, nil, errors.New("funcurl: statusCode " + string(resp.StatusCode) + " is not an HTTP status")
	}
	if len(resp.Headers) > 0 {
		headers = make(map[string]string, len(resp.Headers))
		for k, v := range resp.Headers {
			switch x := v.(type) {
			case string:
				headers[k] = x
			case nil:
			default:
				b, _ := json.Marshal(x)
				headers[k] = string(b)
			}
		}
	}
	if b := bytes.TrimSpace(resp.Body); len(b) > 0 && string(b) != "null" {
		if b[0] == '"' {
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return 0, nil, nil, nil, err
			}
			body = []byte(s)
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return 0, nil, nil, nil, err
			}
			body = buf.Bytes()
		}
	}
	if resp.IsBase64Encoded && len(body) > 0 {
		dec, err := base64.StdEncoding.DecodeString(string(body))
		if err != nil {
			return 0, nil, nil, nil, err
		}
		body = dec
	}
	return status, headers, resp.Cookies, body, nil
}
