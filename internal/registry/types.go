package registry

import (
	"time"

	"github.com/shoal-dev/shoal/internal/randid"
)

// TimeFormat is Lambda's format for LastModified.
const TimeFormat = "2006-01-02T15:04:05.000+0000"

// Latest is the qualifier of the unpublished, mutable version.
const Latest = "$LATEST"

// Version is one version of a function: $LATEST or a published, immutable number.
// Its fields and JSON names are Lambda's FunctionConfiguration, so the REST layer can
// send it as it is. A *Version handed out by the Registry is shared and must not be
// modified; copy it first.
type Version struct {
	FunctionName string `json:"FunctionName"`
	// FunctionArn is unqualified for $LATEST and qualified (":N") for a published
	// version, as GetFunction returns them.
	FunctionArn   string   `json:"FunctionArn"`
	Runtime       string   `json:"Runtime,omitempty"`
	Role          string   `json:"Role"`
	Handler       string   `json:"Handler,omitempty"`
	CodeSize      int64    `json:"CodeSize"`
	Description   string   `json:"Description"`
	Timeout       int      `json:"Timeout"`
	MemorySize    int      `json:"MemorySize"`
	LastModified  string   `json:"LastModified"`
	CodeSha256    string   `json:"CodeSha256"`
	Version       string   `json:"Version"`
	Architectures []string `json:"Architectures"`

	Environment       *Environment       `json:"Environment,omitempty"`
	TracingConfig     *TracingConfig     `json:"TracingConfig,omitempty"`
	VpcConfig         *VpcConfig         `json:"VpcConfig,omitempty"`
	DeadLetterConfig  *DeadLetterConfig  `json:"DeadLetterConfig,omitempty"`
	KMSKeyArn         string             `json:"KMSKeyArn,omitempty"`
	Layers            []Layer            `json:"Layers,omitempty"`
	FileSystemConfigs []FileSystemConfig `json:"FileSystemConfigs,omitempty"`
	EphemeralStorage  *EphemeralStorage  `json:"EphemeralStorage,omitempty"`
	SnapStart         *SnapStart         `json:"SnapStart,omitempty"`
	LoggingConfig     *LoggingConfig     `json:"LoggingConfig,omitempty"`
	PackageType       string             `json:"PackageType,omitempty"`
	// CapacityProviderConfig places the function on Lambda Managed Instances.
	CapacityProviderConfig *CapacityProviderConfig `json:"CapacityProviderConfig,omitempty"`

	RevisionId                 string                `json:"RevisionId"`
	State                      string                `json:"State,omitempty"`
	StateReason                string                `json:"StateReason,omitempty"`
	StateReasonCode            string                `json:"StateReasonCode,omitempty"`
	LastUpdateStatus           string                `json:"LastUpdateStatus,omitempty"`
	LastUpdateStatusReason     string                `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string                `json:"LastUpdateStatusReasonCode,omitempty"`
	RuntimeVersionConfig       *RuntimeVersionConfig `json:"RuntimeVersionConfig,omitempty"`

	// configKey is ConfigKey's value for $LATEST, set when its record is cached.
	configKey string
	// layerCode is LayerCode's value, set when its record is cached.
	layerCode []string
}

// Environment holds a function's environment variables.
type Environment struct {
	Variables map[string]string `json:"Variables"`
}

// TracingConfig is the X-Ray mode; shoal records it and does not act on it.
type TracingConfig struct {
	Mode string `json:"Mode"`
}

// VpcConfig is accepted and returned; shoal does not attach functions to VPCs.
type VpcConfig struct {
	SubnetIds               []string `json:"SubnetIds"`
	SecurityGroupIds        []string `json:"SecurityGroupIds"`
	VpcId                   string   `json:"VpcId,omitempty"`
	Ipv6AllowedForDualStack *bool    `json:"Ipv6AllowedForDualStack,omitempty"`
}

// DeadLetterConfig is accepted and returned.
type DeadLetterConfig struct {
	TargetArn string `json:"TargetArn,omitempty"`
}

// Layer is a layer version a function uses, as Lambda shows it: its ARN and the
// size of its zip. Its content is in the function's record (LayerCode).
type Layer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

// FileSystemConfig is accepted and returned.
type FileSystemConfig struct {
	Arn            string `json:"Arn"`
	LocalMountPath string `json:"LocalMountPath"`
}

// EphemeralStorage is the size of /tmp in MB.
type EphemeralStorage struct {
	Size int `json:"Size"`
}

// SnapStart is the function's SnapStart setting. shoal records it and shows it as
// Lambda does (OptimizationStatus On for the versions it applies to); it takes no
// snapshots.
type SnapStart struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus,omitempty"`
}

// SnapStart values.
const (
	SnapStartNone              = "None"
	SnapStartPublishedVersions = "PublishedVersions"
	SnapStartOff               = "Off"
	SnapStartOn                = "On"
)

// LoggingConfig is the function's log settings.
type LoggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
}

// RuntimeVersionConfig names the runtime build.
type RuntimeVersionConfig struct {
	RuntimeVersionArn string `json:"RuntimeVersionArn"`
}

// Alias is a named pointer to a published version (or $LATEST).
type Alias struct {
	AliasArn        string         `json:"AliasArn"`
	Name            string         `json:"Name"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     string         `json:"Description"`
	RevisionId      string         `json:"RevisionId"`
	RoutingConfig   *RoutingConfig `json:"RoutingConfig,omitempty"`
}

// RoutingConfig is a weighted alias's additional version and the share of its
// invocations that version gets (ResolveInvocation picks it; ResolveVersion gives the
// alias's own version).
type RoutingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

// weight is version's share of the alias's invocations, if it has one.
func (rc *RoutingConfig) weight(version string) (float64, bool) {
	if rc == nil {
		return 0, false
	}
	w, ok := rc.AdditionalVersionWeights[version]
	return w, ok
}

// Provisioned Concurrency statuses.
const (
	ProvisionedInProgress = "IN_PROGRESS"
	ProvisionedReady      = "READY"
	ProvisionedFailed     = "FAILED"
)

// ProvisionedConcurrencyConfig is one function qualifier's Provisioned Concurrency:
// what the user asked for (Requested, from the API) and what the router reports
// (Allocated, Available, Status, StatusReason, via SetProvisionedStatus).
type ProvisionedConcurrencyConfig struct {
	FunctionName string
	// Qualifier is the version number or alias name the config was put on.
	Qualifier string
	// Version is the published version it resolves to (the alias's target for an alias).
	Version string
	// Weights are the additional version weights of a weighted alias's config (nil
	// otherwise): its provisioned environments are shared among the versions.
	Weights      map[string]float64
	Requested    int
	Allocated    int
	Available    int
	Status       string
	StatusReason string
	LastModified string
}

// Change tells a watcher that something about a function changed (its $LATEST,
// versions, aliases, tags, concurrency, Provisioned Concurrency or scaling configs),
// or, when CapacityProvider is set, that a capacity provider was created, updated or
// deleted (Function is then empty). The watcher re-reads what it needs; changes to
// the same function or capacity provider may be coalesced.
type Change struct {
	Function         string
	CapacityProvider string
	// Deleted is true when the function (or capacity provider) no longer exists.
	Deleted bool
}

// ConcurrencyLimits are the account's limits that reserved and provisioned
// concurrency are checked against.
type ConcurrencyLimits struct {
	// Account is the account's concurrent executions limit (Lambda's default 1000).
	Account int
	// MinUnreserved is the least UnreservedConcurrentExecutions the account keeps (100).
	MinUnreserved int
}

// functionRecord is everything stored about one function, under one KV key, so that
// every change to a function is a single compare-and-set.
type functionRecord struct {
	Latest *Version `json:"latest"`
	// Versions are the published versions by number.
	Versions map[string]*Version `json:"versions,omitempty"`
	// LastVersion is the highest number ever published (numbers are never reused).
	LastVersion int `json:"lastVersion"`
	// PublishedFingerprint is the fingerprint of $LATEST when LastVersion was
	// published: publishing again with nothing changed returns that version.
	PublishedFingerprint string                  `json:"publishedFingerprint,omitempty"`
	Aliases              map[string]*Alias       `json:"aliases,omitempty"`
	Reserved             *int                    `json:"reserved,omitempty"`
	Tags                 map[string]string       `json:"tags,omitempty"`
	Provisioned          map[string]*provisioned `json:"provisioned,omitempty"`
	// LatestPublishedFingerprint is the fingerprint of $LATEST when $LATEST.PUBLISHED
	// was last published (stored in Versions under LatestPublished).
	LatestPublishedFingerprint string `json:"latestPublishedFingerprint,omitempty"`
	// Scaling holds the requested scaling configs of Managed Instances versions, by
	// version number or LatestPublished (whose config carries over to each republish).
	Scaling map[string]*ScalingConfig `json:"scaling,omitempty"`
	// RecursiveLoop is the recursion config ("Allow"); empty is Lambda's default,
	// Terminate.
	RecursiveLoop string `json:"recursiveLoop,omitempty"`
	// Layers holds, by layer version ARN, what the function keeps of each layer
	// version one of its versions references (see layers.go).
	Layers map[string]layerContent `json:"layers,omitempty"`
	// Unzipped is the unzipped size of $LATEST's code; 0 when not recorded (a
	// record from before shoal kept it).
	Unzipped int64 `json:"unzipped,omitempty"`
	// Runtime holds the runtime management configs by version ("$LATEST" or a
	// number) of the versions not on Auto.
	Runtime map[string]RuntimeManagementConfig `json:"runtime,omitempty"`
	// Policies are the resource-based policies, by qualifier ($LATEST for the
	// function itself); URLs the function URLs, by qualifier likewise.
	Policies map[string]*Policy      `json:"policies,omitempty"`
	URLs     map[string]*FunctionURL `json:"urls,omitempty"`
	// EventInvoke holds the asynchronous invocation configs by qualifier
	// ($LATEST, a version number or an alias name).
	EventInvoke map[string]*EventInvokeConfig `json:"eventInvoke,omitempty"`
	// Rollouts are the moves of traffic under way on a Managed Instances
	// function, by alias name or LatestPublished (rollout.go).
	Rollouts map[string]*rollout `json:"rollouts,omitempty"`

	// dropped is the code of the previous revisions whose rollouts a change
	// pruned (not stored): the changer hands it to collectCode once stored.
	dropped []string
}

type provisioned struct {
	Requested    int    `json:"requested"`
	LastModified string `json:"lastModified"`
}

// provisionedStatus is what the router reports, kept under its own key so that
// status reports neither race with API changes nor wake watchers.
type provisionedStatus struct {
	Requested    int    `json:"requested"`
	Allocated    int    `json:"allocated"`
	Available    int    `json:"available"`
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	LastModified string `json:"lastModified"`
}

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// NewRevisionID returns a random UUID (version 4), the form of Lambda's RevisionId.
func NewRevisionID() string { return randid.UUID() }
