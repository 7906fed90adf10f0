// Package registry stores shoal's functions: $LATEST and published versions, aliases,
// tags, reserved concurrency and Provisioned Concurrency configs, resource-based
// policies (policy.go) and function URLs (urls.go), and the capacity providers,
// scaling configs and version states of Lambda Managed Instances, layers and their
// permissions, and runtime management configs, in a JetStream key-value bucket, and
// code packages and layers in a JetStream object store keyed by their CodeSha256. It
// enforces Lambda's consistency rules (RevisionId preconditions,
// version numbering, alias targets, concurrency limits, capacity provider quotas and
// use) with a compare-and-set on the KV revision of each record, so concurrent
// writers never lose updates. It does not validate request syntax (the REST layer
// does) and runs nothing.
//
// Layout: one key "fn.<name>" holds a function's whole record, including the
// requested scaling configs of its Managed Instances versions (every change is one
// compare-and-set); "cp.<name>" holds a capacity provider; "pcs.<name>.<qualifier>",
// "cps.<name>" and "vst.<name>.<version>" hold the control plane's status reports
// for a Provisioned Concurrency config, a capacity provider and a Managed Instances
// version; "ly.<name>" holds a layer's versions (docs/decisions/layers.md). The
// object store holds zips under the hex form of their CodeSha256.
// Everything survives a restart on the same JetStream store.
//
// Reads are served from an in-memory copy that a KV watch keeps current, and that
// each write updates as soon as it is committed (read-your-writes in this process).
//
// What the router uses:
//
//	Code(ctx, codeSha256) ([]byte, error)                       the zip of a version
//	ResolveVersion(ctx, function, qualifier) (*Version, error)  "", "$LATEST", "$LATEST.PUBLISHED", "N" or an alias
//	ResolveInvocation(ctx, function, qualifier) (*Version, error)
//	    ResolveVersion plus the rules of Managed Instances functions: unqualified runs
//	    $LATEST.PUBLISHED (else the highest version; NoPublishedVersionException when
//	    none), $LATEST is not invocable, only Active versions run; a weighted alias
//	    runs its additional version with that version's weight as probability
//	(*Version).ConfigKey() string                               what a configuration runs: changes with
//	    $LATEST's code or settings, not with the RevisionId a publish or a tag renews
//	(*Version).LayerCode() []string                             the CodeSha256s of its layers, in order
//	GetFunctionConcurrency(ctx, function) (*int, error)         reserved concurrency, nil if none
//	SumReservedConcurrency(ctx) (int, error)
//	ListProvisionedConcurrency(ctx) ([]ProvisionedConcurrencyConfig, error)
//	SetProvisionedStatus(ctx, function, qualifier, allocated, available, status, reason) error
//	Watch(ctx) (<-chan Change, error)                           a Change per function or capacity provider touched
//	ResolveFunctionURL(id) (*FunctionURL, *Policy, bool)        a function URL by id, with its policy
//
// What the Managed Instances control plane (fleet, scaler, router) uses:
//
//	ListCapacityProviders(ctx) ([]*CapacityProvider, error)     with State, Architecture(), MaxVCpuCount()
//	GetCapacityProvider(ctx, name) (*CapacityProvider, error)
//	SetCapacityProviderState(ctx, name, state, reason) error    Pending → Active (or Failed); no Change
//	ListManagedVersions(ctx) ([]ManagedVersion, error)          every published version on a capacity
//	    provider: *Version, capacity provider, min/max environments to keep (defaults
//	    applied; 0/0 = deactivated), per-environment concurrency, memory, vCPUs, state
//	SetVersionState(ctx, function, version, state, reason) error
//	    Pending, Active, Failed, Deactivating, Deactivated; Active and Deactivated
//	    record the requested scaling config as applied; no Change
//	SetVersionStatus(ctx, function, version, VersionStatus) error  the same with a reason code
//	VersionState(v) (state, reason, code)                       what GetFunctionConfiguration shows
//
// A capacity provider change arrives as Change{CapacityProvider: name} (Function
// empty), Deleted when it is gone: deletion removes the record at once, so the fleet
// stops the provider's instances when it sees the Change. A version's reported state
// applies only to the revision it was reported on: republishing $LATEST.PUBLISHED
// makes it Pending again. See docs/decisions/managed-instances-api.md.
//
// Versions returned by the registry are shared, immutable values: copy before
// changing one. Errors are *awserr.Error carrying Lambda's codes and messages.
package registry
