// Package funcurl is the front door of function URLs: an HTTP handler that
// finds the URL a request is for — by host name as on AWS
// (<url-id>.lambda-url.<region>.on.aws) or by a path form (/<url-id>/…) for
// clients that cannot set the Host header — authorises it as Lambda does
// (AuthType AWS_IAM: a SigV4 signature; NONE: a resource-policy statement
// allowing lambda:InvokeFunctionUrl to everyone), answers CORS preflights,
// turns the request into a payload format 2.0 event, invokes the function
// through the same Invoker as the REST API, and maps its answer back to HTTP:
// buffered (statusCode, headers, cookies, body, isBase64Encoded, or any other
// JSON as 200 application/json) or, in RESPONSE_STREAM mode, streamed as the
// function writes.
//
// It owns no state: URLs, policies and versions come from the registry. It
// must not be reachable from execution environments (their network drops
// whatever they send to the host) and it never runs code itself.
package funcurl

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Lambda's limits on a function URL's request and buffered response.
const (
	DefaultMaxRequestBytes  = 6291456 // the event, as Invoke's payload
	DefaultMaxResponseBytes = 6291556
)

// Config configures the front door.
type Config struct {
	// Region and AccountID are the ones the URLs' host names and events name.
	Region, AccountID string
	// MaxRequestBytes bounds a request's event (default DefaultMaxRequestBytes).
	MaxRequestBytes int
	// MaxResponseBytes bounds a buffered response (default DefaultMaxResponseBytes).
	MaxResponseBytes int
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return nil
}

// Registry is what the front door reads of the registry; *registry.Registry
// implements it.
type Registry interface {
	ResolveFunctionURL(id string) (*registry.FunctionURL, *registry.Policy, bool)
	ResolveInvocation(ctx context.Context, function, qualifier string) (*registry.Version, error)
	FunctionARN(name, qualifier string) string
}

var _ Registry = (*registry.Registry)(nil)

// Caller is who signed a request to an AWS_IAM URL, as the event's
// requestContext.authorizer.iam shows it.
type Caller struct {
	AccessKeyID string
	AccountID   string
	UserARN     string
	UserID      string
}

// Authenticator checks the SigV4 signature of a request to an AWS_IAM URL (service
// "lambda") and returns who made it. It may read the body to hash it, and must
// then put an equivalent one back.
type Authenticator interface {
	Authenticate(r *http.Request) (*Caller, error)
}

// Deps are the front door's collaborators. Auth may be nil: AWS_IAM URLs then
// refuse every request.
type Deps struct {
	Registry Registry
	Invoker  lambdaapi.Invoker
	Auth     Authenticator
	Logger   *slog.Logger
	Clock    clock.Clock
}

// Server is the front door. It is safe for concurrent use; everything in it is
// immutable after New.
type Server struct {
	cfg    Config
	reg    Registry
	inv    lambdaapi.Invoker
	auth   Authenticator
	log    *slog.Logger
	clock  clock.Clock
	suffix string // ".lambda-url.<region>.on.aws"
}

// New returns the front door.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clk := deps.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	return &Server{cfg: cfg, reg: deps.Registry, inv: deps.Invoker, auth: deps.Auth,
		log: logger.With("component", "funcurl"), clock: clk,
		suffix: ".lambda-url." + cfg.Region + ".on.aws"}, nil
}

// idLength is the length of a URL id.
const idLength = 32

// route finds the URL id of a request and the path the function sees.
func (s *Server) route(r *http.Request) (id, rawPath string, ok bool) {
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	p := r.URL.EscapedPath()
	if len(host) == idLength+len(s.suffix) && strings.EqualFold(host[idLength:], s.suffix) {
		id = strings.ToLower(host[:idLength])
		if validID(id) {
			return id, p, true
		}
	}
	// The path form: /<id>/rest.
	if len(p) > idLength && p[0] == '/' && validID(p[1:idLength+1]) && (len(p) == idLength+1 || p[idLength+1] == '/') {
		rest := p[idLength+1:]
		if rest == "" {
			rest = "/"
		}
		return p[1 : idLength+1], rest, true
	}
	return "", "", false
}

func validID(s string) bool {
	if len(s) != idLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// forbiddenMessage is what Lambda answers a request it does not authorise.
const forbiddenMessage = "Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"

// hdrRequestID is x-amzn-RequestId in Go's canonical form.
const hdrRequestID = "X-Amzn-Requestid"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := newRequestID()
	w.Header()[hdrRequestID] = []string{rid}
	id, rawPath, ok := s.route(r)
	if !ok {
		writeMessage(w, http.StatusForbidden, awserr.CodeAccessDenied, nil)
		return
	}
	u, policy, ok := s.reg.ResolveFunctionURL(id)
	if !ok {
		writeMessage(w, http.StatusForbidden, awserr.CodeAccessDenied, nil)
		return
	}
	if u.Cors != nil && isPreflight(r) {
		preflight(w, r, u.Cors)
		return
	}
	var caller *Caller
	switch u.AuthType {
	case registry.URLAuthIAM:
		if s.auth == nil {
			s.forbidden(w, r, "AWS_IAM URL and no SigV4 verifier")
			return
		}
		c, err := s.auth.Authenticate(r)
		if err != nil {
			s.forbidden(w, r, err.Error())
			return
		}
		caller = c
	default:
		if !allowsEveryone(policy) {
			s.forbidden(w, r, "no resource-policy statement allows lambda:InvokeFunctionUrl")
			return
		}
	}
	s.invoke(w, r, u, id, rawPath, caller, rid)
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	s.log.Debug("request refused", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr, "why", why)
	_, _ = io.CopyN(io.Discard, r.Body, maxRefusedDrain)
	msg := forbiddenMessage
	writeMessage(w, http.StatusForbidden, awserr.CodeAccessDenied, &msg)
}

// maxRefusedDrain bounds how much of a refused request's body is read.
const maxRefusedDrain = 8 << 20

// writeMessage answers {"Message": msg} (null when msg is nil) with status.
func writeMessage(w http.ResponseWriter, status int, errorType string, msg *string) {
	body := []byte(`{"Message":null}`)
	if msg != nil {
		body = append(appendJSONString([]byte(`{"Message":`), *msg), '}')
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	if errorType != "" {
		h["X-Amzn-Errortype"] = []string{errorType}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newRequestID returns a random UUID (version 4), not secret.
func newRequestID() string {
	const hexdigits = "0123456789abcdef"
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexdigits[c>>4], hexdigits[c&0xf]
		j += 2
	}
	return string(out[:])
}
