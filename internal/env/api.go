// Package env runs Lambda execution environments on one instance: it starts a
// function's runtime process tree (through internal/sandbox when available),
// serves it the Runtime API (internal/runtimeapi) and hands it invocations.
//
// An Environment has a fixed number of slots (1 for on-demand and provisioned
// environments, N for Managed Instances). Invoke never queues: with every slot
// taken it answers ErrBusy at once, and the caller (the router) places the
// invocation elsewhere or throttles. The package owns no routing, pooling or
// concurrency-limit decisions.
package env

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/scratch"
)

// Spec describes the function version an environment runs.
type Spec struct {
	FunctionName string
	FunctionARN  string // unqualified: arn:aws:lambda:us-east-1:123456789012:function:NAME
	Version      string // "$LATEST", "1", …
	Runtime      string // provided.al2023, provided, nodejs18.x…, python3.9…
	Handler      string
	MemoryMB     int
	Timeout      time.Duration
	Environment  map[string]string // the user's variables
	CodeDir      string            // unpacked code
	// Layers are the CodeSha256s of the function's layers, in order; OptDir is
	// where they are unpacked and merged on this machine (codecache.OptDir),
	// which the function sees as /opt. Layers travels with the spec to an agent,
	// which sets OptDir; "" means no layers.
	Layers       []string
	OptDir       string
	Architecture string
	// MaxConcurrency is the number of slots served at once: 1 for on-demand and
	// provisioned environments, N for Managed Instances. 0 means 1.
	MaxConcurrency int
	Region         string
	AccountID      string
	// InitType is AWS_LAMBDA_INITIALIZATION_TYPE: InitOnDemand ("" too),
	// InitProvisioned or InitManagedInstances.
	InitType string
	// InitTimeout bounds init; 0 means 10 s, or max(130 s, Timeout) for
	// Managed Instances.
	InitTimeout time.Duration
	LogGroup    string // "/aws/lambda/NAME"
	LogStream   string // "2026/11/26/[$LATEST]<32 hex>"; "" generates one
	Isolate     bool   // passed through to the sandbox
	// NoEgress gives an isolated environment a network with nothing but its
	// loopback (shoal up --egress none).
	NoEgress bool
	// TmpMB is the size of /tmp (the function's EphemeralStorage; 0 means
	// 512). It is enforced for isolated environments with Deps.Scratch.
	TmpMB int
	CPUs  float64 // vCPUs of the CPU quota; 0 derives it from memory (1769 MB = 1 vCPU)
	// Logging is the function's LoggingConfig (Managed Instances: always JSON;
	// the caller sets it).
	Logging LogConfig
}

// Log formats (LogConfig.Format), as Lambda's LoggingConfig spells them.
const (
	LogFormatText = "Text"
	LogFormatJSON = "JSON"
)

// LogConfig is a function's LoggingConfig as an environment applies it. With
// JSON the runtime gets AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL,
// the platform writes Lambda's JSON system records (platform.start,
// platform.report, …) instead of START, END and REPORT, and the function's
// lines below ApplicationLevel are dropped. Text ("" too) changes nothing.
type LogConfig struct {
	Format string
	// ApplicationLevel (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) drops the
	// function's lines below it; "" is INFO. A line's level is its "level"
	// key when it is a JSON object that has one, else INFO. JSON only.
	ApplicationLevel string
	// SystemLevel (DEBUG, INFO, WARN) drops the platform records below it;
	// "" is INFO. JSON only.
	SystemLevel string
}

// Invocation is one request handed to an environment.
type Invocation struct {
	RequestID       string
	Payload         []byte
	InvokedARN      string // as the caller named it (qualified if it was)
	ClientContext   string // JSON decoded from X-Amz-Client-Context ("" if none)
	CognitoIdentity string
	TraceID         string
	TenantID        string    // Lambda-Runtime-Aws-Tenant-Id (tenant isolation mode); "" if none
	TailLog         bool      // collect this invocation's log for X-Amz-Log-Result
	Deadline        time.Time // zero: now + Spec.Timeout
	// Stream, if set, receives the response as the runtime sends it (the
	// caller streams); Result.Payload then holds only an error's JSON.
	Stream ResponseStream
}

// Result is the outcome of one invocation.
type Result struct {
	// Payload is the function's response, or Lambda's error JSON when
	// FunctionError is set.
	Payload []byte
	// FunctionError is "" or "Unhandled" (the X-Amz-Function-Error header).
	FunctionError string
	// ErrorType is e.g. "Runtime.ExitError", "Sandbox.Timedout",
	// "Runtime.OutOfMemory" or the handler's errorType.
	ErrorType string
	// LogTail holds the last 4 KB of this invocation's log lines, START, END
	// and REPORT included, when Invocation.TailLog was set.
	LogTail        []byte
	Duration       time.Duration
	BilledDuration time.Duration
	// InitDuration is non-zero only on the first invocation after a cold
	// start (never for provisioned-concurrency environments, as on Lambda).
	InitDuration    time.Duration
	MaxMemoryUsedMB int
	// CPUTime is the environment's CPU time since the previous reading (on a
	// multi-slot environment, shared among invocations in the order they
	// finish). It is read only for invocations of 5 ms or more (and
	// failures); shorter ones report 0 and the next reading carries their
	// CPU, so the sum over results is the environment's total.
	CPUTime time.Duration
	// Streamed reports that the response went to Invocation.Stream;
	// ContentType is the response's Content-Type as the runtime sent it.
	Streamed    bool
	ContentType string
	// Replace reports that this environment is finished (timeout, crash,
	// out of memory): the caller must discard it. The environment is already
	// closing it.
	Replace bool
}

// LogSink receives every log line of an environment. WriteLog must not block
// for long: it runs on the environment's log path.
type LogSink interface {
	WriteLog(rec logs.Record)
}

var _ LogSink = (*logs.Store)(nil)

// Deps are an environment's dependencies.
type Deps struct {
	Logger  *slog.Logger
	Clock   clock.Clock // nil: clock.Real{}
	Logs    LogSink     // nil: logs are discarded
	WorkDir string      // where environment directories (tmp, runtime) go; "": os.TempDir()
	// Sandboxes creates the process container of an environment; nil uses
	// the default (internal/sandbox when available, else plain processes).
	Sandboxes SandboxFactory
	// Usage, if set, is told of every finished invocation before its result
	// is returned (the usage ledger's source).
	Usage UsageSink
	// Networks gives each isolated environment a network namespace of its
	// own, with its Runtime API inside; nil leaves environments in the
	// host's network (Limited says so).
	Networks *envnet.Pools
	// Scratch gives each isolated environment a /tmp of its own of
	// Spec.TmpMB, on disk; nil leaves /tmp a directory of the work dir,
	// without a size limit (Limited says so).
	Scratch *scratch.Pool
}

// UsageSink receives finished invocations. InvocationDone runs on the invoke
// path, before the caller sees the result, so it must be quick.
type UsageSink interface {
	InvocationDone(spec *Spec, requestID string, start time.Time, r *Result)
}

// ErrBusy is returned by Invoke when every slot of the environment is taken.
var ErrBusy = errors.New("env: environment busy")

// ErrClosed is returned by Invoke once the environment is closing or has ended.
var ErrClosed = errors.New("env: environment closed")

// InitError is returned by Start when the environment failed to initialise.
// A router answers it as an Unhandled function error with Payload.
type InitError struct {
	ErrorType string // Runtime.InitError, Runtime.ExitError, Runtime.InvalidEntrypoint, Sandbox.Timedout or the runtime's reported type
	Message   string // the message without the "RequestId: … Error: " prefix Lambda adds for platform errors
	// Payload is Lambda's error JSON as a caller sees it. For errors the
	// platform produces (exit, timeout, missing bootstrap) it lacks the
	// request id; ForRequest adds it.
	Payload      []byte
	Log          []byte        // the environment's log lines during init (last 4 KB)
	InitDuration time.Duration // how long init ran
	platform     bool

	// What Answer needs; zero in an InitError built elsewhere (an agent's,
	// decoded from its reply), whose Answer records nothing.
	spec     Spec
	usage    UsageSink
	started  time.Time
	answered atomic.Bool
}

func (e *InitError) Error() string {
	return fmt.Sprintf("env: init failed: %s: %s", e.ErrorType, e.Message)
}

// Answer is the result of the invocation that triggered this init, whose
// environment never ran it: Lambda's error for it (Unhandled, the init's
// error type), the init's log as its tail when it asked for one, and the init
// as its Init Duration, billed with it as Lambda bills an on-demand cold
// start. The invocation is recorded in the environment's usage sink with that
// outcome, once however often Answer is called.
func (e *InitError) Answer(inv Invocation) Result {
	r := Result{
		Payload:       e.ForRequest(inv.RequestID),
		FunctionError: "Unhandled",
		ErrorType:     e.ErrorType,
		InitDuration:  e.InitDuration,
	}
	if inv.TailLog {
		r.LogTail = bytes.Clone(e.Log)
	}
	if e.spec.InitType == InitOnDemand || e.spec.InitType == "" {
		r.BilledDuration = billed(e.InitDuration)
	}
	if e.usage != nil && !e.answered.Swap(true) {
		e.usage.InvocationDone(&e.spec, inv.RequestID, e.started, &r)
	}
	return r
}

// ForRequest returns the error JSON Lambda answers to the invocation with
// the given request id that triggered this init.
func (e *InitError) ForRequest(requestID string) []byte {
	if !e.platform || requestID == "" {
		return e.Payload
	}
	return errorJSON(e.ErrorType, "RequestId: "+requestID+" Error: "+e.Message)
}
