package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/codecache"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/pki"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/runtimes"
	"github.com/shoal-dev/shoal/internal/scratch"
	"github.com/shoal-dev/shoal/internal/wire"
)

// Agent is one running instance: it hosts the execution environments the
// control plane asks for, serves invocations to them over internal/wire, and
// heartbeats its state and host metrics over NATS.
//
// Concurrency: the fields of the first group are set by Start and immutable.
// cpuBits, memUsed, draining and seq are atomic. mu guards envs. The
// heartbeat goroutine alone samples metrics.
type Agent struct {
	cfg Config
	// limits says whether invocations are refused on the instance's CPU and
	// memory: only when its figures are the instance's own.
	limits   bool
	log      *slog.Logger
	clock    clock.Clock
	nc       *nats.Conn
	ownNC    bool
	it       pricing.InstanceType
	metrics  HostMetrics
	code     *codecache.Cache
	envDeps  env.Deps
	wireKey  []byte      // the invoke connection's key (from the bus credentials); nil asks none
	tls      *tls.Config // the invoke listener's TLS (Config.TLS); nil serves plain
	logStore *logs.Store
	meter    *ledger.Recorder // nil when Deps.Usage is given or metering is off
	srv      *wire.Server
	ln       net.Listener
	network  string
	addr     string
	started  time.Time
	sub      *nats.Subscription
	runCtx   context.Context
	cancel   context.CancelFunc
	kick     chan struct{}
	hbDone   chan struct{}
	obs      *observer // network, descriptors, environments' memory; GET /metrics

	cpuBits  atomic.Uint64
	memUsed  atomic.Int64
	draining atomic.Bool
	seq      atomic.Uint64
	// drainedDone and drainedCut count the invocations in flight in an
	// environment when its drain began: those that finished, and those
	// still running when the drain's time was up.
	drainedDone atomic.Uint64
	drainedCut  atomic.Uint64
	// builds tells the runtime builds of the machine apart.
	builds runtimes.Prober

	mu   sync.RWMutex
	envs map[string]*hostedEnv

	drainOnce sync.Once
	drained   chan struct{}
	closeOnce sync.Once
}

var _ wire.Handler = (*Agent)(nil)

// Run starts an agent and serves until ctx ends or a shutdown command
// arrives, then drains, publishes its last heartbeat and returns. It is the
// agent process's main loop: it sets the process's GOMAXPROCS (Config.Procs).
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if n := agentProcs(&cfg); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	a, err := Start(ctx, cfg, deps)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.runCtx.Done():
	}
	return a.Close()
}

// agentProcs is the GOMAXPROCS Run sets, or 0 to keep Go's own choice.
func agentProcs(cfg *Config) int {
	if cfg.Procs > 0 {
		return cfg.Procs
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return 0
	}
	it, err := pricing.Default().InstanceType(cfg.Type)
	if err != nil {
		return 0 // Start refuses the configuration
	}
	return min(max(1, it.VCPU/8), runtime.NumCPU())
}

// Start connects to NATS, listens for invocations and commands, and
// publishes a first heartbeat.
func Start(ctx context.Context, cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	it, _ := pricing.Default().InstanceType(cfg.Type)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	a := &Agent{
		cfg: cfg, clock: deps.Clock, it: it, metrics: deps.Metrics,
		log:     deps.Logger.With("component", "instance", "instance", cfg.ID),
		kick:    make(chan struct{}, 1),
		hbDone:  make(chan struct{}),
		envs:    make(map[string]*hostedEnv),
		drained: make(chan struct{}),
		started: deps.Clock.Now(),
	}
	a.limits = !cfg.Classic // a classic agent's figures are its host's
	if a.metrics == nil {
		m := newHostMetrics()
		a.log.Info("host metrics", "source", m.Source())
		a.metrics = m
		if !cfg.Classic && !inInstanceCgroup("/proc/self/cgroup", cfg.ID) {
			// Unconfined (shoal up --isolate=false, or no cgroups): the figures
			// are the host's or the session's, busy with everything else, and
			// would refuse invocations for load that is not the instance's.
			a.limits = false
			a.log.Warn("the agent is not confined to its instance's cgroup: CPU and memory figures are the host's, and invocations are not refused on them")
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.WorkDir, "code"), 0o755); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	// The certificate and the credentials key the invoke wire, on a
	// connection of the agent's own or on one it is given (an agent in its
	// host's process).
	var (
		cert   tls.Certificate
		pool   *x509.CertPool
		creds  bus.Credentials
		hasTLS = cfg.TLS.Cert != ""
	)
	if hasTLS {
		var err error
		if cert, pool, err = cfg.TLS.Load(); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.tls = pki.ServerConfigFrom(cert, pool)
	}
	if cfg.NATSCreds != "" {
		var err error
		if creds, err = bus.ReadCredentials(cfg.NATSCreds); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.wireKey = creds.WireKey()
		if creds.Identity != bus.AgentIdentity(cfg.ID) {
			return nil, fmt.Errorf("agent: %s holds the credentials of %s, not of %s", cfg.NATSCreds, creds.Identity, bus.AgentIdentity(cfg.ID))
		}
	}
	a.nc = deps.NATS
	if a.nc == nil {
		// A control plane under load may take a while to accept: try for
		// up to 30 s before giving up (the fleet's boot timeout is longer).
		opts := []nats.Option{nats.Name("shoal-agent-" + cfg.ID), nats.Timeout(5 * time.Second),
			// A refusal by the bus (a permission) arrives asynchronously.
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				a.log.Warn("bus error", "err", err)
			})}
		if hasTLS && cfg.External == nil {
			opts = append(opts, nats.Secure(pki.ClientConfigFrom(cert, pool)))
		}
		if cfg.NATSCreds != "" && cfg.External == nil {
			more, err := creds.Options()
			if err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			opts = append(opts, more...)
		}
		if cfg.External != nil {
			opts = append(opts, cfg.External.Options()...)
		}
		var nc *nats.Conn
		var err error
		for attempt := 0; ; attempt++ {
			nc, _, err = bus.Connect(cfg.NATSURL, opts...)
			if err == nil || attempt == 5 || ctx.Err() != nil {
				break
			}
			a.log.Warn("connecting to the control plane", "attempt", attempt+1, "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.nc, a.ownNC = nc, true
	}
	js, err := bus.NewJetStream(a.nc)
	if err != nil {
		a.closeNC()
		return nil, fmt.Errorf("agent: jetstream: %w", err)
	}
	a.code = codecache.New(filepath.Join(cfg.WorkDir, "code"), (&codeStore{js: js, bucket: cfg.CodeBucket}).Fetch)
	sink := deps.Logs
	if sink == nil {
		// The agent writes lines of its own (logs.<function>.<id>) to the
		// stream the control plane keeps.
		st, err := logs.Open(ctx, js, logs.Config{Source: cfg.ID, Attach: true}, deps.Logger)
		if err != nil {
			a.closeNC()
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.logStore, sink = st, st
	}
	a.obs = newObserver()
	a.envDeps = env.Deps{Logger: deps.Logger, Clock: deps.Clock, Logs: sink,
		WorkDir: filepath.Join(cfg.WorkDir, "envs"), Sandboxes: a.obs.sandboxes(deps.Sandboxes)}
	// Isolated environments each get a network namespace; where none can be
	// made (not root), they share the instance's and say so (Limited).
	if nets, err := envnet.NewPools(envnet.Config{}, deps.Logger); err == nil {
		a.envDeps.Networks = nets
	} else if cfg.Isolate {
		a.log.Warn("environments share the instance's network", "err", err)
	}
	if vols, err := scratch.NewPool(scratch.Config{Dir: filepath.Join(cfg.WorkDir, "scratch")}, deps.Logger); err == nil {
		a.envDeps.Scratch = vols
	} else if cfg.Isolate {
		a.log.Warn("environments' /tmp has no size limit", "err", err)
	}
	if err := a.openMeter(ctx, js, deps.Usage); err != nil {
		a.closeLogs()
		a.closeNC()
		return nil, err
	}
	if err := a.listen(); err != nil {
		a.closeMeter()
		a.closeLogs()
		a.closeNC()
		return nil, err
	}
	a.ln = a.obs.countConns(a.ln)
	a.runCtx, a.cancel = context.WithCancel(context.Background())
	a.srv = wire.NewServer(a, deps.Logger, a.wireKey)
	go func() {
		if err := a.srv.Serve(a.ln); err != nil {
			a.log.Error("invoke listener failed", "err", err)
		}
	}()
	a.sub, err = a.nc.Subscribe(CommandSubject(cfg.ID), func(m *nats.Msg) { go a.command(m) })
	if err != nil {
		a.cancel()
		a.srv.Close()
		a.closeMeter()
		a.closeLogs()
		a.closeNC()
		return nil, fmt.Errorf("agent: subscribe: %w", err)
	}
	if err := a.nc.Flush(); err != nil { // the subscription is in place before anyone hears of us
		a.log.Warn("flush", "err", err)
	}
	a.metrics.Sample(a.clock.Now(), it.VCPU)
	if err := a.obs.serve(a); err != nil {
		a.log.Warn("no metrics endpoint", "err", err)
	}
	a.obs.sample(a)
	a.publish(StateRunning)
	go a.heartbeats()
	a.log.Info("agent started", "type", cfg.Type, "zone", cfg.Zone, "capacity_provider", cfg.CapacityProvider,
		"invoke", a.network+" "+a.addr)
	return a, nil
}

func (a *Agent) listen() error {
	var err error
	if a.cfg.Socket != "" {
		_ = os.Remove(a.cfg.Socket) // a socket left by an earlier run
		a.network, a.addr = "unix", a.cfg.Socket
		a.ln, err = net.Listen("unix", a.cfg.Socket)
	} else {
		a.network = "tcp"
		a.ln, err = net.Listen("tcp", a.cfg.Listen)
		if err == nil {
			a.addr = a.ln.Addr().String()
			if a.tls != nil {
				// Across machines: TLS, with a certificate of the cluster
				// on both ends.
				a.ln = wire.TLSListener(a.ln, a.tls)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("agent: listen: %w", err)
	}
	return nil
}

// InvokeAddr is where the agent serves invocations: network and address.
func (a *Agent) InvokeAddr() (network, addr string) { return a.network, a.addr }

// Done is closed when a shutdown command arrived (Run then returns).
func (a *Agent) Done() <-chan struct{} { return a.runCtx.Done() }

// Close drains every environment (within Config.StopTimeout), publishes the
// last heartbeat ("terminated") and disconnects.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		a.drain(ctx)
		cancel()
		a.cancel()
		<-a.hbDone
		_ = a.sub.Unsubscribe()
		a.srv.Close()
		a.obs.close()
		if a.envDeps.Networks != nil {
			_ = a.envDeps.Networks.Close()
		}
		if a.envDeps.Scratch != nil {
			_ = a.envDeps.Scratch.Close()
		}
		_ = os.Remove(a.cfg.Socket)
		a.closeMeter()
		a.publish(StateTerminated)
		_ = a.nc.Flush()
		a.closeLogs()
		a.closeNC()
		a.log.Info("agent stopped")
	})
	return nil
}

func (a *Agent) closeLogs() {
	if a.logStore != nil {
		a.logStore.Close()
	}
}

func (a *Agent) closeNC() {
	if a.ownNC {
		a.nc.Close()
	}
}

// Invoke routes one invocation to its environment, or refuses it at once.
func (a *Agent) Invoke(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
	a.mu.RLock()
	e := a.envs[envID]
	a.mu.RUnlock()
	if e == nil {
		return env.Result{}, wire.Refused(wire.ReasonUnknown, "no environment %s on instance %s", envID, a.cfg.ID)
	}
	if err := a.admit(e); err != nil {
		e.countRefusal(err.Reason)
		return env.Result{}, err
	}
	e.begin()
	res, err := e.ae.Invoke(ctx, inv)
	e.inflight.Add(-1)
	switch {
	case errors.Is(err, env.ErrBusy):
		e.countRefusal(wire.ReasonConcurrency)
		return env.Result{}, wire.Refused(wire.ReasonConcurrency, "all %d slots of environment %s are taken", e.slots, envID)
	case errors.Is(err, env.ErrClosed):
		e.countRefusal(wire.ReasonDraining)
		return env.Result{}, wire.Refused(wire.ReasonDraining, "environment %s is closing", envID)
	case err == nil:
		e.invocations.Add(1)
	}
	return res, err
}

// admit checks the environment's and the instance's state before an invocation.
func (a *Agent) admit(e *hostedEnv) *wire.RefusedError {
	switch e.getState() {
	case stReady:
	case stDraining:
		return wire.Refused(wire.ReasonDraining, "environment %s is draining", e.id)
	case stInitializing:
		return wire.Refused(wire.ReasonUnknown, "environment %s is initializing", e.id)
	default:
		return wire.Refused(wire.ReasonUnknown, "environment %s failed", e.id)
	}
	if a.draining.Load() {
		return wire.Refused(wire.ReasonDraining, "instance %s is draining", a.cfg.ID)
	}
	if !a.limits {
		return nil
	}
	if cpu := math.Float64frombits(a.cpuBits.Load()); cpu > a.cfg.CPUThreshold {
		return wire.Refused(wire.ReasonCPU, "instance %s CPU utilisation %.0f%% is above %.0f%%",
			a.cfg.ID, cpu*100, a.cfg.CPUThreshold*100)
	}
	if total := a.it.MemoryGiB * 1024; total > 0 {
		if used := a.memUsed.Load(); float64(used) > a.cfg.MemoryThreshold*float64(total) {
			return wire.Refused(wire.ReasonMemory, "instance %s uses %d of %d MB", a.cfg.ID, used, total)
		}
	}
	return nil
}

// command answers one request on the command subject. A command that
// panics is answered with a ServiceException error; the agent serves on.
func (a *Agent) command(m *nats.Msg) {
	var cmd Command
	var rep Reply
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		rep.Error = "bad command: " + err.Error()
	} else if perr := guard.Run(a.log, "agent command "+cmd.Op, func() { rep = a.do(cmd) }); perr != nil {
		rep = Reply{Error: "ServiceException: " + perr.Error()}
	}
	body, _ := json.Marshal(rep)
	if err := m.Respond(body); err != nil {
		a.log.Warn("command reply failed", "op", cmd.Op, "err", err)
	}
}

func (a *Agent) do(cmd Command) Reply {
	switch cmd.Op {
	case OpStart:
		if cmd.Start == nil {
			return Reply{Error: "start: missing environment"}
		}
		return a.startEnv(*cmd.Start)
	case OpStop:
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		defer cancel()
		return a.stopEnv(ctx, cmd.EnvID)
	case OpDrain:
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		defer cancel()
		a.drain(ctx)
		hb := a.heartbeat(a.state(), false)
		return Reply{OK: true, Heartbeat: &hb}
	case OpStatus:
		hb := a.heartbeat(a.state(), false)
		return Reply{OK: true, Heartbeat: &hb}
	case OpKeep:
		return a.keep(cmd.Keep)
	case OpShutdown:
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		defer cancel()
		a.drain(ctx)
		hb := a.heartbeat(a.state(), false)
		a.cancel() // Run returns and closes the agent
		return Reply{OK: true, Heartbeat: &hb}
	}
	return Reply{Error: fmt.Sprintf("unknown op %q", cmd.Op)}
}

func (a *Agent) state() string {
	if a.draining.Load() {
		return StateDraining
	}
	return StateRunning
}

// startEnv starts an environment and answers once its init is over.
func (a *Agent) startEnv(req StartEnv) Reply {
	switch {
	case !idPattern.MatchString(req.EnvID):
		return Reply{Error: fmt.Sprintf("start: environment id %q must be 1-64 letters, digits, '-' or '_'", req.EnvID)}
	case req.CapacityProvider != a.cfg.CapacityProvider:
		return Reply{Error: fmt.Sprintf("start: instance %s belongs to capacity provider %q, not %q",
			a.cfg.ID, a.cfg.CapacityProvider, req.CapacityProvider)}
	case a.draining.Load():
		return Reply{Error: fmt.Sprintf("start: instance %s is draining", a.cfg.ID)}
	}
	if msg := a.checkClassic(&req); msg != "" {
		return Reply{Error: "start: " + msg}
	}
	// The runtime's build is probed before a.mu is taken: a first probe runs
	// the interpreter, and invocations wait on a.mu.
	build, _ := a.builds.Build(runtimes.KindOf(req.Spec.Runtime))
	a.mu.Lock()
	if e := a.envs[req.EnvID]; e != nil {
		a.mu.Unlock()
		<-e.ready
		return envReply(e)
	}
	e := newEnv(req.EnvID, req.Revision, build, &req.Spec)
	if a.cfg.Classic {
		e.initType = req.Spec.InitType
		e.kept(a.clock.Now())
	}
	a.envs[req.EnvID] = e
	a.mu.Unlock()
	a.heartbeatNow()

	var ae *env.Environment
	var err error
	// A launch that panics fails like one that errs: the environment is
	// removed and the start answered.
	if perr := guard.Run(a.log, "starting an environment", func() { ae, err = a.launch(req) }); perr != nil {
		err = perr
	}
	e.ae, e.initErr = ae, err
	if err != nil {
		a.mu.Lock()
		delete(a.envs, req.EnvID)
		a.mu.Unlock()
		e.fail(err.Error())
	} else if !e.setState(stInitializing, stReady) {
		// stopped during init: the stop closes it
	} else {
		if a.cfg.Classic {
			e.kept(a.clock.Now()) // its owner keeps it from now on
		}
		go a.watch(e)
	}
	close(e.ready)
	if err == nil && a.draining.Load() {
		// A drain began while this environment started: it may have missed it.
		e.markDraining()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
			defer cancel()
			e.stop(ctx, ctx, a.removeFunc(e))
		}()
	}
	a.heartbeatNow()
	log := a.log.With("env", e.id, "function", e.function, "version", e.version)
	if err != nil {
		log.Warn("environment failed to start", "err", err)
	} else {
		log.Info("environment ready", "slots", e.slots, "init", ae.InitDuration())
	}
	return envReply(e)
}

func envReply(e *hostedEnv) Reply {
	st := e.status(false)
	if e.initErr == nil {
		return Reply{OK: true, Env: &st}
	}
	rep := Reply{Error: e.initErr.Error(), Env: &st}
	var ie *env.InitError
	if errors.As(e.initErr, &ie) {
		rep.Init = &InitFailure{ErrorType: ie.ErrorType, Message: ie.Message, Payload: ie.Payload,
			Log: ie.Log, InitDuration: ie.InitDuration, Platform: ie.Platform()}
	}
	return rep
}

// launch fetches the code and starts the environment.
func (a *Agent) launch(req StartEnv) (*env.Environment, error) {
	spec := req.Spec
	dir, err := a.code.CodeDir(a.runCtx, req.CodeSha256)
	if err != nil {
		return nil, err
	}
	spec.CodeDir = dir
	if spec.OptDir, err = a.code.OptDir(a.runCtx, spec.Layers); err != nil {
		return nil, err
	}
	if !a.cfg.Classic { // a classic environment keeps its own (checkClassic)
		spec.InitType = "lambda-managed-instances"
		if spec.InitTimeout <= 0 {
			spec.InitTimeout = InitTimeout(spec.Timeout)
		}
	}
	if spec.MaxConcurrency <= 0 {
		spec.MaxConcurrency = 1
	}
	spec.Isolate = spec.Isolate || a.cfg.Isolate
	if spec.LogStream == "" {
		spec.LogStream = randid.LogStream(a.clock.Now(), spec.Version)
	}
	return env.Start(a.runCtx, spec, a.envDeps)
}

// watch marks an environment failed when it ends without being stopped.
func (a *Agent) watch(e *hostedEnv) {
	<-e.ae.Done()
	if e.setState(stReady, stFailed) {
		e.fail("the environment ended: its runtime exited")
		a.log.Warn("environment ended on its own", "env", e.id, "function", e.function)
		a.heartbeatNow()
	}
}

// stopEnv drains and removes one environment.
func (a *Agent) stopEnv(ctx context.Context, id string) Reply {
	a.mu.RLock()
	e := a.envs[id]
	a.mu.RUnlock()
	if e == nil {
		return Reply{OK: true}
	}
	e.markDraining()
	a.heartbeatNow()
	e.stop(ctx, ctx, a.removeFunc(e))
	select {
	case <-e.stopped:
		st := e.status(false)
		return Reply{OK: true, Env: &st}
	default:
		return Reply{Error: fmt.Sprintf("stop: environment %s still draining: %v", id, ctx.Err())}
	}
}

func (a *Agent) remove(e *hostedEnv) {
	a.mu.Lock()
	if a.envs[e.id] == e {
		delete(a.envs, e.id)
	}
	a.mu.Unlock()
	a.heartbeatNow()
}

// removeFunc is the end of e's stop: it counts what the drain did to the
// invocations in flight and removes e.
func (a *Agent) removeFunc(e *hostedEnv) func(inFlight, cut int) {
	return func(inFlight, cut int) {
		a.drainedDone.Add(uint64(inFlight - cut))
		a.drainedCut.Add(uint64(cut))
		if cut > 0 {
			a.log.Warn("environment drained with invocations still running after the function's timeout",
				"env", e.id, "function", e.function, "version", e.version, "in_flight", inFlight, "cut", cut)
		} else if inFlight > 0 {
			a.log.Info("environment drained", "env", e.id, "function", e.function, "version", e.version, "in_flight", inFlight)
		}
		a.remove(e)
	}
}

// drain refuses new invocations and environments, and stops every
// environment; it returns when all have ended or ctx ends.
func (a *Agent) drain(ctx context.Context) {
	a.drainOnce.Do(func() {
		a.draining.Store(true)
		a.heartbeatNow()
		a.log.Info("draining")
		go func() {
			a.mu.RLock()
			envs := make([]*hostedEnv, 0, len(a.envs))
			for _, e := range a.envs {
				envs = append(envs, e)
			}
			a.mu.RUnlock()
			var wg sync.WaitGroup
			stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
			defer cancel()
			for _, e := range envs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.markDraining()
					a.heartbeatNow()
					e.stop(stopCtx, stopCtx, a.removeFunc(e))
				}()
			}
			wg.Wait()
			close(a.drained)
			a.log.Info("drained")
		}()
	})
	select {
	case <-a.drained:
	case <-ctx.Done():
	}
}

// heartbeatNow asks the heartbeat goroutine to publish at once.
func (a *Agent) heartbeatNow() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) heartbeats() {
	defer close(a.hbDone)
	t := a.clock.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	stamp := openAliveStamp(a.cfg.WorkDir, a.log)
	defer stamp.Close()
	stamp.Write(a.clock.Now())
	for {
		select {
		case <-a.runCtx.Done():
			return
		case <-t.C():
			_ = guard.Run(a.log, "sampling the instance", a.sample)
			if a.cfg.Classic {
				_ = guard.Run(a.log, "stopping environments nobody keeps", a.reapUnkept)
			}
		case <-a.kick:
		}
		stamp.Write(a.clock.Now())
		_ = guard.Run(a.log, "heartbeat", func() { a.publish(a.state()) })
	}
}

// sample reads the instance's and its environments' figures.
func (a *Agent) sample() {
	now := a.clock.Now()
	cpu, mem := a.metrics.Sample(now, a.it.VCPU)
	a.cpuBits.Store(math.Float64bits(cpu))
	a.memUsed.Store(int64(mem))
	func() {
		a.mu.RLock()
		defer a.mu.RUnlock()
		for _, e := range a.envs {
			e.sampleCPU(now)
		}
	}()
	a.obs.sample(a)
}

// heartbeat builds the current heartbeat.
func (a *Agent) heartbeat(state string, resetPeak bool) Heartbeat {
	total := a.it.MemoryGiB * 1024
	used := int(a.memUsed.Load())
	hb := Heartbeat{
		ID: a.cfg.ID, CapacityProvider: a.cfg.CapacityProvider, Type: a.cfg.Type, Zone: a.cfg.Zone,
		VCPU: a.it.VCPU, MemoryMB: total, InvokeNetwork: a.network, InvokeAddr: a.addr, State: state,
		CPUUtilization: math.Float64frombits(a.cpuBits.Load()), MemoryUsedMB: used,
		MemoryAvailableMB: max(total-used, 0), Pid: os.Getpid(), Seq: a.seq.Add(1),
		StartedAt: a.started, Time: a.clock.Now(), Environments: []EnvStatus{},
		Classic: a.cfg.Classic, Host: a.cfg.Host,
		DrainedInvocations: a.drainedDone.Load(), CutInvocations: a.drainedCut.Load(),
		Runtimes: a.builds.Builds(), Bootstrap: runtimes.BootstrapHash(),
	}
	a.mu.RLock()
	for _, e := range a.envs {
		hb.Environments = append(hb.Environments, e.status(resetPeak))
	}
	a.mu.RUnlock()
	a.obs.fill(a, &hb)
	sort.Slice(hb.Environments, func(i, j int) bool { return hb.Environments[i].ID < hb.Environments[j].ID })
	return hb
}

func (a *Agent) publish(state string) {
	body, err := json.Marshal(a.heartbeat(state, true))
	if err != nil {
		return
	}
	if err := a.nc.Publish(HeartbeatSubject(a.cfg.ID), body); err != nil {
		a.log.Warn("heartbeat not published", "err", err)
	}
}
