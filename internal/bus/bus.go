// Package bus runs shoal's embedded NATS server with JetStream and hands out
// connections to it. It owns the server's lifecycle and nothing else: what is stored
// in JetStream (registry buckets, code objects, streams) belongs to the packages that
// use it.
//
// On one machine the control plane starts the server in-process (Listen "") and talks
// to it over an in-process connection, without a TCP socket. Setting Listen opens a
// client port so that agents in other processes or on other hosts can Connect.
// JetStream data lives under DataDir and survives restarts.
package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPayload is the largest message the embedded server accepts (8 MiB): registry
// records and code chunks stay well below it.
const MaxPayload = 8 << 20

// APITimeout bounds each JetStream API request. nats.go's default (5 s) is too
// short for a loaded two-core machine moving code packages while tests run in
// parallel; a slow answer is better than a spurious failure.
const APITimeout = 30 * time.Second

// NewJetStream returns the JetStream context shoal uses on nc.
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	return jetstream.New(nc, jetstream.WithDefaultTimeout(APITimeout))
}

// Config configures the embedded server.
type Config struct {
	// DataDir holds JetStream's files. Required.
	DataDir string
	// Listen is the client address ("127.0.0.1:4222", "127.0.0.1:0" for a free port).
	// Empty means no TCP listener: in-process connections only.
	Listen string
	// Logger receives the server's notices and errors; nil discards them.
	Logger *slog.Logger
	// StartTimeout bounds how long Start waits for the server; default 10s.
	StartTimeout time.Duration
	// Secret, when set, makes every client authenticate as an identity
	// derived from it (see auth.go); the in-process connection is the
	// ControlPlane's. Without it the bus answers anyone who reaches it.
	Secret Secret
	// TLS, when set, encrypts the client port and the cluster's routes with
	// certificates of the cluster's authority (internal/pki), which both ends
	// verify: required for any address that leaves the machine.
	TLS *TLS
	// Cluster joins this server to other nodes' (NATS routes); JetStream
	// then replicates across them. Nil runs one node alone.
	Cluster *Cluster
	// ClientAdvertise is the host:port clients on other machines reach the
	// client port at ("" is what the listener binds).
	ClientAdvertise string
}

// TLS is the bus's TLS: the server's certificate and the cluster's pool.
type TLS struct {
	Server *tls.Config // for the client port and the routes
}

// Cluster is this node's place in a cluster of control-plane nodes.
type Cluster struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Node names this node's server, unique in the cluster.
	Node string
	// Listen is where this node's routes listen (host:port).
	Listen string
	// Advertise is the host:port the other nodes reach the routes at
	// ("" is Listen).
	Advertise string
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string
	// Size is how many nodes the cluster has, this one included (default
	// 1 + len(Routes)): streams and buckets are replicated on min(3, Size).
	Size int
}

// routeErrorReports is how many failed tries to reconnect a route make one
// error line in the log (NATS's default is every one).
const routeErrorReports = 60

// Replicas is how many copies JetStream keeps of what is made on a bus of
// cfg: three in a cluster of three nodes or more, else one.
func (c *Config) Replicas() int {
	if c.Cluster == nil {
		return 1
	}
	size := c.Cluster.Size
	if size == 0 {
		size = 1 + len(c.Cluster.Routes)
	}
	return min(3, max(1, size))
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("bus: DataDir is required")
	}
	if c.Listen != "" {
		if _, _, err := splitHostPort(c.Listen); err != nil {
			return fmt.Errorf("bus: listen address %q: %w", c.Listen, err)
		}
		if !Loopback(c.Listen) && c.TLS == nil {
			return fmt.Errorf("bus: listen address %q: the bus leaves the machine only encrypted; listen on a loopback address or with TLS", c.Listen)
		}
	}
	if c.StartTimeout < 0 {
		return errors.New("bus: StartTimeout must not be negative")
	}
	if cl := c.Cluster; cl != nil {
		switch {
		case cl.Name == "" || cl.Node == "":
			return errors.New("bus: a cluster needs a name and a node name")
		case c.TLS == nil:
			return errors.New("bus: a cluster's routes leave the machine: TLS is required")
		}
		if _, _, err := splitHostPort(cl.Listen); err != nil {
			return fmt.Errorf("bus: cluster listen address %q: %w", cl.Listen, err)
		}
		for _, r := range cl.Routes {
			if u, err := url.Parse(r); err != nil || u.Host == "" {
				return fmt.Errorf("bus: route %q: want nats-route://host:port", r)
			}
		}
	}
	return nil
}

// Bus is a running embedded NATS server with one in-process client connection.
// All fields are set by Start and immutable afterwards; methods are safe for
// concurrent use.
type Bus struct {
	ns  *server.Server // nil on an external NATS
	ext *External      // set on an external NATS
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// serverOptions are the embedded server's options for c.
func (c *Config) serverOptions() *server.Options {
	opts := &server.Options{
		ServerName: "shoal",
		JetStream:  true,
		StoreDir:   c.DataDir,
		MaxPayload: MaxPayload,
		NoSigs:     true,
		DontListen: c.Listen == "",
	}
	if c.Secret != nil {
		opts.CustomClientAuthentication = authenticator{secret: c.Secret}
		opts.AlwaysEnableNonce = true
	}
	if c.TLS != nil {
		opts.TLSConfig = c.TLS.Server
		opts.TLSVerify = true
		opts.TLSTimeout = 5
	}
	opts.ClientAdvertise = c.ClientAdvertise
	if cl := c.Cluster; cl != nil {
		opts.ServerName = cl.Node
	}
	// A cluster of one node (no routes to others) runs JetStream alone:
	// NATS clusters JetStream only with routes configured, and its meta
	// group would count a route to this node itself as a second peer and
	// never reach its quorum. Hosts join it through the client port as
	// they join any node.
	if cl := c.Cluster; cl != nil && len(cl.Routes) > 0 {
		host, port, _ := splitHostPort(cl.Listen)
		opts.Cluster = server.ClusterOpts{
			Name: cl.Name, Host: host, Port: port, Advertise: cl.Advertise,
			TLSConfig: c.TLS.Server, TLSTimeout: 5,
		}
		for _, r := range cl.Routes {
			u, _ := url.Parse(r)
			opts.Routes = append(opts.Routes, u)
		}
		// A node that is down is retried every second for ever; say so
		// once a minute, not at every try of every pooled connection.
		opts.ReconnectErrorReports = routeErrorReports
	}
	if c.Listen != "" {
		host, port, _ := splitHostPort(c.Listen)
		opts.Host = host
		opts.Port = port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	} else {
		opts.Port = server.RANDOM_PORT // unused: DontListen
	}
	return opts
}

// Start launches the server and connects to it in-process.
func Start(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "bus")
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	opts := cfg.serverOptions()
	// JetStream that cannot write its store never becomes ready, and says
	// why only in its log: find out first.
	if err := writable(cfg.DataDir, filepath.Join(cfg.DataDir, "jetstream")); err != nil {
		return nil, fmt.Errorf("bus: store: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: new server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(slogAdapter{l: logger, fatal: fatal}, false, false, false)
	go ns.Start()
	if err := waitReady(ns, timeout, fatal); err != nil {
		ns.Shutdown()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		ns.Shutdown()
		return nil, err
	}
	connOpts := []nats.Option{nats.InProcessServer(ns), nats.Name("shoal-control-plane"), nats.MaxReconnects(-1)}
	if cfg.Secret != nil {
		creds, err := cfg.Secret.CredentialsFor(ControlPlane)
		if err != nil {
			ns.Shutdown()
			return nil, err
		}
		more, err := creds.Options()
		if err != nil {
			ns.Shutdown()
			return nil, err
		}
		connOpts = append(connOpts, more...)
	}
	nc, err := nats.Connect("", connOpts...)
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("bus: connect in-process: %w", err)
	}
	js, err := NewJetStream(nc)
	if err != nil {
		nc.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	logger.Info("bus started", "data_dir", cfg.DataDir, "client_url", clientURL(ns, cfg.Listen))
	return &Bus{ns: ns, nc: nc, js: js, log: logger}, nil
}

func clientURL(ns *server.Server, listen string) string {
	if listen == "" {
		return ""
	}
	return ns.ClientURL()
}

// WaitJetStream waits until JetStream answers (in a cluster: until it has
// its quorum), telling progress of each failed try, for up to limit.
func (b *Bus) WaitJetStream(ctx context.Context, limit time.Duration, progress func(error)) error {
	deadline := time.Now().Add(limit)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bus: JetStream not ready after %v: %w", limit, err)
		}
		if progress != nil {
			progress(err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// OpenKeyValue opens the bucket of cfg, creating it when it does not exist
// yet: a process that opens an existing bucket never changes it (a host does
// not know how many copies the cluster keeps).
func OpenKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	return kv, err
}

// ServerName is this node's NATS server name ("" on an external NATS,
// where no server is this node's).
func (b *Bus) ServerName() string {
	if b.ns == nil {
		return ""
	}
	return b.ns.Name()
}

// Peer is one node of the cluster as JetStream's meta group sees it.
type Peer struct {
	Name    string        `json:"name"`
	Current bool          `json:"current"`
	Offline bool          `json:"offline,omitempty"`
	Active  time.Duration `json:"active"`
	Lag     uint64        `json:"lag,omitempty"`
}

// Meta is JetStream's view of the cluster: its name, the meta group's
// leader and its peers (this node among them).
type Meta struct {
	Cluster string `json:"cluster"`
	Leader  string `json:"leader"`
	Size    int    `json:"size"`
	Peers   []Peer `json:"peers"`
}

// Meta reports the cluster's state as this node's server knows it.
func (b *Bus) Meta() Meta {
	m := Meta{Peers: []Peer{}}
	if b.ns == nil {
		// Someone else's cluster: its meta group is for its system account
		// to see; the connection knows the cluster's name and servers.
		m.Cluster = b.nc.ConnectedClusterName()
		for _, u := range b.nc.Servers() {
			m.Peers = append(m.Peers, Peer{Name: u, Current: u == b.nc.ConnectedUrlRedacted()})
		}
		m.Size = len(m.Peers)
		return m
	}
	info, err := b.ns.Jsz(nil)
	if err != nil || info.Meta == nil {
		return m
	}
	m.Cluster, m.Leader, m.Size = info.Meta.Name, info.Meta.Leader, info.Meta.Size
	// The replicas are the other peers, as this node sees them.
	m.Peers = append(m.Peers, Peer{Name: b.ns.Name(), Current: true})
	for _, p := range info.Meta.Replicas {
		if p.Name != b.ns.Name() {
			m.Peers = append(m.Peers, Peer{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active, Lag: p.Lag})
		}
	}
	return m
}

// Conn is the in-process client connection. It stays open until Close.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context on the in-process connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// ClientURL is the address remote processes pass to Connect, or "" when the bus has
// no TCP listener.
func (b *Bus) ClientURL() string {
	if b.ext != nil {
		return b.ext.URL()
	}
	if b.ns.Addr() == nil {
		return ""
	}
	return b.ns.ClientURL()
}

// Close drains the in-process connection and shuts the server down, waiting for
// JetStream to flush its files.
func (b *Bus) Close() {
	closed := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := b.nc.Drain(); err == nil {
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			b.nc.Close()
		}
	} else {
		b.nc.Close()
	}
	if b.ns == nil {
		b.log.Info("disconnected from the external NATS")
		return
	}
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
	b.log.Info("bus stopped")
}

// Connect opens a connection to a bus in another process (its ClientURL).
func Connect(url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	js, err := NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return nc, js, nil
}

// Loopback reports whether a host:port address stays on this machine: a
// loopback IP or "localhost".
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	return host, port, nil
}

// waitReady waits until the server accepts connections, up to timeout; a
// fatal error it reports first (it then never gets ready) ends the wait
// with that error.
func waitReady(ns *server.Server, timeout time.Duration, fatal <-chan string) error {
	deadline := time.Now().Add(timeout)
	for {
		if ns.ReadyForConnections(25 * time.Millisecond) {
			return nil
		}
		select {
		case msg := <-fatal:
			return fmt.Errorf("bus: %s", msg)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("bus: server not ready in time")
		}
	}
}

// writable checks that each of dirs that exists, or the first one (created
// if need be), takes a new file.
func writable(dirs ...string) error {
	for i, dir := range dirs {
		if i == 0 {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
		} else if _, err := os.Stat(dir); err != nil {
			continue
		}
		f, err := os.CreateTemp(dir, ".writable-*")
		if err != nil {
			return err
		}
		f.Close()
		if err := os.Remove(f.Name()); err != nil {
			return err
		}
	}
	return nil
}

// slogAdapter routes the server's log lines to slog, and its first fatal
// error to fatal (nil: nowhere).
type slogAdapter struct {
	l     *slog.Logger
	fatal chan<- string
}

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.l.Error(msg)
	select {
	case a.fatal <- msg:
	default:
	}
}
func (a slogAdapter) Errorf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
