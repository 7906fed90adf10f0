// Package fleet provides the instances of Managed Instances capacity
// providers behind one interface, Provider. An instance is a machine's worth
// of capacity of an instance type, in a zone, running `shoal agent`
// (internal/agent) for exactly one capacity provider.
//
// The local provider (Local) runs each instance as a `shoal agent` child
// process confined to a cgroup the size of its type, so a laptop has a real
// fleet: instances boot, heartbeat, get lost and drain. Instance records live
// in a JetStream KV bucket, so a restarted control plane finds the instances
// it had. Pool keeps one multiplexed invoke connection (internal/wire) per
// instance for the router.
//
// The package launches, watches and stops instances; deciding how many and
// where (the scaler) and which environment takes an invocation (the router)
// are not its business.
package fleet

import (
	"context"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/randid"
)

// Provider launches and stops instances and reports their state.
type Provider interface {
	// Launch asks for an instance. It returns once the instance is recorded
	// (state pending); it becomes running with its first heartbeat. Set
	// spec.ID (NewInstanceID) to know the instance's id beforehand.
	Launch(ctx context.Context, spec InstanceSpec) error
	// Terminate drains the instance (no new work, in-flight invocations
	// finish), then stops it. It returns once the instance is terminated.
	Terminate(ctx context.Context, id string) error
	// Instances lists the instances that are not terminated.
	Instances() []Instance
	// Watch delivers an Event for every change of an instance's state or of
	// its environments, until ctx ends.
	Watch(ctx context.Context) <-chan Event
	// Terminated lists the instances terminated at or after since, from the
	// fleet's history.
	Terminated(ctx context.Context, since time.Time) ([]Instance, error)
}

// Instance states.
const (
	StatePending    = "pending"    // launched, no heartbeat yet
	StateRunning    = "running"    // heartbeating, takes environments
	StateDraining   = "draining"   // takes no new work; stopped once empty
	StateLost       = "lost"       // stopped heartbeating or its process died
	StateTerminated = "terminated" // stopped and forgotten
)

// InstanceSpec asks for one instance.
type InstanceSpec struct {
	// ID names the instance; empty picks one ("i-" and 17 hex digits).
	ID               string
	CapacityProvider string
	Type             string
	// Zone is one of the provider's zones; empty picks the one with the
	// fewest instances of the capacity provider.
	Zone string
}

// EnvStatus is one execution environment on an instance, as its agent reports it.
type EnvStatus = agent.EnvStatus

// Instance is the state of one instance.
type Instance struct {
	ID               string `json:"id"`
	CapacityProvider string `json:"capacity_provider"`
	Type             string `json:"type"`
	Zone             string `json:"zone"`
	// Host is the machine that runs the instance ("" for shoal up's own,
	// alone; a host's name in a cluster).
	Host  string `json:"host,omitempty"`
	State string `json:"state"`
	// StateReason says why an instance is lost or draining.
	StateReason string `json:"state_reason,omitempty"`
	VCPU        int    `json:"vcpu"`
	MemoryMB    int    `json:"memory_mb"`
	// InvokeNetwork and InvokeAddr are where the agent serves internal/wire.
	InvokeNetwork     string      `json:"invoke_network,omitempty"`
	InvokeAddr        string      `json:"invoke_addr,omitempty"`
	CPUUtilization    float64     `json:"cpu_utilization"`
	MemoryUtilization float64     `json:"memory_utilization"`
	Environments      []EnvStatus `json:"environments,omitempty"`
	LastHeartbeat     time.Time   `json:"last_heartbeat"`
	// LaunchedAt, StartedAt and TerminatedAt are the instance's life as the
	// fleet records it, each the very time at which its usage segments
	// (internal/meter) change: launched (pending), left pending (its first
	// heartbeat, or its loss before one: EC2 bills from then), and
	// terminated. StartedAt is zero for an instance that never left pending,
	// TerminatedAt while the instance lives.
	LaunchedAt   time.Time `json:"launched_at"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	TerminatedAt time.Time `json:"terminated_at,omitzero"`
	// MeteredUntil is where the instance's time in the usage ledger ends
	// while it lives: the start of its open segment, at most
	// LocalConfig.UsageCheckpoint ago. Zero without a ledger.
	MeteredUntil time.Time `json:"metered_until,omitzero"`
	// MetricsAddr is the host:port of the agent's Prometheus endpoint.
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// NetworkRxBytes and NetworkTxBytes count the bytes of the agent's invoke
	// connections; OpenFDs the descriptors open in the agent and its
	// environments (agent.Heartbeat).
	NetworkRxBytes uint64 `json:"network_rx_bytes"`
	NetworkTxBytes uint64 `json:"network_tx_bytes"`
	OpenFDs        int    `json:"open_fds"`
	// DrainedInvocations and CutInvocations count the invocations in flight
	// in an environment of the instance when its drain began: those that
	// finished, and those still running when the drain's time was up
	// (agent.Heartbeat). A terminated instance keeps its last counts.
	DrainedInvocations uint64 `json:"drained_invocations"`
	CutInvocations     uint64 `json:"cut_invocations"`
	// Runtimes and Bootstrap are the runtime builds the instance's agent
	// would start environments on, by runtime family, and the hash of its
	// binary's bootstraps (agent.Heartbeat).
	Runtimes  map[string]string `json:"runtimes,omitempty"`
	Bootstrap string            `json:"bootstrap,omitempty"`
}

// InstanceView is an instance as GET /shoal/v1/fleet shows it: with when it
// reaches its capacity provider's maximum lifetime and is replaced (zero
// before it is launched).
type InstanceView struct {
	Instance
	RotationDue time.Time `json:"rotation_due,omitzero"`
}

// Event is a change of one instance.
type Event struct {
	Instance Instance
	// Previous is the state before the change ("" for a new instance).
	Previous string
}

// NewInstanceID returns a fresh instance id: "i-" and 17 hex digits, as EC2's.
func NewInstanceID() string { return "i-" + randid.Hex(9)[:17] }

func (in Instance) clone() Instance {
	in.Environments = append([]EnvStatus(nil), in.Environments...)
	return in
}
