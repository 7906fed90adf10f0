// Package scaler decides how many execution environments and instances a Managed
// Instances capacity provider should run.
//
// The decider is pure: Decide takes a Snapshot of the fleet and the time, and
// returns a Plan (environments to add and remove, instances to launch and
// drain, each with its reason). It does no I/O, reads no clock and starts no
// goroutines, so the live scaling loop and the cost replay (internal/cost/replay)
// drive the very same logic: the loop (internal/controlplane) feeds it snapshots built from agent reports
// and applies the plan through the fleet; the replay feeds it simulated
// snapshots and applies the plan to its model.
//
// The contract it follows is Lambda Managed Instances' (see docs and
// research/lmi-spec.md §4): scaling is asynchronous, driven by the environments'
// CPU utilisation and concurrency saturation; Auto mode keeps headroom for
// traffic to double within 5 minutes without throttles; Manual mode holds a
// target CPU utilisation; every version stays within its minimum and maximum
// environments, the fleet within MaxVCpuCount and above its minimum of instances
// spread over zones (while any version is active); scale-in is gradual.
package scaler

import "time"

// InstanceState is where an instance is in its life, as the decider sees it.
//
//	Pending ──ready──▶ Running ──drain──▶ Draining ──empty──▶ (gone)
type InstanceState int

const (
	// InstancePending was asked for and is booting: it counts toward the fleet
	// and MaxVCpuCount, and the decider plans environments onto it only once it runs.
	InstancePending InstanceState = iota
	// InstanceRunning hosts environments.
	InstanceRunning
	// InstanceDraining takes no new environments; it is stopped once empty.
	InstanceDraining
)

func (s InstanceState) String() string {
	switch s {
	case InstancePending:
		return "Pending"
	case InstanceRunning:
		return "Running"
	case InstanceDraining:
		return "Draining"
	}
	return "Unknown"
}

// EnvState is where an execution environment is in its life.
//
//	Initializing ──init done──▶ Ready ──remove──▶ Draining ──in-flight done──▶ (gone)
type EnvState int

const (
	// EnvInitializing is starting: it counts toward the version's environments
	// but serves nothing yet.
	EnvInitializing EnvState = iota
	// EnvReady serves invocations.
	EnvReady
	// EnvDraining finishes its in-flight invocations and takes no new ones; it no
	// longer counts toward the version's environments.
	EnvDraining
)

func (s EnvState) String() string {
	switch s {
	case EnvInitializing:
		return "Initializing"
	case EnvReady:
		return "Ready"
	case EnvDraining:
		return "Draining"
	}
	return "Unknown"
}

// Snapshot is the state of one capacity provider at a moment.
type Snapshot struct {
	Instances []Instance
	Versions  []Version
}

// Instance is one instance of the capacity provider.
type Instance struct {
	ID   string
	Zone string
	Type string
	// State says whether the instance boots, runs or drains.
	State     InstanceState
	VCPU      float64
	MemoryMiB int
	// CPUUtilization is the share (0..1) of the instance's vCPUs in use over the
	// last interval. The decider reads environment CPU; this is for reasons and
	// for loops that only have host metrics.
	CPUUtilization float64
	// LaunchedAt is when the instance was launched. Once it is older than
	// Config.MaxInstanceLifetime the instance is rotated: replaced, then
	// drained. Zero means unknown: the instance is never rotated for its age.
	LaunchedAt time.Time
	// Outdated, when set, says why the instance should go although it is not
	// due: its agent runs an older build of shoal's runtimes. It takes no new
	// environments; those of its environments that are Stale are replaced
	// elsewhere, and it is drained once empty.
	Outdated string
}

// Version is one function version on the capacity provider, with its
// environments and its scaling config.
type Version struct {
	// Key names the version, "function:version".
	Key string
	// MinEnvironments and MaxEnvironments are the function scaling config. As in
	// Lambda, MinEnvironments = MaxEnvironments = 0 deactivates the version (it
	// gets no environments); MaxEnvironments = 0 with a positive minimum means no
	// maximum.
	MinEnvironments int
	MaxEnvironments int
	// The shape of one environment: vCPUs, memory and concurrent invocations
	// (PerExecutionEnvironmentMaxConcurrency).
	EnvVCPU      float64
	EnvMemoryMiB int
	EnvSlots     int
	Environments []Environment
	// Unserved is the concurrency the router refused over the last interval
	// (throttled invocations × mean duration ÷ interval), measured over the
	// same interval as the environments' InFlight. It is demand that in-flight
	// counts cannot show, since a saturated version serves no more.
	Unserved float64
	// Carried and CarriedVCPU are the in-flight invocations and the vCPUs in
	// use of the versions whose traffic moves to this one once it is Active
	// (a rollout); the decider sizes the version for them too.
	Carried     float64
	CarriedVCPU float64
}

// Environment is one execution environment of a version.
type Environment struct {
	ID       string
	Instance string
	State    EnvState
	// InFlight is the number of invocations in flight, averaged (or its peak)
	// over the last interval.
	InFlight float64
	// CPUUtilization is the share (0..1) of the environment's vCPUs in use over
	// the last interval.
	CPUUtilization float64
	// Stale, when set, says why the environment should be replaced: a newer
	// build of its runtime is on its instance, or its instance is Outdated, and
	// its version takes runtime updates (runtime management config Auto). It
	// is replaced as a rotation replaces environments: a new one first, then
	// it drains.
	Stale string
}

// Plan is what the decider wants done. The loop applies it in this order:
// launch instances, add environments, remove environments, drain instances.
type Plan struct {
	AddInstances       []AddInstance
	AddEnvironments    []AddEnvironment
	RemoveEnvironments []RemoveEnvironment
	DrainInstances     []DrainInstance
	// Targets gives, for each version, the environments it has and wants, and why.
	Targets []Target
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.AddInstances) == 0 && len(p.AddEnvironments) == 0 &&
		len(p.RemoveEnvironments) == 0 && len(p.DrainInstances) == 0
}

// AddInstance asks the fleet for one instance of Type in Zone.
type AddInstance struct {
	Zone   string
	Type   string
	Reason string
}

// AddEnvironment starts one environment of Version on a running Instance.
type AddEnvironment struct {
	Version  string
	Instance string
	Zone     string
	Reason   string
}

// RemoveEnvironment drains one environment and stops it once its in-flight
// invocations finish.
type RemoveEnvironment struct {
	Version     string
	Environment string
	Instance    string
	Reason      string
	// Replaced is set when the environment leaves because ready environments
	// have taken its place (an instance rotation or a runtime update), not
	// because its version scales in.
	Replaced bool
}

// DrainInstance stops an instance that hosts no environment.
type DrainInstance struct {
	Instance string
	Reason   string
	// Rotation is set when the instance goes because it was replaced (it
	// reached its maximum lifetime, or it is Outdated), not because the fleet
	// scales in.
	Rotation bool
}

// Target is the decider's verdict on one version.
type Target struct {
	Version string
	// Current counts the version's initializing and ready environments,
	// those being replaced aside.
	Current int
	// Desired is what the demand asks for, within the version's min and max.
	Desired int
	// Unplaced is how many wanted environments found no room this round (they
	// wait for instances that are booting or were just asked for).
	Unplaced int
	// Replacing counts the version's environments that are being replaced
	// (on an instance that rotates, or Stale); they are not in Current.
	Replacing int
	// The demand sized for: the peaks over the peak window (refused work
	// included), and the environments they need for slots and for CPU.
	PeakInFlight float64
	PeakVCPU     float64
	ForSlots     int
	ForCPU       int
	// Bound says whether the version's minimum or maximum set Desired.
	Bound Bound
	// Reason explains Desired in words; it is set when the decider acts on the
	// version or cannot place what it wants.
	Reason string
}

// Bound names the limit that set a version's desired environments.
type Bound string

// The limits of a version's environments.
const (
	BoundNone Bound = ""
	BoundMin  Bound = "min"
	BoundMax  Bound = "max"
)
