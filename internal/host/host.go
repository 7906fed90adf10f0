// Package host runs `shoal host`: a machine that only offers capacity to a
// shoal cluster. It joins the cluster's NATS (over TLS, as host.<name>, with
// the cluster's secret), heartbeats its zone and capacity, and runs the
// Managed Instances instances the cluster's leader places on it, as
// `shoal agent` processes in cgroups of their types' sizes, and the
// on-demand and Provisioned Concurrency environments the nodes place on it,
// in a classic agent of its own process (internal/remote); the agents serve
// invocations to every node of the cluster over TLS.
//
// It owns nothing of the cluster's state: instance records live in the
// cluster's JetStream, code comes from its object store, usage goes to its
// ledger.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/pki"
	"github.com/shoal-dev/shoal/internal/remote"
)

// Config configures a host.
type Config struct {
	// Join lists the cluster's NATS URLs (nats://node:4222,...).
	Join []string
	// SecretFile holds the cluster's secret, copied from its first node.
	SecretFile string
	// NATSCreds and NATSCA, when the cluster runs on a NATS someone else
	// runs (shoal up --nats): that NATS's user credentials file and the PEM
	// authorities of its certificates. Join then lists its URLs.
	NATSCreds, NATSCA string
	// ExternalNATS says Join is such a NATS (implied by NATSCreds or NATSCA).
	ExternalNATS bool
	// Name is the host's name in the cluster (letters, digits, '-').
	Name string
	// Zone is its availability zone.
	Zone string
	// Advertise is the address the cluster's nodes reach this machine at.
	Advertise string
	// VCPU and MemoryMB are what it offers (0: all of the machine).
	VCPU, MemoryMB int
	// DataDir holds the instances' directories and the usage journal.
	DataDir string
	// Binary is the shoal binary agents run as (default this executable).
	Binary string
	// Isolate confines instances to cgroups and environments to namespaces.
	Isolate bool
	// Heartbeat is the interval of the host's and its agents' heartbeats.
	Heartbeat time.Duration
	// EgressDeny lists addresses and ranges (198.18.0.0/24) that the
	// environments of this host's instances never reach; the machines of
	// Join and Advertise are added.
	EgressDeny []string
	// DrainTimeout bounds how long a stopping host waits for its instances'
	// in-flight invocations (default 15 minutes, Lambda's longest timeout).
	DrainTimeout time.Duration
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 15 * time.Minute
	}
	switch {
	case len(c.Join) == 0:
		return errors.New("host: the cluster's NATS URLs are required (--join)")
	case c.SecretFile == "":
		return errors.New("host: the cluster's secret is required (--cluster-secret)")
	case c.Name == "" || strings.ContainsAny(c.Name, ". *>"):
		return fmt.Errorf("host: name %q: letters, digits and '-'", c.Name)
	case c.Zone == "":
		return errors.New("host: a zone is required (--zone)")
	case c.Advertise == "":
		return errors.New("host: the address the nodes reach this machine at is required (--advertise)")
	case c.DataDir == "":
		return errors.New("host: a data directory is required")
	}
	return nil
}

// Run serves until ctx ends, then drains and stops the host's instances.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func()) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b, err := os.ReadFile(cfg.SecretFile)
	if err != nil || len(b) == 0 {
		return fmt.Errorf("host: the cluster's secret: %v", err)
	}
	secret, err := bus.LoadOrCreateSecret(cfg.SecretFile)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	ca, err := pki.New(secret)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	identity := "host." + cfg.Name
	cert, err := ca.Issue(identity, []string{cfg.Advertise})
	if err != nil {
		return err
	}
	creds, err := secret.CredentialsFor(identity)
	if err != nil {
		return err
	}
	opts, err := creds.Options()
	if err != nil {
		return err
	}
	var ext *bus.External
	if cfg.ExternalNATS || cfg.NATSCreds != "" || cfg.NATSCA != "" {
		// Someone else's NATS: its credentials, not the secret's nkey, and
		// its certificates, not the cluster's authority. The secret still
		// keys the invoke wire and its TLS.
		ext = &bus.External{URLs: cfg.Join, CredsFile: cfg.NATSCreds, CAFile: cfg.NATSCA}
		opts = append([]nats.Option{nats.Name(identity)}, ext.Options()...)
	} else {
		opts = append(opts, nats.Secure(ca.ClientConfig(cert)))
	}
	opts = append(opts, nats.Timeout(5*time.Second))
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	var deny *envnet.ClusterDeny
	if cfg.Isolate {
		if deny, err = denyEgress(cfg, logger); err != nil {
			return fmt.Errorf("host: %w", err)
		}
	}
	nc, js, err := bus.Connect(strings.Join(cfg.Join, ","), opts...)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	defer nc.Close()
	rec, err := ledger.NewRecorder(ledger.Config{Dir: filepath.Join(dataDir, "meter"), Source: cfg.Name}, js, logger)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = rec.Close(cctx)
		cancel()
	}()
	vcpu, mem := cfg.VCPU, cfg.MemoryMB
	if v, m := fleet.MachineCapacity(); vcpu == 0 {
		vcpu = v
		if mem == 0 {
			mem = m
		}
	} else if mem == 0 {
		mem = m
	}
	localCfg := fleet.LocalConfig{
		NATSURL: strings.Join(cfg.Join, ","), Binary: cfg.Binary, WorkDir: filepath.Join(dataDir, "fleet"),
		Zones: []string{cfg.Zone}, Heartbeat: cfg.Heartbeat, NoConfine: !cfg.Isolate,
		Secret: secret, Host: cfg.Name, TLS: ca, Advertise: cfg.Advertise, External: ext,
	}
	// The cluster may be settling (a node just restarted): try for a while.
	var local *fleet.Local
	for deadline := time.Now().Add(5 * time.Minute); ; {
		local, err = fleet.NewLocal(localCfg, fleet.LocalDeps{Logger: logger, NATS: nc, Usage: rec})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("host: %w", err)
		}
		logger.Warn("opening the cluster's instance records; trying again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if deny != nil {
		sub, err := fleet.FollowHostAddrs(nc, func(addr string) {
			if err := deny.Add(addr); err != nil {
				logger.Warn("environments may reach a host of the cluster", "addr", addr, "err", err)
			}
		})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	h, err := fleet.NewHost(fleet.HostConfig{Name: cfg.Name, Zone: cfg.Zone, VCPU: vcpu, MemoryMB: mem, Heartbeat: cfg.Heartbeat,
		Advertise: cfg.Advertise},
		local, nc, logger, nil)
	if err != nil {
		_ = local.Close()
		return fmt.Errorf("host: %w", err)
	}
	// The on-demand and provisioned environments the cluster's fronts place
	// on this machine run in an agent of this process.
	classic, err := remote.Serve(ctx, remote.ServeConfig{Host: cfg.Name, Zone: cfg.Zone, Advertise: cfg.Advertise,
		WorkDir: filepath.Join(dataDir, "classic"), Heartbeat: cfg.Heartbeat, Isolate: cfg.Isolate},
		remote.ServeDeps{NATS: nc, Secret: secret, CA: ca, Usage: rec, Logger: logger}, h, nil)
	if err != nil {
		_ = h.Close()
		_ = local.Close()
		return fmt.Errorf("host: %w", err)
	}
	logger.Info("host joined", "name", cfg.Name, "zone", cfg.Zone, "vcpu", vcpu, "memory_mb", mem)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	// Drain: take no more instances, let the in-flight invocations of the
	// ones here finish, stop them; heartbeats go on meanwhile, so that the
	// cluster never takes them for lost. Then say goodbye. The classic
	// agent stops its environments meanwhile, in-flight invocations first;
	// its last heartbeat tells the fronts they are gone.
	classicDone := make(chan struct{})
	go func() {
		defer close(classicDone)
		_ = classic.Close()
	}()
	stop, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := h.Drain(stop); err != nil {
		logger.Warn("host not drained", "err", err)
	}
	<-classicDone
	_ = h.Close()
	return local.Close()
}

// denyEgress keeps the environments of this host's instances off the
// cluster's machines that the host knows (Join, its own address) and off
// --egress-deny: with egress they reach the network, and the nodes serve
// the bus, the API and the metrics there. Other hosts are added as they are
// heard of. nil where nftables is not there.
func denyEgress(cfg Config, logger *slog.Logger) (*envnet.ClusterDeny, error) {
	deny, err := envnet.NewClusterDeny(cfg.EgressDeny, append([]string{cfg.Advertise}, cfg.Join...), logger)
	if errors.Is(err, envnet.ErrUnsupported) {
		return nil, nil
	}
	return deny, err
}
