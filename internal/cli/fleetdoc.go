package cli

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// fleetDoc is shoal's GET /shoal/v1/fleet as `shoal fleet` and `shoal top`
// read it. Its instances and environments carry the JSON fields of
// fleet.Instance and agent.EnvStatus that the two commands show; they are
// declared here so that the client commands, which run on any system, do not
// import the control plane's packages (TestFleetDocMatchesTheServer keeps
// the two in step).
type fleetDoc struct {
	Hosts     []hostView      `json:"hosts,omitempty"`
	Instances []fleetInstance `json:"instances"`
	// Terminated are the instances terminated since the time asked for.
	Terminated []fleetInstance `json:"terminated,omitempty"`
	Versions   []versionCounts `json:"versions"`
}

// fleetInstance is one instance of the fleet (fleet.Instance).
type fleetInstance struct {
	ID                string     `json:"id"`
	CapacityProvider  string     `json:"capacity_provider"`
	Type              string     `json:"type"`
	Host              string     `json:"host,omitempty"`
	Zone              string     `json:"zone"`
	State             string     `json:"state"`
	StateReason       string     `json:"state_reason,omitempty"`
	VCPU              int        `json:"vcpu"`
	MemoryMB          int        `json:"memory_mb"`
	CPUUtilization    float64    `json:"cpu_utilization"`
	MemoryUtilization float64    `json:"memory_utilization"`
	Environments      []fleetEnv `json:"environments,omitempty"`
	// The instance's life: launched, left pending, terminated; and where its
	// time in the usage ledger ends.
	LaunchedAt   time.Time `json:"launched_at"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	TerminatedAt time.Time `json:"terminated_at,omitzero"`
	MeteredUntil time.Time `json:"metered_until,omitzero"`
	// RotationDue is when the instance reaches its maximum lifetime and is
	// replaced.
	RotationDue time.Time `json:"rotation_due,omitzero"`
	// What drains did to the invocations in flight on the instance's
	// environments: finished, or still running when the function's timeout
	// was up.
	DrainedInvocations uint64 `json:"drained_invocations"`
	CutInvocations     uint64 `json:"cut_invocations"`
}

// fleetEnv is one execution environment on an instance (agent.EnvStatus).
type fleetEnv struct {
	ID             string  `json:"id"`
	Function       string  `json:"function"`
	Version        string  `json:"version"`
	Slots          int     `json:"slots"`
	InFlight       int     `json:"in_flight"`
	State          string  `json:"state"`
	CPUUtilization float64 `json:"cpu_utilization"`
}

// versionCounts are one function version's Managed Instances counters. They
// only grow while the control plane runs.
type versionCounts struct {
	Version              string `json:"version"`
	Environments         int    `json:"environments"`
	Invocations          int64  `json:"invocations"`
	ThrottlesConcurrency int64  `json:"throttles_concurrency"`
	ThrottlesCPU         int64  `json:"throttles_cpu"`
	ThrottlesMemory      int64  `json:"throttles_memory"`
}

// fetchFleet reads GET /shoal/v1/fleet; with a terminatedSince, also the
// instances terminated since then.
func fetchFleet(ctx context.Context, client *http.Client, endpoint string, terminatedSince time.Time) (*fleetDoc, error) {
	path := "/shoal/v1/fleet"
	if !terminatedSince.IsZero() {
		path += "?" + url.Values{"terminated_since": {terminatedSince.UTC().Format(time.RFC3339Nano)}}.Encode()
	}
	var doc fleetDoc
	if err := getShoal(ctx, client, endpoint, path, "fleet", &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}
