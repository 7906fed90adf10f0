package agent

import (
	"encoding/json"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// NATS subjects of an agent. Heartbeats are published; commands are
// request/reply. All bodies are JSON.
const (
	// HeartbeatPrefix + id carries the agent's Heartbeat every interval, at
	// once after a change of state, and a last one (state "terminated") when
	// the agent exits.
	HeartbeatPrefix = "shoal.fleet.hb."
	// HeartbeatWildcard subscribes to every agent's heartbeats.
	HeartbeatWildcard = HeartbeatPrefix + "*"
)

// HeartbeatSubject is where agent id publishes its heartbeats.
func HeartbeatSubject(id string) string { return HeartbeatPrefix + id }

// ReadHeartbeat decodes a heartbeat heard on subject. It is false when the
// body does not decode or names another agent than the subject does: the bus
// lets an agent publish on its own heartbeat subject alone, so the subject,
// not the body, says who sent it.
func ReadHeartbeat(subject string, data []byte) (Heartbeat, bool) {
	var hb Heartbeat
	if json.Unmarshal(data, &hb) != nil || hb.ID == "" || subject != HeartbeatSubject(hb.ID) {
		return Heartbeat{}, false
	}
	return hb, true
}

// CommandSubject is where agent id answers Commands.
func CommandSubject(id string) string { return "shoal.agent." + id + ".cmd" }

// Instance states in heartbeats.
const (
	StateRunning    = "running"
	StateDraining   = "draining"
	StateTerminated = "terminated"
)

// Environment states in heartbeats and replies.
const (
	EnvInitializing = "initializing"
	EnvReady        = "ready"
	EnvDraining     = "draining"
	// EnvFailed: the environment ended on its own (its runtime crashed) or its
	// init failed. It stays in heartbeats until stopped, so the control plane
	// sees it and places a replacement.
	EnvFailed = "failed"
)

// Heartbeat is what an agent announces about itself.
type Heartbeat struct {
	ID               string `json:"id"`
	CapacityProvider string `json:"capacity_provider"`
	Type             string `json:"type"`
	Zone             string `json:"zone"`
	VCPU             int    `json:"vcpu"`
	MemoryMB         int    `json:"memory_mb"`
	// InvokeNetwork ("unix" or "tcp") and InvokeAddr are where the agent
	// serves the invoke protocol (internal/wire).
	InvokeNetwork string `json:"invoke_network"`
	InvokeAddr    string `json:"invoke_addr"`
	State         string `json:"state"` // running, draining, terminated
	// CPUUtilization is the share (0..1) of the instance's vCPUs used over the
	// last interval; MemoryUsedMB and MemoryAvailableMB are the instance's.
	CPUUtilization    float64     `json:"cpu_utilization"`
	MemoryUsedMB      int         `json:"memory_used_mb"`
	MemoryAvailableMB int         `json:"memory_available_mb"`
	Environments      []EnvStatus `json:"environments"`
	Pid               int         `json:"pid"`
	Seq               uint64      `json:"seq"` // increases with every heartbeat of one agent process
	StartedAt         time.Time   `json:"started_at"`
	Time              time.Time   `json:"time"`
	// MetricsAddr is the host:port of the agent's Prometheus endpoint
	// (GET /metrics), "" when it has none.
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// NetworkRxBytes and NetworkTxBytes count the bytes the agent received
	// and sent on its invoke connections since it started.
	NetworkRxBytes uint64 `json:"network_rx_bytes"`
	NetworkTxBytes uint64 `json:"network_tx_bytes"`
	// OpenFDs counts the file descriptors open in the agent and the
	// processes of its environments.
	OpenFDs int `json:"open_fds"`
	// Classic marks a host's agent of on-demand and Provisioned Concurrency
	// environments (Config.Classic); Host names its machine.
	Classic bool   `json:"classic,omitempty"`
	Host    string `json:"host,omitempty"`
	// DrainedInvocations counts the invocations that were in flight in an
	// environment when its drain began and finished; CutInvocations those
	// still running when the drain's time (the function's timeout) was up.
	// Both only grow.
	DrainedInvocations uint64 `json:"drained_invocations"`
	CutInvocations     uint64 `json:"cut_invocations"`
	// Runtimes gives, by runtime family (provided, node, python), the build an
	// environment started now would run (runtimes.Prober); Bootstrap
	// identifies the bootstraps of the agent's binary (runtimes.BootstrapHash).
	Runtimes  map[string]string `json:"runtimes,omitempty"`
	Bootstrap string            `json:"bootstrap,omitempty"`
}

// EnvStatus is one environment of an agent.
type EnvStatus struct {
	ID       string `json:"id"`
	Function string `json:"function"`
	Version  string `json:"version"`
	// Revision is the StartEnv's Revision.
	Revision string `json:"revision,omitempty"`
	Slots    int    `json:"slots"`
	InFlight int    `json:"in_flight"`
	State    string `json:"state"` // initializing, ready, draining, failed
	// InitType is the environment's AWS_LAMBDA_INITIALIZATION_TYPE on a
	// classic agent: on-demand or provisioned-concurrency.
	InitType string `json:"init_type,omitempty"`
	// Error says why a failed environment failed.
	Error string `json:"error,omitempty"`
	// PeakInFlight is the most invocations in flight at once since the
	// previous heartbeat (the scaler's saturation signal; InFlight is a
	// moment's). Invocations counts the invocations the environment ran and
	// Refused the refusals of invocations addressed to it, by reason, since it
	// started; both only grow.
	PeakInFlight int `json:"peak_in_flight"`
	// CPUUtilization is the share (0..1) of the environment's vCPUs it used
	// over the last heartbeat interval.
	CPUUtilization float64           `json:"cpu_utilization"`
	Invocations    uint64            `json:"invocations"`
	Refused        map[string]uint64 `json:"refused,omitempty"`
	// VCPU and MemoryMB are what the environment is allocated (0 until its
	// init is over); MemoryUtilization is the share (0..1) of MemoryMB its
	// processes used at the last heartbeat tick.
	VCPU              float64 `json:"vcpu,omitempty"`
	MemoryMB          int     `json:"memory_mb,omitempty"`
	MemoryUtilization float64 `json:"memory_utilization"`
	// Build is the runtime build the environment runs (the Heartbeat's
	// Runtimes when it started), "" when it could not be told.
	Build string `json:"build,omitempty"`
}

// Command operations.
const (
	OpStart    = "start"    // start an environment (Start)
	OpStop     = "stop"     // drain and stop one environment (EnvID)
	OpDrain    = "drain"    // drain the whole instance
	OpStatus   = "status"   // answer the current heartbeat
	OpShutdown = "shutdown" // drain, then exit the agent process
	OpKeep     = "keep"     // a classic agent's owner keeps its environments (Keep)
)

// Command is a request to an agent on CommandSubject.
type Command struct {
	Op    string    `json:"op"`
	EnvID string    `json:"env_id,omitempty"`
	Start *StartEnv `json:"start,omitempty"`
	// Keep lists the environments an OpKeep keeps.
	Keep []string `json:"keep,omitempty"`
}

// StartEnv asks for one environment.
type StartEnv struct {
	// EnvID names the environment; the router passes it with each invocation.
	// Starting an id that exists answers that environment's outcome (the
	// command is idempotent).
	EnvID string `json:"env_id"`
	// CapacityProvider must be the agent's: an instance never hosts functions
	// of two capacity providers.
	CapacityProvider string `json:"capacity_provider"`
	// CodeSha256 names the code package in the JetStream object store; the
	// agent fetches and unpacks it once per sha and sets Spec.CodeDir.
	CodeSha256 string `json:"code_sha256"`
	// Revision is the RevisionId of the version the environment runs:
	// republishing $LATEST.PUBLISHED changes it, and environments of an older
	// revision are then neither routed to nor counted for the version. On a
	// classic agent it names the configuration the environment runs (the
	// router's target key).
	Revision string `json:"revision,omitempty"`
	// Spec is the environment; its MaxConcurrency is the number of slots.
	// InitType is forced to "lambda-managed-instances" and an unset
	// InitTimeout becomes max(130 s, Spec.Timeout). A classic agent keeps
	// InitType (on-demand or provisioned-concurrency) and InitTimeout, and
	// gives one slot.
	Spec env.Spec `json:"spec"`
}

// Reply answers a Command.
type Reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Init is set when a start failed because the function's init failed.
	Init *InitFailure `json:"init,omitempty"`
	// Env is the environment a start or stop concerned.
	Env *EnvStatus `json:"env,omitempty"`
	// Heartbeat answers OpStatus and OpDrain.
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
	// Gone answers OpKeep: the environments it named that the agent no
	// longer serves (unknown, failed or draining).
	Gone []string `json:"gone,omitempty"`
}

// InitFailure is an environment's failed init, as agent.InitError reports it.
type InitFailure struct {
	ErrorType    string        `json:"error_type"`
	Message      string        `json:"message"`
	Payload      []byte        `json:"payload"`
	Log          []byte        `json:"log,omitempty"`
	InitDuration time.Duration `json:"init_duration"`
	// Platform says the platform made the error (an exit, a timeout): the
	// answer to an invocation then names its request id.
	Platform bool `json:"platform,omitempty"`
}

// MinInitTimeout is the least init time a Managed Instances environment gets.
const MinInitTimeout = 130 * time.Second

// InitTimeout is Managed Instances' init limit for a function timeout:
// max(130 s, timeout).
func InitTimeout(functionTimeout time.Duration) time.Duration {
	return max(MinInitTimeout, functionTimeout)
}
