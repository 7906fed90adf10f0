// Package controlplane assembles shoal's main job, `shoal up`: the embedded NATS server
// with JetStream, the registry, the log store, the router with its in-process
// instance, and the Lambda REST API behind SigV4 verification. It owns start-up
// order, the HTTP listeners (the API, and the unsigned Prometheus endpoint) and a
// clean shutdown; the components own everything else.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/codecache"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/runtimes"
	"github.com/shoal-dev/shoal/internal/scaler"
	"github.com/shoal-dev/shoal/internal/scratch"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// Config configures shoal's main job.
type Config struct {
	// DataDir holds JetStream's files (registry, code, logs) and unpacked code.
	DataDir string
	// Listen is the REST API's address; "127.0.0.1:0" picks a free port.
	Listen string
	// MetricsListen is the address of the Prometheus endpoint (GET /metrics and,
	// for Prometheus' HTTP service discovery, GET /shoal/v1/metrics/targets),
	// which answers without a signature (default 127.0.0.1:9100).
	MetricsListen string
	// Auth is how API callers prove who they are: AuthSigV4 (the default), a
	// valid AWS Signature Version 4 made with a key of CredentialsFile, on every
	// request (shoal's own endpoints too); or AuthNone, which accepts anyone.
	Auth string
	// CredentialsFile is the AWS shared-credentials file whose keys the API
	// accepts (default <DataDir>/credentials). When it is missing, shoal writes
	// it with a fresh key under [default].
	CredentialsFile string
	// URLListen is where function URLs are served (default DefaultURLListen).
	URLListen string
	// AccountConcurrency is the account's concurrent-execution limit.
	AccountConcurrency int
	// KeepAlive is how long an idle on-demand environment is kept warm.
	KeepAlive time.Duration
	// Isolate runs environments in namespaces under an unprivileged user when root.
	Isolate bool
	// Egress is what an isolated environment's network reaches: EgressNAT
	// (the default: the outside world through the host's NAT) or EgressNone
	// (nothing but its own loopback).
	Egress string
	// EgressDeny lists addresses and ranges (198.18.0.0/24) that isolated
	// environments with egress never reach. In a cluster the other nodes'
	// and the NATS servers' addresses are added.
	EgressDeny []string
	// ShutdownTimeout bounds how long in-flight invocations may take to finish on stop.
	ShutdownTimeout time.Duration
	// Region and AccountID appear in ARNs.
	Region, AccountID string

	// Managed Instances: AgentBinary is the shoal binary the local fleet runs as
	// `shoal agent` (default: this executable); Zones the fleet spreads over;
	// LaunchDelay emulates an instance's boot; Heartbeat is the agents' interval;
	// ScaleInterval is how often the scaler decides.
	AgentBinary   string
	Zones         []string
	LaunchDelay   time.Duration
	Heartbeat     time.Duration
	ScaleInterval time.Duration
	// MaxInstanceLifetime is how long a Managed Instances instance runs
	// before it is replaced (default 14 days); a capacity provider's tag
	// registry.MaxInstanceLifetimeTag sets its own.
	MaxInstanceLifetime time.Duration
	// ScalePeakWindow and ScaleInInterval pace the scaler's scale-in: how long
	// demand must stay low, and the least time between two steps (defaults
	// scaler.DefaultPeakWindow and DefaultScaleInInterval: 5 and 1 minutes).
	ScalePeakWindow, ScaleInInterval time.Duration

	// NoMeter turns the usage ledger off (for measuring what metering costs).
	NoMeter bool
	// UsageRetention is how long the usage ledger keeps its events: 0 means
	// ledger.DefaultRetention, a negative value for ever.
	UsageRetention time.Duration

	// Cluster makes this shoal up a node of a cluster; nil runs alone.
	Cluster *ClusterConfig
	// SecretFile holds the cluster secret (default <data>/cluster-secret).
	SecretFile string

	// AsyncRetryDelay is the wait before an asynchronous event's second
	// attempt after a function error; the third waits twice as long (Lambda:
	// 1 minute, the default).
	AsyncRetryDelay time.Duration
}

// Values of Config.Auth.
const (
	AuthSigV4 = "sigv4"
	AuthNone  = "none"
)

// DefaultMetricsListen is where the Prometheus endpoint listens by default.
const DefaultMetricsListen = "127.0.0.1:9100"

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		c.DataDir = ".shoal"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9000"
	}
	if c.MetricsListen == "" {
		c.MetricsListen = DefaultMetricsListen
	}
	if c.Auth == "" {
		c.Auth = AuthSigV4
	}
	if c.CredentialsFile == "" {
		c.CredentialsFile = filepath.Join(c.DataDir, "credentials")
	}
	if c.URLListen == "" {
		c.URLListen = DefaultURLListen
	}
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = 1000
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 10 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.MaxInstanceLifetime == 0 {
		c.MaxInstanceLifetime = scaler.DefaultMaxInstanceLifetime
	}
	if c.MaxInstanceLifetime < registry.MinInstanceLifetime {
		return fmt.Errorf("maximum instance lifetime %v: must be at least %v", c.MaxInstanceLifetime, registry.MinInstanceLifetime)
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.Egress == "" {
		c.Egress = EgressNAT
	}
	if c.Egress != EgressNAT && c.Egress != EgressNone {
		return fmt.Errorf("egress %q: must be %s or %s", c.Egress, EgressNAT, EgressNone)
	}
	if _, err := envnet.ParsePrefixes(c.EgressDeny); err != nil {
		return fmt.Errorf("egress-deny: %w", err)
	}
	if c.Cluster != nil {
		if err := c.Cluster.validate(); err != nil {
			return err
		}
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{c.Region + "a", c.Region + "b", c.Region + "c"}
	}
	if c.AsyncRetryDelay == 0 {
		c.AsyncRetryDelay = time.Minute
	}
	if c.AsyncRetryDelay < 0 {
		return fmt.Errorf("async retry delay %s: must not be negative", c.AsyncRetryDelay)
	}
	if c.AccountConcurrency < 1 {
		return fmt.Errorf("account concurrency %d: must be at least 1", c.AccountConcurrency)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
		return fmt.Errorf("metrics listen address %q: %w", c.MetricsListen, err)
	}
	if c.Auth != AuthSigV4 && c.Auth != AuthNone {
		return fmt.Errorf("auth %q: want %s or %s", c.Auth, AuthSigV4, AuthNone)
	}
	if _, _, err := net.SplitHostPort(c.URLListen); err != nil {
		return fmt.Errorf("function URL listen address %q: %w", c.URLListen, err)
	}
	return nil
}

// Deps are the outside world a Server talks to.
type Deps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Progress receives human-readable start-up progress lines; nil discards them.
	Progress io.Writer
	// Ready, if set, is called once the API is listening.
	Ready func(s *Server)
}

// runtimeVersion names the build of a runtime this machine runs now
// (runtimes.VersionID), "" when its interpreter is missing.
func (s *Server) runtimeVersion(runtime string) string {
	b, err := s.builds.Build(runtimes.KindOf(runtime))
	if err != nil {
		return ""
	}
	return runtimes.VersionID(runtime, b)
}

// Run starts shoal and serves until ctx ends, then shuts down cleanly.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	s, err := Start(ctx, cfg, deps)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Server is a running shoal main job.
type Server struct {
	cfg    Config
	logger *slog.Logger

	clock   clock.Clock
	bus     *bus.Bus
	reg     *registry.Registry
	logs    *logs.Store
	router  *router.Router
	managed *managedPlane
	async   *asyncq.Queue
	remote  *remotePlane // in a cluster: environments on any host (remote.go)
	metrics *serverMetrics
	builds  runtimes.Prober  // tells this machine's runtime builds apart
	meter   *ledger.Recorder // nil with Config.NoMeter
	// provUsage records Provisioned Concurrency time; nil without a meter.
	provUsage *provisionedUsage
	http      *http.Server
	ln        net.Listener
	// metricsHTTP serves /metrics on metricsLn.
	metricsHTTP *http.Server
	metricsLn   net.Listener
	// creds is the credentials file the API accepts keys from ("" with
	// AuthNone); credsCreated says this start wrote it.
	creds string
	// verifier checks API signatures (nil with --auth none); AWS_IAM function
	// URLs are checked with it too.
	verifier     *sigv4.Verifier
	credsCreated bool
	urlHTTP      *http.Server // function URLs (urls.go)
	urlLn        net.Listener

	cancel context.CancelFunc
	loops  chan struct{} // closed when the background loops have stopped
	lock   *dataLock     // held from first to last
	secret bus.Secret    // what every identity on the bus and the wire derives from
	nets   *envnet.Pools // the in-process environments' network namespaces; nil without isolation
	// deny keeps environments off the cluster's machines (denyEgress), with
	// the hosts that hostAddrs hears of; nil without isolation and egress.
	deny      *envnet.ClusterDeny
	hostAddrs *nats.Subscription
	// In a cluster: this node's TLS, and how many copies JetStream keeps.
	tls      *clusterTLS
	replicas int
	leaderCh chan struct{} // signalled when this node gains or loses the lead
	// scratch makes the in-process environments' /tmp volumes; nil without isolation.
	scratch *scratch.Pool
}

// SecretFile is the file of the data directory that holds the secret every
// identity on the bus and the invoke wire derives from (mode 0600).
const SecretFile = "cluster-secret"

// What an isolated environment's network reaches (Config.Egress).
const (
	EgressNAT  = "nat"
	EgressNone = "none"
)

// Start brings shoal up and returns once the API is listening.
func Start(ctx context.Context, cfg Config, deps Deps) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clk := deps.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	progress := deps.Progress
	if progress == nil {
		progress = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(progress, "  "+format+"\n", args...) }

	s := &Server{cfg: cfg, logger: logger, clock: clk, replicas: 1, leaderCh: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			if s.metricsHTTP != nil {
				s.metricsHTTP.Close()
			}
			s.closeParts()
		}
	}()
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	// The data directory is ours alone before anything in it is opened.
	if s.lock, err = lockDataDir(dataDir); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}

	t0 := time.Now()
	// Everyone on the bus authenticates with a key derived from the secret,
	// which the first node of a cluster writes and the others are given.
	secretFile := cfg.SecretFile
	if secretFile == "" {
		secretFile = filepath.Join(dataDir, SecretFile)
	}
	if s.secret, err = bus.LoadOrCreateSecret(secretFile); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	// So are the API's keys: write them now, before a node of a cluster
	// waits for the others, so that they can be copied to them first.
	if cfg.Auth == AuthSigV4 {
		if s.credsCreated, err = sigv4.EnsureCredentialsFile(cfg.CredentialsFile); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}
	if cfg.Cluster != nil {
		if ext := cfg.Cluster.External; ext != nil {
			step("joining the cluster on the external NATS %s as %s", ext.URL(), cfg.Cluster.Node)
		} else {
			step("joining cluster %s as %s (routes %v)", cfg.Cluster.Name, cfg.Cluster.Node, cfg.Cluster.Routes)
		}
		if err := s.startClusterBus(ctx, dataDir); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		what := "embedded NATS of the cluster"
		if cfg.Cluster.External != nil {
			what = "external NATS"
		}
		step("%s, with JetStream at R%d, ready (%s)", what, s.replicas, since(t0))
	} else {
		// The agents of Managed Instances connect over loopback TCP.
		s.bus, err = bus.Start(ctx, bus.Config{DataDir: filepath.Join(dataDir, "nats"), Listen: busListen(dataDir),
			Logger: logger.With("component", "nats"), Secret: s.secret})
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		if err := saveBusListen(dataDir, s.bus.ClientURL()); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		step("embedded NATS with JetStream ready (%s)", since(t0))
	}

	t0 = time.Now()
	err = s.retrying(ctx, "the registry", func(ctx context.Context) (err error) {
		s.reg, err = registry.Open(ctx, s.bus.JetStream(), registry.Config{AccountID: cfg.AccountID, Region: cfg.Region,
			Replicas: s.replicas, RuntimeVersion: s.runtimeVersion})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	err = s.retrying(ctx, "the log store", func(ctx context.Context) (err error) {
		s.logs, err = logs.Open(ctx, s.bus.JetStream(), logs.Config{Replicas: s.replicas}, logger)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if err := s.retrying(ctx, "the usage ledger", func(ctx context.Context) error { return s.openMeter(ctx, dataDir) }); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	step("registry, log store and usage ledger open (%s)", since(t0))

	workDir := filepath.Join(dataDir, "run")
	if err := os.RemoveAll(workDir); err != nil { // environments of an earlier run are gone
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	code := codecache.New(filepath.Join(dataDir, "code"), s.reg.Code)
	envDeps := env.Deps{Logger: logger, Clock: clk, Logs: s.logs, WorkDir: workDir}
	if cfg.Isolate {
		// Every environment gets a network namespace of its own; prepare a
		// few of the kind this shoal gives.
		if s.nets, err = envnet.NewPools(envnet.Config{}, logger); err == nil {
			if err := s.nets.Warm(cfg.Egress == EgressNAT); err != nil {
				return nil, fmt.Errorf("controlplane: environment networks: %w", err)
			}
			if cfg.Egress == EgressNAT {
				if err := s.denyEgress(); err != nil {
					return nil, fmt.Errorf("controlplane: environment networks: %w", err)
				}
			}
			envDeps.Networks = s.nets
		} else {
			logger.Warn("environments share the host's network", "err", err)
			s.nets = nil
		}
		// And a /tmp of their own, of their ephemeral storage size.
		if s.scratch, err = scratch.NewPool(scratch.Config{Dir: filepath.Join(dataDir, "scratch")}, logger); err == nil {
			envDeps.Scratch = s.scratch
		} else {
			logger.Warn("environments' /tmp has no size limit", "err", err)
			s.scratch = nil
		}
	}
	if s.meter != nil {
		envDeps.Usage = usageSink{rec: s.meter}
	}
	start := func(ctx context.Context, _ *router.Target, spec env.Spec) (router.Env, error) {
		spec.Isolate = cfg.Isolate
		return env.Start(ctx, spec, envDeps)
	}
	// Alone, every environment starts in this process, from code unpacked
	// here by the router.
	starter, routerCode := router.Starter(start), router.CodeSource(code)
	if cfg.Cluster != nil {
		// In a cluster, an environment may go to any host (remote.go),
		// which fetches the code itself.
		start = withCode(start, code)
		starter, routerCode = s.placing(start), nil
	}
	s.router, err = router.New(router.Config{AccountConcurrency: cfg.AccountConcurrency, KeepAlive: cfg.KeepAlive},
		starter, routerCode, clk, logger)
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}

	if err := s.followHosts(); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if err := s.startManaged(ctx, dataDir); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	step("Managed Instances fleet and scaler ready")
	if cfg.Cluster != nil {
		if err := s.startRemote(ctx, dataDir, start); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		step("on-demand and provisioned environments placed on any host")
	}

	if err := s.listenURLs(); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	apiCfg := lambdaapi.Config{AccountID: cfg.AccountID, Region: cfg.Region, AccountConcurrencyLimit: cfg.AccountConcurrency,
		// Lambda keeps 100 of its 1000 unreserved; a smaller account keeps a tenth.
		MinUnreservedConcurrency: min(100, max(1, cfg.AccountConcurrency/10)), FunctionURL: s.functionURL}
	if cfg.Auth == AuthSigV4 {
		apiCfg.PresignURL = presignCode(cfg.Region, clk, logger.With("component", "auth"))
	}
	if err := apiCfg.Validate(); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	s.metrics = newServerMetrics(s)
	inv := &invoker{reg: s.reg, router: s.router, managed: s.managed.router, metrics: s.metrics, cfg: cfg}
	if inv.async, err = s.openAsync(ctx, dataDir, inv, apiCfg.MaxInvokeResponseBytes); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	s.async = inv.async
	api := lambdaapi.New(apiCfg, s.reg, inv, logger)
	mux := http.NewServeMux()
	mux.Handle("/shoal/v1/functions/{name}/logs", s.logs.Handler())
	mux.HandleFunc("GET /shoal/v1/fleet", s.serveFleet)
	mux.HandleFunc("GET /shoal/v1/cluster", s.serveCluster)
	mux.Handle("GET /shoal/v1/usage", ledger.Handler(s.bus.JetStream(), s.meter))
	mux.Handle("GET /shoal/v1/metrics/targets", s.metrics.scrapeTargets())
	mux.Handle("/", api)
	var handler http.Handler = mux
	if cfg.Auth == AuthSigV4 {
		if handler, err = s.authenticate(mux, clk, step); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}

	// Prometheus cannot sign: the metrics have their own listener.
	s.metricsLn, err = net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("controlplane: metrics listener (--metrics-listen): %w", err)
	}
	s.metrics.self = s.metricsLn.Addr().String()
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", s.metrics.handler())
	metricsMux.Handle("GET /shoal/v1/metrics/targets", s.metrics.scrapeTargets())
	s.metricsHTTP = &http.Server{Handler: metricsMux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.metricsHTTP.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	// A panic in a handler is answered ServiceException, inside the
	// signature check as well as behind it.
	s.http = &http.Server{Handler: lambdaapi.Recovering(handler, logger), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("API server stopped", "err", err)
		}
	}()

	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.loops = make(chan struct{})
	go func() {
		defer close(s.loops)
		done := make(chan struct{})
		go func() { s.router.Run(loopCtx); close(done) }()
		s.syncLoop(loopCtx)
		<-done
	}()
	if err := s.serveURLs(inv, urlAuth{v: s.verifier, accountID: cfg.AccountID}); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	step("Prometheus metrics on http://%s/metrics", s.metricsLn.Addr())
	step("Lambda API listening on http://%s, function URLs on http://%s", s.ln.Addr(), s.urlLn.Addr())
	if deps.Ready != nil {
		deps.Ready(s)
	}
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// MetricsAddr is the address the Prometheus endpoint listens on.
func (s *Server) MetricsAddr() string { return s.metricsLn.Addr().String() }

// CredentialsFile is the credentials file whose keys the API accepts ("" when
// it accepts every request); created says this start wrote it.
func (s *Server) CredentialsFile() (path string, created bool) { return s.creds, s.credsCreated }

// Close stops accepting requests, lets in-flight invocations finish (up to the
// shutdown timeout), stops every environment and closes the stores.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if s.http != nil {
		// Shutdown waits for in-flight requests, invocations included.
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
	}
	if s.metricsHTTP != nil {
		if err := s.metricsHTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	if s.urlHTTP != nil {
		if err := s.urlHTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("function URLs: %w", err))
		}
	}
	if s.async != nil {
		// Asynchronous invocations under way finish too; the rest stay queued.
		s.async.Close(ctx)
		s.async = nil
	}
	if s.cancel != nil {
		s.cancel()
		<-s.loops
	}
	errs = append(errs, s.closeParts())
	return errors.Join(errs...)
}

// closeParts closes whatever Start opened, in reverse order.
func (s *Server) closeParts() error {
	var errs []error
	if s.async != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		s.async.Close(ctx)
		cancel()
	}
	if s.managed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		if err := s.managed.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("managed instances: %w", err))
		}
		cancel()
	}
	if s.router != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.router.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("router: %w", err))
		}
		cancel()
	}
	if s.remote != nil {
		if err := s.remote.close(); err != nil {
			errs = append(errs, fmt.Errorf("environments for other fronts: %w", err))
		}
	}
	if s.hostAddrs != nil {
		_ = s.hostAddrs.Unsubscribe()
	}
	if s.nets != nil {
		if err := s.nets.Close(); err != nil {
			errs = append(errs, fmt.Errorf("environment networks: %w", err))
		}
	}
	if s.scratch != nil {
		if err := s.scratch.Close(); err != nil {
			errs = append(errs, fmt.Errorf("environment /tmp volumes: %w", err))
		}
	}
	if s.meter != nil {
		s.provUsage.checkpoint(s.clock.Now(), true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.meter.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("usage ledger: %w", err))
		}
		cancel()
	}
	if s.logs != nil {
		s.logs.Close()
	}
	if s.reg != nil {
		s.reg.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	if s.urlLn != nil && s.urlHTTP == nil {
		_ = s.urlLn.Close()
	}
	s.lock.release()
	return errors.Join(errs...)
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
