package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/pki"
)

// AgentID is the id of the classic agent of host: its identity on the bus
// and on the invoke wire is bus.AgentIdentity of it.
func AgentID(host string) string { return "classic-" + host }

// ServeConfig configures a host's classic agent.
type ServeConfig struct {
	// Host and Zone are the host's.
	Host, Zone string
	// Advertise is the address the cluster's fronts reach this machine at.
	Advertise string
	// WorkDir holds the agent's code, environments and credentials.
	WorkDir string
	// Heartbeat is the agent's heartbeat interval.
	Heartbeat time.Duration
	// Isolate runs environments in namespaces (root only).
	Isolate bool
	// NoMeter leaves invocations unmetered.
	NoMeter bool
	// StopTimeout bounds how long stopping the agent waits for in-flight
	// invocations (default 30 s).
	StopTimeout time.Duration
}

// ServeDeps are what a host's classic agent uses of its host's process.
type ServeDeps struct {
	// NATS is the host's connection: the agent shares it.
	NATS *nats.Conn
	// Secret and CA give the agent its wire key and certificate.
	Secret bus.Secret
	CA     *pki.Authority
	// Usage records the invocations (the host's journal); nil with NoMeter.
	Usage  agent.UsageRecorder
	Logger *slog.Logger
	Clock  clock.Clock
}

// Serve starts the classic agent of a host in this process, and makes the
// host's heartbeats name it and count what its environments take (and
// those of local, this process's own, when it is a node's). Close the agent
// to stop it: its environments stop, in-flight invocations first.
func Serve(ctx context.Context, cfg ServeConfig, deps ServeDeps, host *fleet.Host, local func() fleet.ClassicUse) (*agent.Agent, error) {
	if cfg.Host == "" || cfg.Advertise == "" || !filepath.IsAbs(cfg.WorkDir) || deps.NATS == nil || deps.CA == nil || deps.Secret == nil {
		return nil, errors.New("remote: a classic agent needs its host's name, address, work directory, connection and keys")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	id := AgentID(cfg.Host)
	// The same keys as an instance's agent: a certificate of the cluster's
	// authority for the address fronts dial, and the wire key of its identity.
	dir := filepath.Join(cfg.WorkDir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	cert, err := deps.CA.Issue(bus.AgentIdentity(id), []string{cfg.Advertise})
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if err := deps.CA.WriteFiles(dir, cert); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	creds, err := deps.Secret.CredentialsFor(bus.AgentIdentity(id))
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	credsFile := filepath.Join(dir, "bus.creds")
	if err := creds.WriteFile(credsFile); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	work := filepath.Join(cfg.WorkDir, "work")
	// The environments of an earlier run of this process are gone with it.
	if err := os.RemoveAll(filepath.Join(work, "envs")); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	a, err := agent.Start(ctx, agent.Config{
		ID: id, Classic: true, Host: cfg.Host, Zone: cfg.Zone,
		Listen: net.JoinHostPort(cfg.Advertise, "0"), TLS: pki.InDir(dir), NATSCreds: credsFile,
		WorkDir: work, Heartbeat: cfg.Heartbeat, Isolate: cfg.Isolate, NoMeter: cfg.NoMeter,
		StopTimeout: cfg.StopTimeout,
	}, agent.Deps{Logger: deps.Logger, Clock: deps.Clock, NATS: deps.NATS, Usage: deps.Usage})
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if host != nil {
		host.SetClassic(id, func() fleet.ClassicUse {
			vcpu, mem, n := a.Allocated()
			u := fleet.ClassicUse{VCPU: vcpu, MemoryMB: mem, Environments: n}
			if local != nil {
				l := local()
				u.VCPU, u.MemoryMB, u.Environments = u.VCPU+l.VCPU, u.MemoryMB+l.MemoryMB, u.Environments+l.Environments
			}
			return u
		})
	}
	return a, nil
}
