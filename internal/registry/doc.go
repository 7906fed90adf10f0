// Package registry stores shoal's functions: $LATEST and published versions, aliases,
// tags, reserved concurrency and Provisioned Concurrency configs in a JetStream
// key-value bucket, and code packages in a JetStream object store keyed by their
// CodeSha256. It enforces Lambda's consistency rules (RevisionId preconditions,
// version numbering, alias targets, concurrency limits) with a compare-and-set on the
// KV revision of each function's record, so concurrent writers never lose updates.
// It does not validate request syntax (the REST layer does) and runs nothing.
//
// Layout: one key "fn.<name>" holds a function's whole record (every change is one
// compare-and-set); "pcs.<name>.<qualifier>" holds the router's status report for a
// Provisioned Concurrency config; the object store holds zips under the hex form of
// their CodeSha256. Everything survives a restart on the same JetStream store.
//
// Reads are served from an in-memory copy that a KV watch keeps current, and that
// each write updates as soon as it is committed (read-your-writes in this process).
//
// What the router uses:
//
//	Code(ctx, codeSha256) ([]byte, error)                       the zip of a version
//	ResolveVersion(ctx, function, qualifier) (*Version, error)  "", "$LATEST", "N" or an alias
//	GetFunctionConcurrency(ctx, function) (*int, error)         reserved concurrency, nil if none
//	SumReservedConcurrency(ctx) (int, error)
//	ListProvisionedConcurrency(ctx) ([]ProvisionedConcurrencyConfig, error)
//	SetProvisionedStatus(ctx, function, qualifier, allocated, available, status, reason) error
//	Watch(ctx) (<-chan Change, error)                           a Change per function touched
//
// Versions returned by the registry are shared, immutable values: copy before
// changing one. Errors are *awserr.Error carrying Lambda's codes and messages.
package registry
