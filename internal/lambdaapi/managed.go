package lambdaapi

import (
	"fmt"
	"math"
	"regexp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// The function side of Lambda Managed Instances: CapacityProviderConfig on
// CreateFunction and UpdateFunctionConfiguration, and the states shown for versions.

const capacityProviderArnPattern = `arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:capacity-provider:[a-zA-Z0-9-_]+`

var capacityProviderArnRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):(?P<account>\d{12}):capacity-provider:(?P<name>[a-zA-Z0-9_-]+)$`)

// Managed Instances sizing rules.
const (
	minManagedMemoryMB      = 2048
	maxManagedMemoryMB      = 32768
	maxOnDemandMemoryMB     = 10240
	maxConcurrencyPerVCPU   = 64
	maxConcurrencyPerEnv    = 1600
	defaultManagedGiBPerCPU = registry.DefaultExecutionEnvironmentMemoryGiB
)

// managedRuntimes are the runtimes Managed Instances supports that shoal runs.
var managedRuntimes = map[string]bool{
	"nodejs22.x": true, "nodejs24.x": true, "python3.13": true, "python3.14": true, "provided.al2023": true,
}

type capacityProviderConfigRequest struct {
	LambdaManagedInstancesCapacityProviderConfig *managedConfigRequest `json:"LambdaManagedInstancesCapacityProviderConfig"`
}

type managedConfigRequest struct {
	CapacityProviderArn                   *string  `json:"CapacityProviderArn"`
	PerExecutionEnvironmentMaxConcurrency *int     `json:"PerExecutionEnvironmentMaxConcurrency"`
	ExecutionEnvironmentMemoryGiBPerVCpu  *float64 `json:"ExecutionEnvironmentMemoryGiBPerVCpu"`
}

const cpcField = "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig"

// validate checks the syntax and ranges of a CapacityProviderConfig.
func (c *capacityProviderConfigRequest) validate() error {
	m := c.LambdaManagedInstancesCapacityProviderConfig
	if m == nil {
		return nullError(cpcField)
	}
	if m.CapacityProviderArn == nil {
		return nullError(cpcField + ".capacityProviderArn")
	}
	if arn := *m.CapacityProviderArn; len(arn) > 140 || !capacityProviderArnRE.MatchString(arn) {
		return patternError(arn, cpcField+".capacityProviderArn", capacityProviderArnPattern)
	}
	if p := m.PerExecutionEnvironmentMaxConcurrency; p != nil {
		if *p < 1 {
			return validationError(itoa(*p), cpcField+".perExecutionEnvironmentMaxConcurrency", "Member must have value greater than or equal to 1")
		}
		if *p > maxConcurrencyPerEnv {
			return validationError(itoa(*p), cpcField+".perExecutionEnvironmentMaxConcurrency", "Member must have value less than or equal to 1600")
		}
	}
	if p := m.ExecutionEnvironmentMemoryGiBPerVCpu; p != nil {
		if math.IsNaN(*p) || *p < 2 {
			return validationError(fmt.Sprint(*p), cpcField+".executionEnvironmentMemoryGiBPerVCpu", "Member must have value greater than or equal to 2")
		}
		if *p > 8 {
			return validationError(fmt.Sprint(*p), cpcField+".executionEnvironmentMemoryGiBPerVCpu", "Member must have value less than or equal to 8")
		}
		if *p != 2 && *p != 4 && *p != 8 {
			return awserr.InvalidParameter("ExecutionEnvironmentMemoryGiBPerVCpu must be 2.0, 4.0 or 8.0 (the memory to vCPU ratios of the C, M and R instance families).")
		}
	}
	return nil
}

// apply stores the request's settings on v; finishCompute fills in the defaults.
func (c *capacityProviderConfigRequest) apply(v *registry.Version) {
	m := c.LambdaManagedInstancesCapacityProviderConfig
	mi := &registry.ManagedInstancesConfig{CapacityProviderArn: *m.CapacityProviderArn}
	if m.PerExecutionEnvironmentMaxConcurrency != nil {
		mi.PerExecutionEnvironmentMaxConcurrency = *m.PerExecutionEnvironmentMaxConcurrency
	}
	if m.ExecutionEnvironmentMemoryGiBPerVCpu != nil {
		mi.ExecutionEnvironmentMemoryGiBPerVCpu = *m.ExecutionEnvironmentMemoryGiBPerVCpu
	}
	v.CapacityProviderConfig = &registry.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: mi}
}

// defaultConcurrency is Lambda's default PerExecutionEnvironmentMaxConcurrency: the
// runtime's default per vCPU times the environment's vCPUs.
func defaultConcurrency(runtime string, vcpus int) int {
	return min(registry.DefaultMaxConcurrencyPerVCPU(runtime)*max(vcpus, 1), maxConcurrencyPerEnv)
}

// finishCompute checks a configuration's memory and Managed Instances settings once a
// request's settings are applied, and fills in the Managed Instances defaults: the
// ratio (2 GiB per vCPU), the memory on create (one vCPU's worth, at least 2048 MB)
// and the per-environment concurrency. prev is the configuration before the request
// (nil on create).
func (a *api) finishCompute(v, prev *registry.Version, c *configRequest) error {
	mi := v.ManagedInstances()
	if mi == nil {
		if v.MemorySize > maxOnDemandMemoryMB {
			return awserr.InvalidParameter("'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240")
		}
		return nil
	}
	m := capacityProviderArnRE.FindStringSubmatch(mi.CapacityProviderArn)
	if m == nil || m[capacityProviderArnRE.SubexpIndex("region")] != a.cfg.Region || m[capacityProviderArnRE.SubexpIndex("account")] != a.cfg.AccountID {
		return awserr.InvalidParameter("The capacity provider %s does not exist.", mi.CapacityProviderArn)
	}
	if !managedRuntimes[v.Runtime] {
		return awserr.InvalidParameter("The runtime %s is not supported for functions that use a capacity provider. Supported runtimes: nodejs22.x, nodejs24.x, python3.13, python3.14, provided.al2023.", v.Runtime)
	}
	if mi.ExecutionEnvironmentMemoryGiBPerVCpu == 0 {
		mi.ExecutionEnvironmentMemoryGiBPerVCpu = defaultManagedGiBPerCPU
	}
	perVCPU := int(mi.ExecutionEnvironmentMemoryGiBPerVCpu * 1024)
	if prev == nil && c.MemorySize == nil {
		v.MemorySize = max(minManagedMemoryMB, perVCPU)
	}
	if v.MemorySize < minManagedMemoryMB {
		return awserr.InvalidParameter("MemorySize (%d MB) must be at least %d MB for functions that use a capacity provider.", v.MemorySize, minManagedMemoryMB)
	}
	if v.MemorySize > maxManagedMemoryMB {
		return validationError(itoa(v.MemorySize), "memorySize", "Member must have value less than or equal to 32768")
	}
	if v.MemorySize%perVCPU != 0 {
		return awserr.InvalidParameter("MemorySize (%d MB) must be a multiple of ExecutionEnvironmentMemoryGiBPerVCpu (%g GiB, %d MB) for functions that use a capacity provider.",
			v.MemorySize, mi.ExecutionEnvironmentMemoryGiBPerVCpu, perVCPU)
	}
	vcpus := mi.VCPUs(v.MemorySize)
	explicit := c.CapacityProviderConfig != nil && c.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency != nil
	if !explicit {
		redo := c.CapacityProviderConfig != nil || mi.PerExecutionEnvironmentMaxConcurrency == 0
		if pm := prev.ManagedInstances(); !redo && pm != nil &&
			pm.PerExecutionEnvironmentMaxConcurrency == defaultConcurrency(prev.Runtime, pm.VCPUs(prev.MemorySize)) {
			redo = true // the old value was the default: keep it the default
		}
		if redo {
			mi.PerExecutionEnvironmentMaxConcurrency = defaultConcurrency(v.Runtime, vcpus)
		}
	}
	if n := mi.PerExecutionEnvironmentMaxConcurrency; n > maxConcurrencyPerVCPU*vcpus {
		return awserr.InvalidParameter("PerExecutionEnvironmentMaxConcurrency (%d) must not exceed %d per vCPU (%d for %d vCPU).", n, maxConcurrencyPerVCPU, maxConcurrencyPerVCPU*vcpus, vcpus)
	}
	return nil
}

// shown returns the configuration as the API shows it: with the state of a Managed
// Instances version, which the registry derives from the control plane's reports.
func (a *api) shown(v *registry.Version) *registry.Version {
	if v.ManagedInstances() == nil {
		return v
	}
	out := *v
	out.State, out.StateReason, out.StateReasonCode = a.reg.VersionState(v)
	return &out
}
