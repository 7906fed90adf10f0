package scaler

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Mode is a capacity provider's scaling mode.
type Mode string

// The scaling modes of CapacityProviderScalingConfig.ScalingMode.
const (
	ModeAuto   Mode = "Auto"
	ModeManual Mode = "Manual"
)

// Defaults of Config.
const (
	DefaultMaxVCPU         = 400 // MaxVCpuCount's default
	DefaultMinInstances    = 3   // one per zone, for zone resilience
	DefaultHeadroom        = 2.0 // traffic may double
	DefaultPeakWindow      = 5 * time.Minute
	DefaultScaleInStep     = 0.1
	DefaultScaleInInterval = time.Minute
	// DefaultMaxInstanceLifetime is how long an instance runs before it is
	// replaced: 14 days, as ECS Managed Instances rotates its instances.
	DefaultMaxInstanceLifetime = 14 * 24 * time.Hour
	// DefaultRotationShare is the largest share of the fleet replaced at once
	// (at least one instance).
	DefaultRotationShare = 0.1
)

// DefaultZones are the zones of a capacity provider that names none.
var DefaultZones = []string{"zone-a", "zone-b", "zone-c"}

// InstanceShape is the instance type the decider asks the fleet for.
type InstanceShape struct {
	Type      string
	VCPU      float64
	MemoryMiB int
}

// Config is the scaling configuration of one capacity provider.
type Config struct {
	// Mode is Auto (the default) or Manual.
	Mode Mode
	// TargetCPUPercent is Manual mode's target: the average CPU utilisation, in
	// percent, of the vCPUs allocated to environments.
	TargetCPUPercent float64
	// MaxVCPU is MaxVCpuCount: the fleet's vCPUs never exceed it. Zero means 400.
	MaxVCPU int
	// MinInstances is the smallest fleet, spread over the zones. Zero means 3,
	// or as many instances as MaxVCPU holds when that is fewer (at least one).
	MinInstances int
	// Zones the fleet spreads over. Empty means DefaultZones.
	Zones []string
	// Instance is the type launched when the fleet grows. Required.
	Instance InstanceShape
	// ReservedVCPU and ReservedMemoryMiB are kept free on every instance for
	// the agent and the operating system.
	ReservedVCPU      float64
	ReservedMemoryMiB int
	// Headroom is Auto mode's multiple of the recent peak demand that the
	// environments can serve. Zero means 2: traffic may double before the new
	// capacity, which takes minutes to arrive, is needed.
	Headroom float64
	// PeakWindow is how far back the decider looks for the peak demand it sizes
	// for. Demand has to stay low this long before scale-in starts. Zero means 5 minutes.
	PeakWindow time.Duration
	// ScaleInStep is the largest share of a version's environments removed per
	// ScaleInInterval (at least one). Zero means 10 %.
	ScaleInStep float64
	// ScaleInInterval is the least time between two scale-in steps of a version,
	// and between two instance drains. Zero means 1 minute.
	ScaleInInterval time.Duration
	// MaxInstanceLifetime is how long an instance runs before it is rotated:
	// a replacement is launched, environments are placed on it, then the old
	// instance's environments drain and it is stopped. Zero means 14 days.
	MaxInstanceLifetime time.Duration
	// RotationShare is the largest share of the fleet's instances replaced at
	// once, oldest first (at least one). Zero means 10 %. While an instance is
	// replaced, the fleet may hold its replacement beside it beyond
	// MaxVCpuCount, and a version more environments than its maximum.
	RotationShare float64
}

// ErrScalingLimit: the capacity provider's MaxVCpuCount cannot hold its
// smallest fleet.
var ErrScalingLimit = errors.New("scaler: the capacity provider's MaxVCpuCount is too low")

// Holds returns how many environments of envVCPU vCPUs and envMiB MiB the
// largest fleet MaxVCPU allows can hold, each instance keeping its reserve.
func (c *Config) Holds(envVCPU float64, envMiB int) int {
	if !(c.Instance.VCPU > 0) || !(envVCPU > 0) || envMiB <= 0 {
		return math.MaxInt
	}
	instances := int(float64(c.MaxVCPU)/c.Instance.VCPU + 1e-9)
	perCPU := int((c.Instance.VCPU-c.ReservedVCPU)/envVCPU + 1e-9)
	perMem := (c.Instance.MemoryMiB - c.ReservedMemoryMiB) / envMiB
	return instances * min(perCPU, perMem)
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.MaxVCPU == 0 {
		c.MaxVCPU = DefaultMaxVCPU
	}
	if c.MinInstances == 0 {
		c.MinInstances = DefaultMinInstances
		if c.Instance.VCPU > 0 && c.MaxVCPU > 0 {
			// No more than MaxVCpuCount holds, and at least one.
			c.MinInstances = min(c.MinInstances, max(1, int(float64(c.MaxVCPU)/c.Instance.VCPU)))
		}
	}
	if len(c.Zones) == 0 {
		c.Zones = DefaultZones
	}
	if c.Headroom == 0 {
		c.Headroom = DefaultHeadroom
	}
	if c.PeakWindow == 0 {
		c.PeakWindow = DefaultPeakWindow
	}
	if c.ScaleInStep == 0 {
		c.ScaleInStep = DefaultScaleInStep
	}
	if c.ScaleInInterval == 0 {
		c.ScaleInInterval = DefaultScaleInInterval
	}
	if c.MaxInstanceLifetime == 0 {
		c.MaxInstanceLifetime = DefaultMaxInstanceLifetime
	}
	if c.RotationShare == 0 {
		c.RotationShare = DefaultRotationShare
	}
	return c
}

// Validate reports the first problem with c (after defaults).
func (c Config) Validate() error {
	switch c.Mode {
	case ModeAuto:
	case ModeManual:
		if !(c.TargetCPUPercent > 0 && c.TargetCPUPercent <= 100) {
			return fmt.Errorf("scaler: Manual mode wants a target CPU in (0, 100], got %v", c.TargetCPUPercent)
		}
	default:
		return fmt.Errorf("scaler: unknown scaling mode %q (want Auto or Manual)", c.Mode)
	}
	if c.MaxVCPU < 2 || c.MaxVCPU > 15000 {
		return fmt.Errorf("scaler: MaxVCpuCount %d: want 2..15000", c.MaxVCPU)
	}
	if c.MinInstances < 0 {
		return errors.New("scaler: negative minimum of instances")
	}
	for _, z := range c.Zones {
		if z == "" {
			return errors.New("scaler: empty zone name")
		}
	}
	if c.Instance.Type == "" || !(c.Instance.VCPU > 0) || c.Instance.MemoryMiB <= 0 {
		return fmt.Errorf("scaler: instance shape %+v: want a type with vCPUs and memory", c.Instance)
	}
	if c.ReservedVCPU < 0 || c.ReservedVCPU >= c.Instance.VCPU || c.ReservedMemoryMiB < 0 || c.ReservedMemoryMiB >= c.Instance.MemoryMiB {
		return errors.New("scaler: the reserve leaves nothing of the instance")
	}
	if float64(c.MinInstances)*c.Instance.VCPU > float64(c.MaxVCPU) {
		return fmt.Errorf("%w: %d instances of %v vCPUs (%s) exceed MaxVCpuCount %d", ErrScalingLimit, c.MinInstances, c.Instance.VCPU, c.Instance.Type, c.MaxVCPU)
	}
	if !(c.Headroom >= 1) || math.IsInf(c.Headroom, 0) {
		return fmt.Errorf("scaler: headroom %v: want at least 1", c.Headroom)
	}
	if c.PeakWindow < 0 || c.ScaleInInterval < 0 {
		return errors.New("scaler: negative window or interval")
	}
	if !(c.ScaleInStep > 0 && c.ScaleInStep <= 1) {
		return fmt.Errorf("scaler: scale-in step %v: want (0, 1]", c.ScaleInStep)
	}
	if c.MaxInstanceLifetime < 0 {
		return fmt.Errorf("scaler: maximum instance lifetime %v: want a positive duration", c.MaxInstanceLifetime)
	}
	if !(c.RotationShare > 0 && c.RotationShare <= 1) {
		return fmt.Errorf("scaler: rotation share %v: want (0, 1]", c.RotationShare)
	}
	return nil
}
