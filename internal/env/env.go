package env

// Lifecycle of an Environment:
//
//	Start ──► initialising ──first GET /next──► ready ◄──► invoking (≤ Slots at once)
//	               │                              │
//	               │ init/error, exit, timeout    │ Close, process exit, Replace
//	               ▼                              ▼
//	        *InitError (killed)               closing ──in-flight done or ctx──► ended (Done closed)
//
// A one-slot environment that times out, crashes or runs out of memory is
// closed by the package itself; the Result says Replace so the caller drops it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/runtimeapi"
	"github.com/shoal-dev/shoal/internal/runtimes"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/sched"
	"github.com/shoal-dev/shoal/internal/scratch"
)

// DefaultInitTimeout is Lambda's init limit for on-demand functions.
const DefaultInitTimeout = 10 * time.Second

// Initialisation types (AWS_LAMBDA_INITIALIZATION_TYPE).
const (
	InitOnDemand         = "on-demand"
	InitProvisioned      = "provisioned-concurrency"
	InitManagedInstances = "lambda-managed-instances"
)

// DefaultTimeout is Lambda's default function timeout.
const DefaultTimeout = 3 * time.Second

// Environment is one running execution environment.
//
// Concurrency: the fields in the first group are set by Start and immutable
// afterwards. inflight, closing and initReported are atomic. exitErr is
// written once before exited is closed and read only after. closeOnce guards
// the shutdown sequence; done is closed at its end.
type Environment struct {
	spec     Spec
	id       string
	logger   *slog.Logger
	clock    clock.Clock
	usage    UsageSink
	api      *runtimeapi.Server
	net      *envnet.Net     // the environment's network namespace; nil in the host's
	tmp      *scratch.Volume // the environment's /tmp; nil: a directory of dir
	limited  string          // why the environment is not confined as asked, besides its sandbox's reasons
	box      Sandbox
	cmd      *exec.Cmd
	logs     *logPipe
	dir      string // this environment's work directory (removed on close)
	initDur  time.Duration
	slots    int
	memStr   string // "128" for REPORT lines
	fnTimout time.Duration
	levels   logLevels // the log format and levels (Spec.Logging)

	inflight     atomic.Int32
	closing      atomic.Bool
	initReported atomic.Bool
	lastCPU      atomic.Int64 // the sandbox's CPU time at the last reading
	mem          *memReader

	initErrs  chan initFailure // the runtime's init/error, once
	exited    chan struct{}
	exitErr   error
	exitOOM   bool      // the kernel killed the runtime for memory; set with exitErr
	startedAt time.Time // when the runtime process was started

	closeOnce sync.Once
	closeErr  error
	idle      chan struct{} // signalled when inflight drops to zero while closing
	done      chan struct{}
}

func (s *Spec) withDefaults() {
	if s.MaxConcurrency <= 0 {
		s.MaxConcurrency = 1
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.InitTimeout <= 0 {
		s.InitTimeout = DefaultInitTimeout
		if s.InitType == InitManagedInstances {
			// Managed Instances: max(130 s, the function timeout).
			s.InitTimeout = max(130*time.Second, s.Timeout)
		}
	}
	if s.CPUs <= 0 && s.MemoryMB > 0 {
		s.CPUs = sandbox.CPUsForMemory(s.MemoryMB)
	}
	if s.Version == "" {
		s.Version = "$LATEST"
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.InitType == "" {
		s.InitType = InitOnDemand
	}
	if s.FunctionARN == "" && s.AccountID != "" {
		s.FunctionARN = "arn:aws:lambda:" + s.Region + ":" + s.AccountID + ":function:" + s.FunctionName
	}
	if s.LogGroup == "" {
		s.LogGroup = "/aws/lambda/" + s.FunctionName
	}
	if s.Logging.Format == LogFormatJSON {
		if s.Logging.ApplicationLevel == "" {
			s.Logging.ApplicationLevel = "INFO"
		}
		if s.Logging.SystemLevel == "" {
			s.Logging.SystemLevel = "INFO"
		}
	}
}

// Validate checks a spec.
func (s *Spec) Validate() error {
	switch {
	case s.FunctionName == "":
		return errors.New("env: function name is required")
	case !runtimes.Supported(s.Runtime):
		return fmt.Errorf("env: unsupported runtime %q", s.Runtime)
	case s.CodeDir == "" || !filepath.IsAbs(s.CodeDir):
		return fmt.Errorf("env: code dir %q must be an absolute path", s.CodeDir)
	case s.OptDir != "" && !filepath.IsAbs(s.OptDir):
		return fmt.Errorf("env: opt dir %q must be an absolute path", s.OptDir)
	case len(s.Layers) > 0 && s.OptDir == "":
		return errors.New("env: the function has layers but no opt dir")
	case s.MemoryMB < 0 || s.MaxConcurrency < 0:
		return errors.New("env: negative memory or concurrency")
	case s.Logging.Format != "" && s.Logging.Format != LogFormatText && s.Logging.Format != LogFormatJSON:
		return fmt.Errorf("env: unknown log format %q", s.Logging.Format)
	}
	if s.Logging.Format == LogFormatJSON {
		switch s.Logging.ApplicationLevel {
		case "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL":
		default:
			return fmt.Errorf("env: unknown application log level %q", s.Logging.ApplicationLevel)
		}
		switch s.Logging.SystemLevel {
		case "DEBUG", "INFO", "WARN":
		default:
			return fmt.Errorf("env: unknown system log level %q", s.Logging.SystemLevel)
		}
	}
	return nil
}

var (
	installMu sync.Mutex
	installed = map[string]bool{} // runtime dirs written by runtimes.Install
)

// installRuntimes writes shoal's bootstraps into dir once per process;
// concurrent cold starts wait for the first.
func installRuntimes(dir string) error {
	installMu.Lock()
	defer installMu.Unlock()
	if installed[dir] {
		return nil
	}
	if err := runtimes.Install(dir); err != nil {
		return err
	}
	installed[dir] = true
	return nil
}

// Start spawns an environment and waits until its runtime has initialised
// (its first GET /next). A failed init returns *InitError.
func Start(ctx context.Context, spec Spec, deps Deps) (*Environment, error) {
	spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.WorkDir == "" {
		deps.WorkDir = os.TempDir()
	}
	if deps.Sandboxes == nil {
		deps.Sandboxes = DefaultSandboxes
	}
	if spec.LogStream == "" {
		spec.LogStream = randid.LogStream(deps.Clock.Now(), spec.Version)
	}
	e := &Environment{
		spec:     spec,
		id:       randid.Hex(8),
		clock:    deps.Clock,
		usage:    deps.Usage,
		slots:    spec.MaxConcurrency,
		memStr:   fmt.Sprint(spec.MemoryMB),
		fnTimout: spec.Timeout,
		levels:   levelsFor(spec.Logging),
		exited:   make(chan struct{}),
		idle:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	e.logger = deps.Logger.With("component", "env", "function", spec.FunctionName,
		"version", spec.Version, "env", e.id)
	if err := e.start(spec, deps); err != nil {
		var f *startFailure
		if errors.As(err, &f) {
			return nil, e.failInit(e.startedAt, f.initFailure)
		}
		e.teardown()
		return nil, err
	}
	// Init Duration counts from the runtime's start, as on Lambda; preparing
	// the sandbox is not part of it.
	started := e.startedAt
	initTimer := deps.Clock.NewTimer(spec.InitTimeout)
	defer initTimer.Stop()
	initErrCh := e.initErrs
	select {
	case <-e.api.Ready():
		e.initDur = deps.Clock.Now().Sub(started)
		if e.levels.json {
			e.initRecords("success", "", e.initDur)
		}
		e.mem = newMemReader(e.box)
		e.lastCPU.Store(int64(e.box.CPUTime()))
		go e.watch()
		return e, nil
	case f := <-initErrCh:
		return nil, e.failInit(started, f)
	case <-e.exited:
		select {
		case f := <-initErrCh:
			return nil, e.failInit(started, f)
		default:
		}
		msg := exitMessage(e.exitErr)
		typ := "Runtime.ExitError"
		if e.exitOOM {
			typ = "Runtime.OutOfMemory"
		}
		return nil, e.failInit(started, initFailure{typ: typ, msg: msg, platform: true})
	case <-initTimer.C():
		return nil, e.failInit(started, initFailure{typ: "Sandbox.Timedout",
			msg: fmt.Sprintf("Init timed out after %.2f seconds", spec.InitTimeout.Seconds()), platform: true})
	case <-ctx.Done():
		e.teardown()
		return nil, fmt.Errorf("env: start: %w", ctx.Err())
	}
}

// initFailure is how init went wrong.
type initFailure struct {
	typ, msg string
	body     []byte // the runtime's init/error body, if it posted one
	platform bool
}

// startFailure is start's error for an init that failed before the runtime
// ran: Start reports it as any failed init.
type startFailure struct{ initFailure }

func (f *startFailure) Error() string { return f.typ + ": " + f.msg }

// failInit reports a failed init in the environment's log, as Lambda does
// (INIT_REPORT, or platform.initReport with the JSON format), tears the
// environment down and returns the *InitError that says what happened.
func (e *Environment) failInit(started time.Time, f initFailure) error {
	d := e.clock.Now().Sub(started)
	timedOut := f.typ == "Sandbox.Timedout"
	switch {
	case e.levels.json && timedOut:
		e.initRecords("timeout", f.typ, d)
	case e.levels.json:
		e.initRecords("error", f.typ, d)
	case timedOut:
		// Lambda's own example: "INIT_REPORT Init Duration: 1236.04 ms
		// Phase: init Status: timeout", without an error type.
		e.logs.platform(fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: timeout",
			float64(d)/float64(time.Millisecond)), nil, true)
	default:
		e.logs.platform(fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: error\tError Type: %s",
			float64(d)/float64(time.Millisecond), f.typ), nil, true)
	}
	ie := &InitError{ErrorType: f.typ, Message: f.msg, InitDuration: d, platform: f.platform,
		spec: e.spec, usage: e.usage, started: started}
	if f.body != nil {
		ie.Payload = f.body
	} else {
		ie.Payload = errorJSON(f.typ, f.msg)
	}
	ie.Log = e.logs.initTail()
	e.teardown()
	return ie
}

// start creates the directories, the Runtime API server and the sandbox,
// and starts the runtime.
func (e *Environment) start(spec Spec, deps Deps) error {
	e.dir = filepath.Join(deps.WorkDir, "env-"+e.id)
	runtimeDir := filepath.Join(deps.WorkDir, "runtime")
	tmpDir := filepath.Join(e.dir, "tmp")
	if spec.Isolate && deps.Scratch != nil {
		v, err := deps.Scratch.Take(spec.TmpMB)
		if err != nil {
			return fmt.Errorf("env: /tmp: %w", err)
		}
		e.tmp, tmpDir = v, v.Dir()
	} else if spec.Isolate {
		e.limited = "/tmp has no size limit"
	}
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return fmt.Errorf("env: %w", err)
	}
	_ = os.Chmod(tmpDir, 0o1777)
	if runtimes.KindOf(spec.Runtime) != runtimes.Provided {
		if err := installRuntimes(runtimeDir); err != nil {
			return fmt.Errorf("env: install runtimes: %w", err)
		}
	} else {
		runtimeDir = ""
	}
	e.initErrs = make(chan initFailure, 1)
	var ln net.Listener
	if spec.Isolate && deps.Networks != nil {
		n, err := deps.Networks.Take(!spec.NoEgress)
		if err != nil {
			return fmt.Errorf("env: network: %w", err)
		}
		e.net = n
		if ln, err = n.Listen(runtimeapi.Listen, envnet.RuntimeAPIAddr); err != nil {
			return fmt.Errorf("env: %w", err)
		}
	}
	api, err := runtimeapi.New(runtimeapi.Config{
		Listener: ln,
		Slots:    spec.MaxConcurrency,
		Logger:   e.logger,
		// shoal's Python bootstrap runs one process per slot, each on one
		// connection of its own: a closed connection is a dead worker.
		WorkerConnections: spec.MaxConcurrency > 1 && runtimes.KindOf(spec.Runtime) == runtimes.Python,
		OnTake:            e.taken,
		OnInitError: func(typ string, body []byte) {
			select {
			case e.initErrs <- initFailure{typ: typ, msg: messageOf(body), body: body}:
			default:
			}
		},
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return fmt.Errorf("env: %w", err)
	}
	e.api = api
	box, err := deps.Sandboxes(sandbox.Config{
		ID: "shoal-" + e.id, MemoryMB: spec.MemoryMB, CPUs: spec.CPUs, CodeDir: spec.CodeDir,
		RuntimeDir: runtimeDir, OptDir: spec.OptDir, TmpDir: tmpDir, Isolate: spec.Isolate, Batch: sched.Enabled(), NetNS: e.netFD(),
	}, e.logger)
	if err != nil {
		return fmt.Errorf("env: sandbox: %w", err)
	}
	e.box = box
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	e.logs, err = newLogPipe(pr, deps.Logs, e.clock, spec.FunctionName, spec.Version, spec.LogStream, e.levels.app)
	if err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("env: %w", err)
	}
	// Init starts here: a bootstrap that is missing or cannot run is an init
	// failure, reported in the log like any other.
	e.startedAt = e.clock.Now()
	if e.levels.json && e.levels.sys <= levelInfo {
		e.logs.platform(e.initStartRecord(e.startedAt), nil, false)
	}
	rc, err := runtimes.CommandFor(spec.Runtime, runtimes.Dirs{CodeDir: spec.CodeDir, OptDir: spec.OptDir,
		TaskRoot: box.TaskRoot(), RuntimeDir: box.RuntimeRoot(), OptRoot: box.OptRoot()})
	if err != nil {
		pw.Close()
		if errors.Is(err, runtimes.ErrNoBootstrap) {
			msg := err.Error()[len(runtimes.ErrNoBootstrap.Error())+2:]
			return &startFailure{initFailure{typ: "Runtime.InvalidEntrypoint", msg: msg, platform: true}}
		}
		return fmt.Errorf("env: %w", err)
	}
	env := environ(&spec, box.TaskRoot(), box.RuntimeRoot(), box.OptRoot(), api.Addr(), rc)
	if t := box.TmpDir(); t != "/tmp" {
		env = append(env, "TMPDIR="+t)
	}
	cmd := &exec.Cmd{Path: rc.Path, Args: rc.Args, Env: env, Dir: box.TaskRoot(), Stdout: pw, Stderr: pw}
	if err := box.Start(cmd); err != nil {
		pw.Close()
		return &startFailure{initFailure{typ: "Runtime.InvalidEntrypoint", msg: err.Error(), platform: true}}
	}
	pw.Close()
	e.cmd = cmd
	go func() {
		e.exitErr = cmd.Wait()
		// Read before anyone tears the sandbox (and its cgroup) down.
		e.exitOOM = box.OOMKilled()
		close(e.exited)
	}()
	return nil
}

// netFD is the environment's network namespace for the sandbox; 0 keeps the host's.
func (e *Environment) netFD() int {
	if e.net == nil {
		return 0
	}
	return e.net.FD()
}

// messageOf extracts errorMessage from an error body.
func messageOf(body []byte) string {
	var v struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &v)
	return v.ErrorMessage
}

// watch closes the environment when its runtime exits on its own.
func (e *Environment) watch() {
	select {
	case <-e.exited:
		e.logger.Debug("runtime exited", "err", e.exitErr)
		go e.Close(context.Background())
	case <-e.done:
	}
}

// Slots is the number of invocations served at once.
func (e *Environment) Slots() int { return e.slots }

// InFlight is the number of slots taken now (an invocation that timed out on
// a multi-slot environment holds its slot until the runtime answers it).
func (e *Environment) InFlight() int { return e.api.InUse() }

// InitDuration is how long the runtime took to initialise.
func (e *Environment) InitDuration() time.Duration { return e.initDur }

// Spec is the environment's spec with defaults applied.
func (e *Environment) Spec() Spec { return e.spec }

// CPUTime is the CPU time the environment's processes have used so far
// (0 without a CPU cgroup); one cgroup read, for samplers rather than the
// invoke path.
func (e *Environment) CPUTime() time.Duration { return e.box.CPUTime() }

// ID identifies the environment (also its sandbox's).
func (e *Environment) ID() string { return e.id }

// Limited returns "" when the environment is fully confined, else why not.
func (e *Environment) Limited() string {
	switch l := e.box.Limited(); {
	case l == "":
		return e.limited
	case e.limited == "":
		return l
	default:
		return l + "; " + e.limited
	}
}

// Done is closed when the environment has ended.
func (e *Environment) Done() <-chan struct{} { return e.done }

// Close stops accepting invocations, lets in-flight ones finish until ctx
// ends, then kills the process tree and removes the environment's files.
// It is idempotent: the first call returns once the environment has ended;
// later calls return then or when their ctx ends.
func (e *Environment) Close(ctx context.Context) error {
	e.closing.Store(true)
	first := false
	e.closeOnce.Do(func() {
		first = true
		go func() {
			if e.inflight.Load() > 0 {
				select {
				case <-e.idle:
				case <-e.exited:
				case <-ctx.Done():
				}
			}
			e.closeErr = e.teardown()
			close(e.done)
		}()
	})
	if first {
		// ctx bounds the wait for in-flight invocations; the teardown after
		// it is short, so the first caller sees the environment ended.
		<-e.done
		return e.closeErr
	}
	select {
	case <-e.done:
		return e.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// teardown kills the process tree and releases everything. It is safe on a
// partly started environment.
func (e *Environment) teardown() error {
	var errs []error
	if e.box != nil {
		if err := e.box.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.cmd != nil {
		<-e.exited
	}
	if e.api != nil {
		_ = e.api.Close()
	}
	if e.net != nil {
		if err := e.net.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.logs != nil {
		// A process that left the tree may still hold the pipe open.
		t := e.clock.NewTimer(time.Second)
		select {
		case <-e.logs.done:
		case <-t.C():
		}
		t.Stop()
		_ = e.logs.r.Close()
	}
	if e.mem != nil {
		e.mem.close()
	}
	if e.box != nil {
		if err := e.box.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.tmp != nil {
		if err := e.tmp.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.dir != "" {
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
