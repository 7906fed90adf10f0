package registry

// Lambda Managed Instances: capacity providers, the function side of a capacity
// provider config, per-version scaling configs and the control plane's reports.

// LatestPublished is the qualifier of the version that PublishTo LATEST_PUBLISHED
// creates and republishes in place; unqualified invocations of a Managed Instances
// function run it.
const LatestPublished = "$LATEST.PUBLISHED"

// Capacity provider states.
const (
	CapacityProviderPending  = "Pending"
	CapacityProviderActive   = "Active"
	CapacityProviderFailed   = "Failed"
	CapacityProviderDeleting = "Deleting"
)

// Function version states of Managed Instances functions (besides Lambda's Pending,
// Active, Failed).
const (
	StatePending            = "Pending"
	StateActive             = "Active"
	StateFailed             = "Failed"
	StateDeactivating       = "Deactivating"
	StateDeactivated        = "Deactivated"
	StateActiveNonInvocable = "ActiveNonInvocable"
)

// Limits of Managed Instances that the registry enforces or applies.
const (
	DefaultCapacityProviderLimit         = 1000 // capacity providers per account
	DefaultVersionsPerCapacityProvider   = 100  // published function versions per capacity provider
	DefaultMinExecutionEnvironments      = 3
	MaxExecutionEnvironmentsLimit        = 15000 // the API's bound, also "no maximum"
	DefaultMaxVCpuCount                  = 400
	DefaultExecutionEnvironmentMemoryGiB = 2.0 // GiB per vCPU
)

// CapacityProvider is a capacity provider as Lambda returns it (JSON names are the
// API's). A *CapacityProvider handed out by the Registry is shared: copy it first.
type CapacityProvider struct {
	CapacityProviderArn           string                             `json:"CapacityProviderArn"`
	State                         string                             `json:"State"`
	VpcConfig                     *CapacityProviderVpcConfig         `json:"VpcConfig"`
	PermissionsConfig             *CapacityProviderPermissionsConfig `json:"PermissionsConfig"`
	InstanceRequirements          *InstanceRequirements              `json:"InstanceRequirements,omitempty"`
	CapacityProviderScalingConfig *CapacityProviderScalingConfig     `json:"CapacityProviderScalingConfig,omitempty"`
	KmsKeyArn                     string                             `json:"KmsKeyArn,omitempty"`
	LastModified                  string                             `json:"LastModified,omitempty"`
	PropagateTags                 *PropagateTags                     `json:"PropagateTags,omitempty"`
	TelemetryConfig               *CapacityProviderTelemetryConfig   `json:"TelemetryConfig,omitempty"`
}

// CapacityProviderVpcConfig is where the instances would run; shoal records it.
type CapacityProviderVpcConfig struct {
	SubnetIds        []string `json:"SubnetIds"`
	SecurityGroupIds []string `json:"SecurityGroupIds"`
}

// CapacityProviderPermissionsConfig names the operator role; shoal records it.
type CapacityProviderPermissionsConfig struct {
	CapacityProviderOperatorRoleArn string `json:"CapacityProviderOperatorRoleArn"`
}

// InstanceRequirements choose the instance types: one architecture, and allowed or
// excluded type patterns (never both).
type InstanceRequirements struct {
	Architectures         []string `json:"Architectures,omitempty"`
	AllowedInstanceTypes  []string `json:"AllowedInstanceTypes,omitempty"`
	ExcludedInstanceTypes []string `json:"ExcludedInstanceTypes,omitempty"`
}

// CapacityProviderScalingConfig bounds and steers the fleet.
type CapacityProviderScalingConfig struct {
	MaxVCpuCount    int                           `json:"MaxVCpuCount,omitempty"`
	ScalingMode     string                        `json:"ScalingMode,omitempty"` // Auto | Manual
	ScalingPolicies []TargetTrackingScalingPolicy `json:"ScalingPolicies,omitempty"`
}

// TargetTrackingScalingPolicy is a CPU utilisation target (percent).
type TargetTrackingScalingPolicy struct {
	PredefinedMetricType string  `json:"PredefinedMetricType"`
	TargetValue          float64 `json:"TargetValue"`
}

// PropagateTags says which tags go onto the instances.
type PropagateTags struct {
	Mode         string            `json:"Mode,omitempty"` // None | Explicit
	ExplicitTags map[string]string `json:"ExplicitTags,omitempty"`
}

// CapacityProviderTelemetryConfig holds the system log settings.
type CapacityProviderTelemetryConfig struct {
	LoggingConfig *CapacityProviderLoggingConfig `json:"LoggingConfig,omitempty"`
}

// CapacityProviderLoggingConfig is the system log level and group.
type CapacityProviderLoggingConfig struct {
	SystemLogLevel string `json:"SystemLogLevel,omitempty"`
	LogGroup       string `json:"LogGroup,omitempty"`
}

// Name is the capacity provider's name (the last part of its ARN).
func (c *CapacityProvider) Name() string { return arnName(c.CapacityProviderArn) }

// Architecture is the one architecture of its instances (x86_64 by default).
func (c *CapacityProvider) Architecture() string {
	if c.InstanceRequirements != nil && len(c.InstanceRequirements.Architectures) == 1 {
		return c.InstanceRequirements.Architectures[0]
	}
	return "x86_64"
}

// MaxVCpuCount is the fleet's vCPU bound (400 by default).
func (c *CapacityProvider) MaxVCpuCount() int {
	if c.CapacityProviderScalingConfig != nil && c.CapacityProviderScalingConfig.MaxVCpuCount > 0 {
		return c.CapacityProviderScalingConfig.MaxVCpuCount
	}
	return DefaultMaxVCpuCount
}

// CapacityProviderConfig is a function's Managed Instances setting
// (FunctionConfiguration.CapacityProviderConfig).
type CapacityProviderConfig struct {
	LambdaManagedInstancesCapacityProviderConfig *ManagedInstancesConfig `json:"LambdaManagedInstancesCapacityProviderConfig"`
}

// ManagedInstancesConfig places a function on a capacity provider. The registry stores
// it with its defaults filled in: the ratio (2 GiB per vCPU) and the per-environment
// concurrency (the runtime's default per vCPU times the vCPUs).
type ManagedInstancesConfig struct {
	CapacityProviderArn                   string  `json:"CapacityProviderArn"`
	PerExecutionEnvironmentMaxConcurrency int     `json:"PerExecutionEnvironmentMaxConcurrency,omitempty"`
	ExecutionEnvironmentMemoryGiBPerVCpu  float64 `json:"ExecutionEnvironmentMemoryGiBPerVCpu,omitempty"`
}

// ManagedInstances returns the version's Managed Instances config, nil for a function
// that runs on demand.
func (v *Version) ManagedInstances() *ManagedInstancesConfig {
	if v == nil || v.CapacityProviderConfig == nil {
		return nil
	}
	return v.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig
}

// VCPUs is the vCPUs of one execution environment: memory / ratio.
func (c *ManagedInstancesConfig) VCPUs(memoryMB int) int {
	ratio := c.ExecutionEnvironmentMemoryGiBPerVCpu
	if ratio <= 0 {
		ratio = DefaultExecutionEnvironmentMemoryGiB
	}
	return int(float64(memoryMB) / (ratio * 1024))
}

// CapacityProviderName is the name in CapacityProviderArn.
func (c *ManagedInstancesConfig) CapacityProviderName() string { return arnName(c.CapacityProviderArn) }

// DefaultMaxConcurrencyPerVCPU is Lambda's default number of concurrent invocations
// per vCPU of an execution environment, by runtime family.
func DefaultMaxConcurrencyPerVCPU(runtime string) int {
	switch {
	case len(runtime) >= 6 && runtime[:6] == "nodejs":
		return 64
	case len(runtime) >= 6 && runtime[:6] == "python":
		return 16
	case len(runtime) >= 4 && runtime[:4] == "java", len(runtime) >= 6 && runtime[:6] == "dotnet":
		return 32
	default: // provided.* (Rust, Go)
		return 8
	}
}

// ScalingConfig is a function version's minimum and maximum execution environments.
// Nil fields are unset (Min defaults to 3, Max to no maximum).
type ScalingConfig struct {
	MinExecutionEnvironments *int `json:"MinExecutionEnvironments,omitempty"`
	MaxExecutionEnvironments *int `json:"MaxExecutionEnvironments,omitempty"`
}

// Bounds returns the config with its defaults applied: min (3 when unset) and max
// (MaxExecutionEnvironmentsLimit when unset).
func (s *ScalingConfig) Bounds() (minEnvs, maxEnvs int) {
	minEnvs, maxEnvs = DefaultMinExecutionEnvironments, MaxExecutionEnvironmentsLimit
	if s == nil {
		return
	}
	if s.MinExecutionEnvironments != nil {
		minEnvs = *s.MinExecutionEnvironments
	}
	if s.MaxExecutionEnvironments != nil {
		maxEnvs = *s.MaxExecutionEnvironments
	}
	return
}

// Deactivated reports whether the config is min = max = 0.
func (s *ScalingConfig) Deactivated() bool {
	lo, hi := s.Bounds()
	return lo == 0 && hi == 0
}

// ManagedVersion is one published version that runs on a capacity provider, with
// what the control plane needs to keep its environments.
type ManagedVersion struct {
	Version          *Version // shared: do not modify
	CapacityProvider string   // name
	// MinEnvironments and MaxEnvironments are the requested bounds with defaults
	// applied (3 and MaxExecutionEnvironmentsLimit); both 0 when deactivated.
	MinEnvironments int
	MaxEnvironments int
	// MaxConcurrency is the invocations one environment takes at once
	// (AWS_LAMBDA_MAX_CONCURRENCY).
	MaxConcurrency int
	MemoryMB       int
	VCPUs          int
	// State is what GetFunctionConfiguration shows (Pending, Active, Failed,
	// Deactivating, Deactivated), derived from the last SetVersionState report.
	State       string
	StateReason string
	// AppliedIsRequested reports whether the applied scaling config
	// (GetFunctionScalingConfig) is the requested one; a put on an active
	// version makes it false until the control plane reports the version
	// again.
	AppliedIsRequested bool
	// UpdateRuntimeOn is the version's runtime management mode (Auto,
	// FunctionUpdate or Manual): with Auto its environments move to a new
	// runtime build as the fleet gets one.
	UpdateRuntimeOn string
	// Carries are the versions (at the revisions that serve them) whose
	// invocations move to this one once it is Active: the version an alias
	// moved from, the previous revision of $LATEST.PUBLISHED. The control
	// plane sizes this version for their traffic too.
	Carries []*Version
	// Replaced marks the previous revision of $LATEST.PUBLISHED, which serves
	// until its successor (listed before it, with the same version name) is
	// Active. Its State is Active; the control plane reports no state of it.
	Replaced bool
}

// VersionStatus is the control plane's last report on a Managed Instances version.
type VersionStatus struct {
	State      string
	Reason     string
	ReasonCode string
	// Applied is the scaling config in place when State was last Active or
	// Deactivated; nil before that.
	Applied *ScalingConfig
}

// capacityProviderRecord is everything stored about one capacity provider.
type capacityProviderRecord struct {
	Provider *CapacityProvider `json:"provider"`
	Tags     map[string]string `json:"tags,omitempty"`
	// ID is new at each creation, so a status reported for a deleted namesake never
	// applies to a new capacity provider.
	ID string `json:"id"`
}

// capacityProviderStatus is the control plane's report, under its own key.
type capacityProviderStatus struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Reason       string `json:"reason,omitempty"`
	LastModified string `json:"lastModified"`
}

// versionStatus is the control plane's report on a version, under its own key. It
// applies while RevisionId is the version's (republishing $LATEST.PUBLISHED makes a
// new one).
type versionStatus struct {
	RevisionId string         `json:"revisionId"`
	State      string         `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	ReasonCode string         `json:"reasonCode,omitempty"`
	Applied    *ScalingConfig `json:"applied,omitempty"`
}

func arnName(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}
