package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pki"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// Config configures one agent (one instance).
type Config struct {
	// NATSURL is the control plane's bus. Required unless Deps.NATS is set.
	NATSURL string
	// NATSCreds is the file of the agent's bus credentials (bus.Credentials,
	// identity agent.<ID>), which the control plane writes for each agent it
	// launches; "" connects without (a bus that asks for none).
	NATSCreds string
	// External, when set, is a NATS cluster someone else runs (shoal up
	// --nats): the agent connects to it with External's user credentials and
	// authorities instead of NATSCreds' nkey and TLS's authority, which then
	// serve only the invoke wire.
	External *bus.External
	// TLS names the agent's certificate, key and cluster authority
	// (pki.WriteFiles): with them it reaches the bus over TLS and serves the
	// invoke wire over TLS, and may listen on an address other machines
	// reach. Empty: plain, on this machine only.
	TLS pki.Files
	// ID names the instance; letters, digits, '-', '_' (it is a NATS subject token).
	ID string
	// CapacityProvider owns the instance; environments of other capacity
	// providers are refused.
	CapacityProvider string
	// Type is an instance type of the price catalogue (e.g. m7i.large): it
	// gives the vCPUs and memory the agent announces and measures against.
	Type string
	Zone string
	// Socket is the Unix socket the invoke protocol is served on. Listen (a
	// TCP host:port) may be given instead, for agents on other hosts.
	Socket string
	Listen string
	// WorkDir holds unpacked code and environment directories. Required.
	WorkDir string
	// Heartbeat is the heartbeat interval (default 1 s).
	Heartbeat time.Duration
	// CPUThreshold (0..1, default 0.9) is the instance CPU utilisation above
	// which new invocations are refused with reason "cpu"; above 1 disables it.
	CPUThreshold float64
	// MemoryThreshold (0..1, default 0.95) is the share of the instance's
	// memory in use above which invocations are refused with "memory".
	MemoryThreshold float64
	// CodeBucket is the JetStream object store of code packages (default "shoal_code").
	CodeBucket string
	// Isolate runs environments in namespaces under an unprivileged user (root only).
	Isolate bool
	// StopTimeout bounds how long a drain waits for in-flight invocations
	// (default 15 min, Lambda's longest function timeout).
	StopTimeout time.Duration
	// NoMeter turns the usage ledger off: invocations are not journaled or
	// published (for measuring what metering costs).
	NoMeter bool
	// Classic makes the agent a host's server of on-demand and Provisioned
	// Concurrency environments for every front of a cluster (classic.go)
	// instead of an instance of a capacity provider: its environments run
	// one invocation at a time, of any function; CapacityProvider and Type
	// are empty; Host names its machine.
	Classic bool
	Host    string
	// KeepTimeout stops a classic environment its owner has not kept
	// (OpKeep) for this long: the front that started it is gone (default 30 s).
	KeepTimeout time.Duration
	// Procs is the GOMAXPROCS Run gives the agent process. 0 means one per
	// 8 vCPUs of the instance type, at least 1 (forwarding invocations needs
	// little CPU, and every extra P costs idle spinning and thread wake-ups
	// on the invoke path); a GOMAXPROCS environment variable wins over the
	// default. Start, for agents embedded in another process, leaves it alone.
	Procs int
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) setDefaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.CPUThreshold == 0 {
		c.CPUThreshold = 0.9
	}
	if c.MemoryThreshold == 0 {
		c.MemoryThreshold = 0.95
	}
	if c.CodeBucket == "" {
		c.CodeBucket = "shoal_code"
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 15 * time.Minute
	}
	if c.KeepTimeout == 0 {
		c.KeepTimeout = 30 * time.Second
	}
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	c.setDefaults()
	switch {
	case !idPattern.MatchString(c.ID):
		return fmt.Errorf("agent: id %q must be 1-64 letters, digits, '-' or '_'", c.ID)
	case c.CapacityProvider == "" && !c.Classic:
		return errors.New("agent: capacity provider is required")
	case c.Classic && (c.CapacityProvider != "" || c.Type != ""):
		return errors.New("agent: a classic agent belongs to no capacity provider and has no instance type")
	case c.Zone == "":
		return errors.New("agent: zone is required")
	case (c.Socket == "") == (c.Listen == ""):
		return errors.New("agent: exactly one of socket and listen is required")
	case c.WorkDir == "" || !filepath.IsAbs(c.WorkDir):
		return fmt.Errorf("agent: work dir %q must be an absolute path", c.WorkDir)
	case c.Procs < 0:
		return fmt.Errorf("agent: procs %d is negative", c.Procs)
	case c.Heartbeat < 0 || c.StopTimeout < 0 || c.KeepTimeout < 0:
		return errors.New("agent: negative duration")
	case c.CPUThreshold < 0 || c.MemoryThreshold < 0:
		return errors.New("agent: negative threshold")
	case c.Listen != "" && !bus.Loopback(c.Listen) && c.TLS.Cert == "":
		// Invocations carry payloads and answers: across machines they need
		// an encrypted wire, which this agent does not have.
		return fmt.Errorf("agent: listen address %s: invocations leave the machine only encrypted; serve them on --socket or a loopback address", c.Listen)
	}
	if c.Classic {
		return nil
	}
	if _, err := pricing.Default().InstanceType(c.Type); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// Deps are an agent's dependencies.
type Deps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// NATS is an open connection to use instead of dialling Config.NATSURL
	// (the caller keeps ownership).
	NATS *nats.Conn
	// Metrics measures the host; nil measures the agent's own cgroup, or /proc.
	Metrics HostMetrics
	// Logs receives the environments' log lines; nil publishes them to the
	// log stream on the bus (internal/logs).
	Logs env.LogSink
	// Sandboxes creates environment sandboxes; nil is agent's default.
	Sandboxes env.SandboxFactory
	// Usage receives the usage events of invocations; nil journals them in
	// WorkDir/meter and publishes them to the ledger on the bus
	// (internal/ledger), unless Config.NoMeter.
	Usage UsageRecorder
}

// UsageRecorder records usage events; *ledger.Recorder implements it.
type UsageRecorder interface {
	Record(ev *meter.Event)
}
