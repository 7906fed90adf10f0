package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Function is what GetFunction shows about a function besides its configuration.
type Function struct {
	Latest   *Version
	Tags     map[string]string
	Reserved *int
}

// CreateFunctionInput is a validated CreateFunction request.
type CreateFunctionInput struct {
	// Config carries the user's settings (FunctionName, Runtime, Role, Handler,
	// Description, Timeout, MemorySize, Environment, Architectures and the fields shoal
	// records without acting on). The registry fills in ARN, code fields, version,
	// revision, state and Lambda's defaults for fields left empty.
	Config  Version
	ZipFile []byte
	Tags    map[string]string
	// Publish also publishes version 1.
	Publish bool
	// PublishTo LATEST_PUBLISHED also publishes $LATEST.PUBLISHED.
	PublishTo string
}

// CreateFunction stores a new function. It returns $LATEST and, with Publish, the
// published version.
func (r *Registry) CreateFunction(ctx context.Context, in CreateFunctionInput) (latest, published *Version, err error) {
	name := in.Config.FunctionName
	if !validKeyToken(name) {
		return nil, nil, awserr.InvalidParameter("invalid function name %q", name)
	}
	if in.Config.ManagedInstances() != nil {
		r.cpMu.Lock()
		defer r.cpMu.Unlock()
		c := in.Config
		r.fillDefaults(&c)
		if err := r.checkCapacityProvider(ctx, &c); err != nil {
			return nil, nil, err
		}
	} else if in.PublishTo != "" {
		return nil, nil, awserr.InvalidParameter("PublishTo LATEST_PUBLISHED is only supported for functions that use a capacity provider.")
	}
	unzipped, err := unzippedSize(in.ZipFile)
	if err != nil {
		return nil, nil, err
	}
	r.codeMu.RLock()
	defer r.codeMu.RUnlock()
	rec := &functionRecord{Unzipped: unzipped}
	if err := r.attachLayers(ctx, rec, &in.Config); err != nil {
		return nil, nil, err
	}
	sha, err := r.putCode(ctx, in.ZipFile)
	if err != nil {
		return nil, nil, err
	}
	v := in.Config
	r.fillDefaults(&v)
	v.FunctionArn = r.FunctionARN(name, "")
	v.CodeSha256 = sha
	v.CodeSize = int64(len(in.ZipFile))
	v.Version = Latest
	v.LastModified = formatTime(r.cfg.Clock.Now())
	v.RevisionId = NewRevisionID()
	rec.Latest = &v
	if len(in.Tags) > 0 {
		rec.Tags = in.Tags
	}
	if in.Publish {
		if published, err = r.publishTo(rec, "", ""); err != nil {
			return nil, nil, err
		}
	}
	if in.PublishTo != "" {
		if published, err = r.publishTo(rec, in.PublishTo, ""); err != nil {
			return nil, nil, err
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, awserr.Service(err, "failed to encode function %s", name)
	}
	rev, err := r.kv.Create(ctx, fnPrefix+name, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, nil, awserr.Conflict("Function already exist: %s", name)
	}
	if err != nil {
		return nil, nil, awserr.Service(err, "failed to store function %s", name)
	}
	r.storeFunc(name, rec, rev)
	r.log.Info("function created", "function", name, "code_sha256", sha)
	return rec.Latest, published, nil
}

// fillDefaults sets Lambda's defaults and the fields it always returns.
func (r *Registry) fillDefaults(v *Version) {
	if v.Timeout == 0 {
		v.Timeout = 3
	}
	if v.MemorySize == 0 {
		v.MemorySize = 128
	}
	if len(v.Architectures) == 0 {
		v.Architectures = []string{"x86_64"}
	}
	if v.EphemeralStorage == nil {
		v.EphemeralStorage = &EphemeralStorage{Size: 512}
	}
	if v.TracingConfig == nil || v.TracingConfig.Mode == "" {
		v.TracingConfig = &TracingConfig{Mode: "PassThrough"}
	}
	if v.SnapStart == nil {
		v.SnapStart = &SnapStart{ApplyOn: SnapStartNone, OptimizationStatus: SnapStartOff}
	}
	if v.LoggingConfig == nil {
		v.LoggingConfig = &LoggingConfig{}
	}
	if v.LoggingConfig.LogFormat == "" {
		v.LoggingConfig.LogFormat = "Text"
	}
	// Levels exist with JSON only, INFO unless set (lambdaapi's finishLogging
	// applies the rules; this keeps any stored record in Lambda's shape).
	if v.LoggingConfig.LogFormat == "JSON" {
		if v.LoggingConfig.ApplicationLogLevel == "" {
			v.LoggingConfig.ApplicationLogLevel = "INFO"
		}
		if v.LoggingConfig.SystemLogLevel == "" {
			v.LoggingConfig.SystemLogLevel = "INFO"
		}
	} else {
		v.LoggingConfig.ApplicationLogLevel, v.LoggingConfig.SystemLogLevel = "", ""
	}
	if v.LoggingConfig.LogGroup == "" {
		v.LoggingConfig.LogGroup = "/aws/lambda/" + v.FunctionName
	}
	if v.PackageType == "" {
		v.PackageType = "Zip"
	}
	v.State = "Active"
	v.StateReason, v.StateReasonCode = "", ""
	v.LastUpdateStatus = "Successful"
	v.LastUpdateStatusReason, v.LastUpdateStatusReasonCode = "", ""
	v.RuntimeVersionConfig = &RuntimeVersionConfig{RuntimeVersionArn: r.runtimeVersionArn(v.Runtime)}
}

// runtimeVersionArn names the runtime's current build (Config.RuntimeVersion),
// in the form Lambda uses.
func (r *Registry) runtimeVersionArn(runtime string) string {
	id := ""
	if r.cfg.RuntimeVersion != nil {
		id = r.cfg.RuntimeVersion(runtime)
	}
	if id == "" {
		sum := sha256.Sum256([]byte("shoal runtime " + runtime))
		id = hex.EncodeToString(sum[:])
	}
	return "arn:aws:lambda:" + r.cfg.Region + "::runtime:" + id
}

// GetFunction returns a function's $LATEST, tags and reserved concurrency.
func (r *Registry) GetFunction(ctx context.Context, name string) (*Function, error) {
	rec, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	return &Function{Latest: rec.Latest, Tags: rec.Tags, Reserved: rec.Reserved}, nil
}

// ListFunctions returns every function's $LATEST (and, with allVersions, its
// published versions after it), ordered by name then version.
func (r *Registry) ListFunctions(ctx context.Context, allVersions bool) []*Version {
	r.mu.RLock()
	recs := make([]*functionRecord, 0, len(r.funcs))
	for _, c := range r.funcs {
		if c.rec != nil {
			recs = append(recs, c.rec)
		}
	}
	r.mu.RUnlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Latest.FunctionName < recs[j].Latest.FunctionName })
	var out []*Version
	for _, rec := range recs {
		out = append(out, rec.Latest)
		if allVersions {
			out = append(out, sortedVersions(rec)...)
		}
	}
	return out
}

func sortedVersions(rec *functionRecord) []*Version {
	vs := make([]*Version, 0, len(rec.Versions))
	for _, v := range rec.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return versionNumber(vs[i].Version) < versionNumber(vs[j].Version) })
	return vs
}

func versionNumber(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func checkRevision(current, given string) error {
	if given != "" && given != current {
		return awserr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	return nil
}

// UpdateCodeInput is a validated UpdateFunctionCode request.
type UpdateCodeInput struct {
	ZipFile []byte
	// RevisionID, when not empty, must match $LATEST's RevisionId.
	RevisionID string
	// Publish also publishes a version.
	Publish bool
	// Architectures, when not nil, replaces $LATEST's.
	Architectures []string
	// PublishTo LATEST_PUBLISHED also publishes $LATEST.PUBLISHED.
	PublishTo string
}

// UpdateFunctionCode replaces $LATEST's code (and architectures), and with Publish
// publishes a version, in one change.
func (r *Registry) UpdateFunctionCode(ctx context.Context, name string, in UpdateCodeInput) (latest, published *Version, err error) {
	unzipped, err := unzippedSize(in.ZipFile)
	if err != nil {
		return nil, nil, err
	}
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	r.codeMu.RLock()
	sha, err := r.putCode(ctx, in.ZipFile)
	if err != nil {
		r.codeMu.RUnlock()
		return nil, nil, err
	}
	var old string
	rec, err := r.update(ctx, name, func(rec *functionRecord) error {
		if err := checkRevision(rec.Latest.RevisionId, in.RevisionID); err != nil {
			return err
		}
		if err := r.checkCombinedSize(rec, unzipped); err != nil {
			return err
		}
		old = rec.Latest.CodeSha256
		rec.Unzipped = unzipped
		rec.Latest.CodeSha256 = sha
		rec.Latest.CodeSize = int64(len(in.ZipFile))
		if in.Architectures != nil {
			rec.Latest.Architectures = in.Architectures
			if err := r.checkCapacityProvider(ctx, rec.Latest); err != nil {
				return err
			}
		}
		rec.Latest.LastModified = formatTime(r.cfg.Clock.Now())
		rec.Latest.RevisionId = NewRevisionID()
		published = nil
		if in.PublishTo != "" && rec.Latest.ManagedInstances() == nil {
			return awserr.InvalidParameter("PublishTo LATEST_PUBLISHED is only supported for functions that use a capacity provider.")
		}
		var err error
		if in.Publish {
			if published, err = r.publishTo(rec, "", ""); err != nil {
				return err
			}
		}
		if in.PublishTo != "" {
			if published, err = r.publishTo(rec, in.PublishTo, ""); err != nil {
				return err
			}
		}
		return nil
	})
	r.codeMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	if old != sha {
		r.collectCode(ctx, old)
	}
	r.collectCode(ctx, rec.dropped...)
	return rec.Latest, published, nil
}

// UpdateFunctionConfiguration applies change to a copy of $LATEST and stores it.
// revisionID, when not empty, must match $LATEST's RevisionId. change must not touch
// the code, version or identity fields.
func (r *Registry) UpdateFunctionConfiguration(ctx context.Context, name, revisionID string, change func(v *Version) error) (*Version, error) {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	r.codeMu.RLock()
	var dropped []string
	rec, err := r.update(ctx, name, func(rec *functionRecord) error {
		if err := checkRevision(rec.Latest.RevisionId, revisionID); err != nil {
			return err
		}
		v := rec.Latest
		keep := *v
		if err := change(v); err != nil {
			return err
		}
		v.FunctionName, v.FunctionArn, v.Version = keep.FunctionName, keep.FunctionArn, keep.Version
		v.CodeSha256, v.CodeSize = keep.CodeSha256, keep.CodeSize
		if (keep.ManagedInstances() == nil) != (v.ManagedInstances() == nil) {
			return awserr.InvalidParameter("CapacityProviderConfig cannot be added to or removed from an existing function.")
		}
		if err := r.checkCapacityProvider(ctx, v); err != nil {
			return err
		}
		if !sameLayers(keep.Layers, v.Layers) {
			if err := r.fillUnzipped(ctx, rec); err != nil {
				return err
			}
			if err := r.attachLayers(ctx, rec, v); err != nil {
				return err
			}
			dropped = pruneLayers(rec)
		} else {
			v.Layers = keep.Layers
		}
		r.fillDefaults(v)
		r.pinRuntime(rec, v)
		v.LastModified = formatTime(r.cfg.Clock.Now())
		v.RevisionId = NewRevisionID()
		return nil
	})
	r.codeMu.RUnlock()
	if err != nil {
		return nil, err
	}
	r.collectCode(ctx, dropped...)
	return rec.Latest, nil
}

// sameLayers reports whether two layer lists name the same versions in the same
// order.
func sameLayers(a, b []Layer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Arn != b[i].Arn {
			return false
		}
	}
	return true
}

// fillUnzipped records the unzipped size of $LATEST's code where a record from
// before shoal kept it lacks it, reading the package from the code store.
func (r *Registry) fillUnzipped(ctx context.Context, rec *functionRecord) error {
	if rec.Unzipped != 0 {
		return nil
	}
	zip, err := r.Code(ctx, rec.Latest.CodeSha256)
	if err != nil {
		return err
	}
	n, err := unzippedSize(zip)
	if err != nil {
		return err
	}
	rec.Unzipped = n
	return nil
}

// DeleteFunction deletes a function with all its versions, aliases and configs.
func (r *Registry) DeleteFunction(ctx context.Context, name string) error {
	if !validKeyToken(name) {
		return r.functionNotFound(name, "")
	}
	key := fnPrefix + name
	for range maxCASAttempts {
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return r.functionNotFound(name, "")
		}
		if err != nil {
			return awserr.Service(err, "failed to read function %s", name)
		}
		rec := new(functionRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			return awserr.Service(err, "failed to decode function %s", name)
		}
		err = r.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return awserr.Service(err, "failed to delete function %s", name)
		}
		// The delete marker's revision is the next one; the watch brings it too.
		r.storeFunc(name, nil, e.Revision()+1)
		for q := range rec.Provisioned {
			r.deleteStatus(ctx, name, q)
		}
		for q := range rec.Versions {
			r.deleteVersionStatus(ctx, name, q)
		}
		shas := append([]string{rec.Latest.CodeSha256}, layerShas(rec)...)
		for _, v := range rec.Versions {
			shas = append(shas, v.CodeSha256)
		}
		r.collectCode(ctx, shas...)
		r.log.Info("function deleted", "function", name)
		return nil
	}
	return awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.FunctionARN(name, ""))
}

// TagFunction adds or replaces tags. As on Lambda, $LATEST gets a new RevisionId.
func (r *Registry) TagFunction(ctx context.Context, name string, tags map[string]string) error {
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		if rec.Tags == nil {
			rec.Tags = make(map[string]string, len(tags))
		}
		for k, v := range tags {
			rec.Tags[k] = v
		}
		rec.Latest.RevisionId = NewRevisionID()
		return nil
	})
	return err
}

// UntagFunction removes tags; absent keys are ignored. As on Lambda, $LATEST gets
// a new RevisionId.
func (r *Registry) UntagFunction(ctx context.Context, name string, keys []string) error {
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		for _, k := range keys {
			delete(rec.Tags, k)
		}
		rec.Latest.RevisionId = NewRevisionID()
		return nil
	})
	return err
}

// PutFunctionRecursionConfig sets what Lambda does when it detects the function in
// a recursive loop: RecursiveLoopAllow or RecursiveLoopTerminate.
func (r *Registry) PutFunctionRecursionConfig(ctx context.Context, name, loop string) error {
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		rec.RecursiveLoop = loop
		if loop == RecursiveLoopTerminate {
			rec.RecursiveLoop = "" // the default
		}
		return nil
	})
	return err
}

// GetFunctionRecursionConfig returns the function's recursion config,
// RecursiveLoopTerminate unless set.
func (r *Registry) GetFunctionRecursionConfig(ctx context.Context, name string) (string, error) {
	rec, err := r.load(ctx, name)
	if err != nil {
		return "", err
	}
	if rec.RecursiveLoop == "" {
		return RecursiveLoopTerminate, nil
	}
	return rec.RecursiveLoop, nil
}

// Recursion configs.
const (
	RecursiveLoopAllow     = "Allow"
	RecursiveLoopTerminate = "Terminate"
)

// AccountUsage returns the number of functions and the total size of their code
// (every version counted) and of the layer versions, as GetAccountSettings reports
// them.
func (r *Registry) AccountUsage(ctx context.Context) (functions int, totalCodeSize int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	totalCodeSize = r.layerUsageLocked()
	for _, c := range r.funcs {
		if c.rec == nil {
			continue
		}
		functions++
		totalCodeSize += c.rec.Latest.CodeSize
		for _, v := range c.rec.Versions {
			totalCodeSize += v.CodeSize
		}
	}
	return functions, totalCodeSize
}
