// Package meter defines what shoal meters: the usage event (an answered
// invocation, a segment of a Managed Instances instance's life, a segment of
// provisioned environments), its kinds, compute types and outcomes, and its
// JSON encoding. It does no I/O: internal/ledger makes events durable, and
// internal/billing prices them.
package meter

import (
	"time"
)

// Kind is what an event measures.
type Kind string

// The kinds of usage events.
const (
	// KindInvocation is one answered invocation.
	KindInvocation Kind = "invocation"
	// KindInstance is a segment of one Managed Instances instance's life in
	// one state: [Start, End) spent pending, running, draining or lost.
	KindInstance Kind = "instance"
	// KindProvisioned is a segment of time during which a version or alias
	// had Concurrency provisioned environments of MemoryMB allocated.
	KindProvisioned Kind = "provisioned"
)

// Compute types, named as the cost engine names them.
const (
	OnDemand         = "on-demand"
	Provisioned      = "provisioned-concurrency"
	ManagedInstances = "managed-instances"
)

// Invocation outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeError   = "error"   // the function returned an error
	OutcomeTimeout = "timeout" // Sandbox.Timedout
	OutcomeCrash   = "crash"   // Runtime.ExitError, Runtime.OutOfMemory
)

// Instance states in instance segments. EC2 bills every state but pending.
const (
	InstancePending  = "pending"
	InstanceRunning  = "running"
	InstanceDraining = "draining"
	InstanceLost     = "lost"
)

// Event is one usage record. Which fields are set depends on Kind.
type Event struct {
	// ID identifies the event; recording the same id twice counts once.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Start and End bound what the event measures: an invocation from its
	// arrival at the environment to its answer, or a segment.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`

	// Function and Version: invocations and provisioned segments.
	Function string `json:"function,omitempty"`
	Version  string `json:"version,omitempty"`
	// Compute is on-demand, provisioned-concurrency or managed-instances.
	Compute      string `json:"compute,omitempty"`
	Architecture string `json:"architecture,omitempty"` // x86_64 or arm64
	MemoryMB     int    `json:"memory_mb,omitempty"`

	// Where a Managed Instances invocation ran, and the instance of a segment.
	CapacityProvider string `json:"capacity_provider,omitempty"`
	Instance         string `json:"instance,omitempty"`
	InstanceType     string `json:"instance_type,omitempty"`
	Zone             string `json:"zone,omitempty"`

	// Invocation measurements. BilledMs is Duration rounded up to the
	// millisecond (at least 1), as Lambda bills it. CPUMs is the CPU time the
	// environment used for it (see env.Result.CPUTime).
	RequestID       string  `json:"request_id,omitempty"`
	DurationMs      float64 `json:"duration_ms,omitempty"`
	BilledMs        int64   `json:"billed_ms,omitempty"`
	InitMs          float64 `json:"init_ms,omitempty"`
	CPUMs           float64 `json:"cpu_ms,omitempty"`
	MaxMemoryUsedMB int     `json:"max_memory_used_mb,omitempty"`
	Outcome         string  `json:"outcome,omitempty"`
	ErrorType       string  `json:"error_type,omitempty"`

	// State of an instance segment.
	State string `json:"state,omitempty"`

	// Provisioned segments: the qualifier (version or alias) the
	// configuration is on, and how many environments it keeps.
	Qualifier   string `json:"qualifier,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	// Final marks the provisioned segment that ends a span: the
	// configuration was removed or changed, or its environments stopped
	// with the control plane. Lambda bills a span, from enabling to
	// disabling, in whole increments of 5 minutes.
	Final bool `json:"final,omitempty"`
}

// Seconds is the length of a segment in seconds.
func (e *Event) Seconds() float64 { return e.End.Sub(e.Start).Seconds() }

// Billed reports whether an instance segment's state is billed by EC2.
func (e *Event) Billed() bool { return e.Kind == KindInstance && e.State != InstancePending }
