// Package lambdaapi serves the Lambda REST API (2015-03-31 and its companion paths
// for concurrency, provisioned concurrency, tags, recursion configs, account
// settings, resource-based policies, function URL configs and
// InvokeWithResponseStream, the 2018-10-31 layer operations, the 2021-07-20 runtime
// management configs, and the 2025-11-30 capacity provider and function scaling operations of
// Lambda Managed Instances) over the registry, with Lambda's field names, status
// codes, validation messages and error shapes: the answers AWS recorded
// (testdata/aws-recordings) are the reference its tests replay. Invocations are
// handed to an Invoker (the router); this package never runs code. It does not
// check who calls: signatures are verified in front of it (internal/sigv4, wired
// by internal/controlplane).
//
// Each operation group has its own file; errors.go is the one place where errors
// become responses.
package lambdaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Lambda's limits that the API enforces.
const (
	DefaultMaxRequestBytes        = 70167211  // CreateFunction / UpdateFunctionCode request
	DefaultMaxInvokeRequestBytes  = 6291456   // synchronous invoke payload
	DefaultMaxInvokeResponseBytes = 6291556   // synchronous invoke response (6 MiB + 100)
	DefaultMaxZippedCodeBytes     = 52428800  // direct upload
	DefaultMaxUnzippedCodeBytes   = 262144000 // package contents
	maxSmallRequestBytes          = 1 << 20   // every other operation
)

// Config configures the REST API.
type Config struct {
	AccountID string // default "123456789012"
	Region    string // default "us-east-1"
	// AccountConcurrencyLimit is the account's ConcurrentExecutions (default 1000).
	AccountConcurrencyLimit int
	// MinUnreservedConcurrency is what reserved concurrency must leave (default 100).
	MinUnreservedConcurrency int
	// MaxRequestBytes bounds CreateFunction and UpdateFunctionCode bodies.
	MaxRequestBytes int64
	// MaxInvokeRequestBytes and MaxInvokeResponseBytes bound synchronous invocations.
	MaxInvokeRequestBytes  int
	MaxInvokeResponseBytes int
	// MaxZippedCodeBytes and MaxUnzippedCodeBytes bound code packages.
	MaxZippedCodeBytes   int64
	MaxUnzippedCodeBytes int64
	// CodeBaseURL is the base of Code.Location URLs in GetFunction (e.g.
	// "http://127.0.0.1:9000"); empty means the scheme and Host of each request.
	CodeBaseURL string
	// PresignURL, when set, turns a Code.Location URL into one its holder may
	// fetch without credentials for a while, as AWS presigns it; r is the
	// GetFunction request (whose signature says who asked).
	PresignURL func(r *http.Request, url string) string
	// FunctionURL, if set, gives the address of the function URL with an id
	// (FunctionUrl in the answers); nil gives AWS's form.
	FunctionURL func(id string) string
}

func (c *Config) setDefaults() {
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountConcurrencyLimit == 0 {
		c.AccountConcurrencyLimit = 1000
	}
	if c.MinUnreservedConcurrency == 0 {
		c.MinUnreservedConcurrency = 100
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxInvokeRequestBytes == 0 {
		c.MaxInvokeRequestBytes = DefaultMaxInvokeRequestBytes
	}
	if c.MaxInvokeResponseBytes == 0 {
		c.MaxInvokeResponseBytes = DefaultMaxInvokeResponseBytes
	}
	if c.MaxZippedCodeBytes == 0 {
		c.MaxZippedCodeBytes = DefaultMaxZippedCodeBytes
	}
	if c.MaxUnzippedCodeBytes == 0 {
		c.MaxUnzippedCodeBytes = DefaultMaxUnzippedCodeBytes
	}
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	c.setDefaults()
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		return fmt.Errorf("lambdaapi: account id %q must be 12 digits", c.AccountID)
	}
	if !regionRE.MatchString(c.Region) {
		return fmt.Errorf("lambdaapi: invalid region %q", c.Region)
	}
	if c.MinUnreservedConcurrency < 0 || c.AccountConcurrencyLimit < c.MinUnreservedConcurrency {
		return fmt.Errorf("lambdaapi: account concurrency limit %d below the unreserved minimum %d",
			c.AccountConcurrencyLimit, c.MinUnreservedConcurrency)
	}
	if c.MaxInvokeRequestBytes < 0 || c.MaxInvokeResponseBytes < 0 || c.MaxRequestBytes < 0 ||
		c.MaxZippedCodeBytes < 0 || c.MaxUnzippedCodeBytes < 0 {
		return errors.New("lambdaapi: limits must not be negative")
	}
	return nil
}

// Invoker runs an invocation: the router in production, a fake in this package's
// tests. Errors it returns should be *awserr.Error (e.g. a 429 with its Reason).
type Invoker interface {
	Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResult, error)
}

// InvokeRequest is a validated synchronous invocation.
type InvokeRequest struct {
	Version    *registry.Version // resolved version to run (shared: do not modify)
	Qualifier  string            // as given by the caller, "" if none
	InvokedARN string            // the ARN the caller invoked (qualified if it was)
	RequestID  string
	Payload    []byte
	// ClientContext is the decoded X-Amz-Client-Context JSON, "" if none.
	ClientContext string
	TailLog       bool
	// Stream, if set, receives the response as the function sends it (the
	// caller streams): InvokeResult.Payload then holds only an error's JSON.
	Stream ResponseStream
}

// InvokeResult is what the function answered.
type InvokeResult struct {
	Payload       []byte
	FunctionError string // "" or "Unhandled"
	LogTail       []byte // last 4 KB of the log when TailLog was asked
	// ExecutedVersion is the version that ran ("$LATEST" or a number).
	ExecutedVersion string
	// ErrorType is the function error's type (e.g. Sandbox.Timedout).
	ErrorType string
	// Streamed reports that the response went to InvokeRequest.Stream;
	// ContentType is the response's content type as the function gave it.
	Streamed    bool
	ContentType string
}

// api serves the REST API. Immutable after New.
type api struct {
	cfg    Config
	reg    *registry.Registry
	inv    Invoker
	log    *slog.Logger
	limits registry.ConcurrencyLimits
	mux    *http.ServeMux
}

// handlerFunc is an operation: it writes its response or returns an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New returns the REST API handler. Empty AccountID and Region are taken from the
// registry (whose ARNs the API returns); cfg is then validated and defaulted. An invalid
// cfg, or one naming another account or region than the registry, panics: call
// cfg.Validate() beforehand to handle it as an error.
func New(cfg Config, reg *registry.Registry, inv Invoker, logger *slog.Logger) http.Handler {
	if cfg.AccountID == "" {
		cfg.AccountID = reg.AccountID()
	}
	if cfg.Region == "" {
		cfg.Region = reg.Region()
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.AccountID != reg.AccountID() || cfg.Region != reg.Region() {
		panic(fmt.Sprintf("lambdaapi: account %s / region %s differ from the registry's %s / %s",
			cfg.AccountID, cfg.Region, reg.AccountID(), reg.Region()))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &api{
		cfg: cfg, reg: reg, inv: inv, log: logger.With("component", "lambdaapi"),
		limits: registry.ConcurrencyLimits{Account: cfg.AccountConcurrencyLimit, MinUnreserved: cfg.MinUnreservedConcurrency},
		mux:    http.NewServeMux(),
	}
	a.routes()
	return a
}

func (a *api) routes() {
	h := func(pattern string, fn handlerFunc) { a.mux.Handle(pattern, a.wrap(fn)) }
	// Functions.
	h("POST /2015-03-31/functions", a.createFunction)
	h("POST /2015-03-31/functions/{$}", a.createFunction)
	h("GET /2015-03-31/functions", a.listFunctions)
	h("GET /2015-03-31/functions/{$}", a.listFunctions)
	h("GET /2015-03-31/functions/{name}", a.getFunction)
	h("DELETE /2015-03-31/functions/{name}", a.deleteFunction)
	h("GET /2015-03-31/functions/{name}/configuration", a.getFunctionConfiguration)
	h("PUT /2015-03-31/functions/{name}/configuration", a.updateFunctionConfiguration)
	h("PUT /2015-03-31/functions/{name}/code", a.updateFunctionCode)
	// Versions and aliases.
	h("POST /2015-03-31/functions/{name}/versions", a.publishVersion)
	h("GET /2015-03-31/functions/{name}/versions", a.listVersions)
	h("POST /2015-03-31/functions/{name}/aliases", a.createAlias)
	h("GET /2015-03-31/functions/{name}/aliases", a.listAliases)
	h("GET /2015-03-31/functions/{name}/aliases/{alias}", a.getAlias)
	h("PUT /2015-03-31/functions/{name}/aliases/{alias}", a.updateAlias)
	h("DELETE /2015-03-31/functions/{name}/aliases/{alias}", a.deleteAlias)
	// Concurrency.
	h("PUT /2017-10-31/functions/{name}/concurrency", a.putFunctionConcurrency)
	h("DELETE /2017-10-31/functions/{name}/concurrency", a.deleteFunctionConcurrency)
	h("GET /2019-09-30/functions/{name}/concurrency", a.getFunctionConcurrency)
	h("PUT /2019-09-30/functions/{name}/provisioned-concurrency", a.putProvisionedConcurrency)
	h("GET /2019-09-30/functions/{name}/provisioned-concurrency", a.getOrListProvisionedConcurrency)
	h("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", a.deleteProvisionedConcurrency)
	h("GET /2024-08-31/functions/{name}/recursion-config", a.getFunctionRecursionConfig)
	h("PUT /2024-08-31/functions/{name}/recursion-config", a.putFunctionRecursionConfig)
	h("GET /2016-08-19/account-settings", a.getAccountSettings)
	h("GET /2016-08-19/account-settings/{$}", a.getAccountSettings)
	// Tags.
	h("POST /2017-03-31/tags/{arn}", a.tagResource)
	h("DELETE /2017-03-31/tags/{arn}", a.untagResource)
	h("GET /2017-03-31/tags/{arn}", a.listTags)
	// Lambda Managed Instances.
	h("POST /2025-11-30/capacity-providers", a.createCapacityProvider)
	h("POST /2025-11-30/capacity-providers/{$}", a.createCapacityProvider)
	h("GET /2025-11-30/capacity-providers", a.listCapacityProviders)
	h("GET /2025-11-30/capacity-providers/{$}", a.listCapacityProviders)
	h("GET /2025-11-30/capacity-providers/{cp}", a.getCapacityProvider)
	h("PUT /2025-11-30/capacity-providers/{cp}", a.updateCapacityProvider)
	h("DELETE /2025-11-30/capacity-providers/{cp}", a.deleteCapacityProvider)
	h("GET /2025-11-30/capacity-providers/{cp}/function-versions", a.listFunctionVersionsByCapacityProvider)
	h("GET /2025-11-30/functions/{name}/function-scaling-config", a.getFunctionScalingConfig)
	h("PUT /2025-11-30/functions/{name}/function-scaling-config", a.putFunctionScalingConfig)
	a.layerRoutes(h)
	a.runtimeManagementRoutes(h)
	// Resource-based policies and function URLs.
	h("POST /2015-03-31/functions/{name}/policy", a.addPermission)
	h("GET /2015-03-31/functions/{name}/policy", a.getPolicy)
	h("DELETE /2015-03-31/functions/{name}/policy/{sid}", a.removePermission)
	h("POST /2021-10-31/functions/{name}/url", a.createFunctionURLConfig)
	h("GET /2021-10-31/functions/{name}/url", a.getFunctionURLConfig)
	h("PUT /2021-10-31/functions/{name}/url", a.updateFunctionURLConfig)
	h("DELETE /2021-10-31/functions/{name}/url", a.deleteFunctionURLConfig)
	h("GET /2021-10-31/functions/{name}/urls", a.listFunctionURLConfigs)
	// Invoke and code download.
	h("POST /2015-03-31/functions/{name}/invocations", a.invoke)
	h("POST /2021-11-15/functions/{name}/response-streaming-invocations", a.invokeWithResponseStream)
	h("GET /shoal/v1/code/{sha}", a.getCode)
	a.asyncRoutes(h)
	// Every other operation of the API answers that shoal does not implement it.
	h("/", a.unimplemented)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) { serveRecovering(a.mux, a.log, w, r) }

// wrap gives every response a request id and sends returned errors through writeError.
func (a *api) wrap(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[hdrRequestID] = []string{randid.UUID()}
		if err := fn(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// hdrRequestID is x-amzn-RequestId in Go's canonical form.
const hdrRequestID = "X-Amzn-Requestid"

// requestID is the id wrap gave the response.
func requestID(w http.ResponseWriter) string {
	if v := w.Header()[hdrRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return awserr.Service(err, "failed to encode response")
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

func writeNoContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readBody reads a request body of at most limit bytes; tooLarge builds the error for
// a larger one.
func readBody(r *http.Request, limit int64, tooLarge func() error) ([]byte, error) {
	if r.ContentLength > limit {
		drain(r)
		return nil, tooLarge()
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, awserr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if int64(len(b)) > limit {
		drain(r)
		return nil, tooLarge()
	}
	return b, nil
}

// maxDrainBytes bounds how much of a refused body is read and discarded.
const maxDrainBytes = 256 << 20

// drain reads what is left of a refused request body (within maxDrainBytes), so that
// a client still sending it reads the error response instead of a reset connection.
func drain(r *http.Request) {
	_, _ = io.CopyN(io.Discard, r.Body, maxDrainBytes)
}

// decodeJSON reads a small JSON body into v. An empty body leaves v unchanged.
func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r, maxSmallRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the operation", maxSmallRequestBytes)
	})
	if err != nil {
		return err
	}
	return unmarshalBody(b, v)
}

func unmarshalBody(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return awserr.InvalidRequestContent("Could not parse request body into json: %v", err)
	}
	return nil
}

// requestEntityTooLarge is the 413 Lambda's front end answers for oversized requests
// of management operations (not modelled by the SDKs, so they see its code as is).
func requestEntityTooLarge(format string, args ...any) *awserr.Error {
	return &awserr.Error{Code: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge,
		Type: "User", Message: fmt.Sprintf(format, args...)}
}
