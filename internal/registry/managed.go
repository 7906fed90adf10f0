package registry

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Managed Instances versions: $LATEST.PUBLISHED, scaling configs, the control
// plane's state reports and the invoke-time rules.
//
// A Managed Instances version's state is derived, never stored in the version: from
// the last report the control plane made with SetVersionState (under
// "vst.<function>.<version>", valid while the version's RevisionId is the one
// reported on) and the version's requested scaling config:
//
//	no report ──────────────► Pending      (min = max = 0: Deactivating)
//	report Pending/Active/Failed ─► as reported (min = max = 0: Deactivating)
//	report Deactivating/Deactivated ─► as reported (scaled up again: Pending)
//
// $LATEST of a Managed Instances function is always ActiveNonInvocable.

// PublishTo values.
const PublishToLatestPublished = "LATEST_PUBLISHED"

// publishLatestPublished creates or republishes in place the $LATEST.PUBLISHED version
// from rec.Latest; it returns the existing one when $LATEST has not changed since.
func (r *Registry) publishLatestPublished(rec *functionRecord, description string) *Version {
	fp := fingerprint(rec.Latest)
	prev, ok := rec.Versions[LatestPublished]
	if ok && rec.LatestPublishedFingerprint == fp {
		return prev
	}
	v := *rec.Latest
	v.Version = LatestPublished
	v.FunctionArn = r.FunctionARN(v.FunctionName, LatestPublished)
	v.RevisionId = NewRevisionID()
	v.LastModified = formatTime(r.cfg.Clock.Now())
	if description != "" {
		v.Description = description
	}
	if rec.Versions == nil {
		rec.Versions = make(map[string]*Version)
	}
	r.pruneRollouts(rec)
	r.startLatestPublishedRollout(rec, prev, &v)
	rec.Versions[LatestPublished] = &v
	rec.LatestPublishedFingerprint = fp
	return &v
}

// publishTo publishes rec.Latest as a numbered version or, with LATEST_PUBLISHED, as
// $LATEST.PUBLISHED, after checking the capacity provider's quota of versions.
func (r *Registry) publishTo(rec *functionRecord, publishTo, description string) (*Version, error) {
	if err := r.checkVersionQuota(rec, publishTo); err != nil {
		return nil, err
	}
	before := rec.LastVersion
	var v *Version
	if publishTo == PublishToLatestPublished {
		v = r.publishLatestPublished(rec, description)
	} else {
		v = r.publish(rec, description)
	}
	if rec.LastVersion != before || v.Version == LatestPublished {
		inheritRuntime(rec, v)
	}
	return v, nil
}

// checkVersionQuota refuses a publish that would give the capacity provider of
// rec.Latest more published versions than VersionsPerCapacityProvider.
func (r *Registry) checkVersionQuota(rec *functionRecord, publishTo string) error {
	mi := rec.Latest.ManagedInstances()
	if mi == nil {
		return nil
	}
	fp := fingerprint(rec.Latest)
	cp := mi.CapacityProviderName()
	if publishTo == PublishToLatestPublished {
		if v, ok := rec.Versions[LatestPublished]; ok {
			if old := v.ManagedInstances(); old != nil && old.CapacityProviderName() == cp {
				return nil // republished in place
			}
		}
	} else if rec.PublishedFingerprint == fp {
		if _, ok := rec.Versions[itoa(rec.LastVersion)]; ok {
			return nil // the last version is returned again
		}
	}
	n := 0
	for _, v := range r.versionsOn(cp, false) {
		if v.FunctionName != rec.Latest.FunctionName {
			n++
		}
	}
	for _, v := range rec.Versions {
		if mi := v.ManagedInstances(); mi != nil && mi.CapacityProviderName() == cp {
			n++
		}
	}
	if n >= r.cfg.VersionsPerCapacityProvider {
		return awserr.FunctionVersionsPerCapacityProviderLimitExceeded(
			"The number of function versions using capacity provider %s exceeds the limit of %d.",
			r.CapacityProviderARN(cp), r.cfg.VersionsPerCapacityProvider)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// PublishVersionTo publishes $LATEST as a numbered version, or with publishTo
// LATEST_PUBLISHED as $LATEST.PUBLISHED. codeSha256 and revisionID, when not empty,
// must match $LATEST's.
func (r *Registry) PublishVersionTo(ctx context.Context, name, publishTo, codeSha256, description, revisionID string) (*Version, error) {
	var out *Version
	rec, err := r.update(ctx, name, func(rec *functionRecord) error {
		if codeSha256 != "" && codeSha256 != rec.Latest.CodeSha256 {
			return awserr.InvalidParameter("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", codeSha256, rec.Latest.CodeSha256)
		}
		if err := checkRevision(rec.Latest.RevisionId, revisionID); err != nil {
			return err
		}
		if publishTo == PublishToLatestPublished && rec.Latest.ManagedInstances() == nil {
			return awserr.InvalidParameter("PublishTo LATEST_PUBLISHED is only supported for functions that use a capacity provider.")
		}
		var err error
		out, err = r.publishTo(rec, publishTo, description)
		return err
	})
	if err != nil {
		return nil, err
	}
	r.collectCode(ctx, rec.dropped...)
	r.log.Info("version published", "function", name, "version", out.Version)
	return out, nil
}

// versionStatusKey is the key token of a version's status: "<function>.<version>",
// with $LATEST.PUBLISHED spelled latest_published (KV keys have no '$').
func versionStatusKey(function, version string) string {
	if version == LatestPublished {
		version = "latest_published"
	}
	return function + "." + version
}

func (r *Registry) versionStatus(function, version string) *versionStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c := r.vStatus[versionStatusKey(function, version)]; c != nil {
		return c.st
	}
	return nil
}

func (r *Registry) storeVersionStatus(key string, st *versionStatus, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.vStatus[key]; ok && c.rev >= rev {
		return
	}
	r.vStatus[key] = &cachedVersionStatus{st: st, rev: rev}
}

func (r *Registry) deleteVersionStatus(ctx context.Context, function, version string) {
	key := versionStatusKey(function, version)
	r.mu.RLock()
	c := r.vStatus[key]
	r.mu.RUnlock()
	if c == nil || c.st == nil {
		return
	}
	if err := r.kv.Delete(ctx, vStatusPrefix+key); err != nil {
		r.log.Warn("failed to delete version status", "key", key, "err", err)
		return
	}
	r.mu.Lock()
	if c := r.vStatus[key]; c != nil {
		r.vStatus[key] = &cachedVersionStatus{st: nil, rev: c.rev + 1}
	}
	r.mu.Unlock()
}

// deriveState is a Managed Instances version's state (see the diagram above).
func deriveState(scaling *ScalingConfig, st *versionStatus, revisionID string) (state, reason, code string) {
	deactivated := scaling.Deactivated()
	if st == nil || st.RevisionId != revisionID {
		if deactivated {
			return StateDeactivating, "The function version is being deactivated.", ""
		}
		return StatePending, "The function is being created.", "Creating"
	}
	switch st.State {
	case StateDeactivating, StateDeactivated:
		if !deactivated {
			return StatePending, "The function version is being activated.", "Creating"
		}
		return st.State, st.Reason, st.ReasonCode
	default:
		if deactivated {
			return StateDeactivating, "The function version is being deactivated.", ""
		}
		return st.State, st.Reason, st.ReasonCode
	}
}

// VersionState returns the state GetFunctionConfiguration shows for a version: its
// stored state for on-demand functions, ActiveNonInvocable for the $LATEST of a
// Managed Instances function, and the derived state for its published versions.
func (r *Registry) VersionState(v *Version) (state, reason, code string) {
	if v.ManagedInstances() == nil {
		return v.State, v.StateReason, v.StateReasonCode
	}
	if v.Version == Latest {
		return StateActiveNonInvocable, "", ""
	}
	rec := r.cached(v.FunctionName)
	var scaling *ScalingConfig
	if rec != nil {
		scaling = rec.Scaling[v.Version]
	}
	return deriveState(scaling, r.versionStatus(v.FunctionName, v.Version), v.RevisionId)
}

// SetVersionState records the control plane's state of a published Managed Instances
// version: Pending, Active, Failed (with a reason and Lambda's reason code, e.g.
// InsufficientCapacity), Deactivating or Deactivated. Reporting Active or Deactivated
// also records the version's current scaling config as applied. It does not wake
// watchers.
func (r *Registry) SetVersionState(ctx context.Context, function, version, state, reason string) error {
	return r.SetVersionStatus(ctx, function, version, VersionStatus{State: state, Reason: reason})
}

// SetVersionStatus is SetVersionState with a reason code.
func (r *Registry) SetVersionStatus(ctx context.Context, function, version string, s VersionStatus) error {
	switch s.State {
	case StatePending, StateActive, StateFailed, StateDeactivating, StateDeactivated:
	default:
		return awserr.InvalidParameter("invalid function version state %q", s.State)
	}
	rec, err := r.load(ctx, function)
	if err != nil {
		return err
	}
	v, ok := rec.Versions[version]
	if !ok {
		return r.functionNotFound(function, version)
	}
	if v.ManagedInstances() == nil {
		return awserr.InvalidParameter("function version %s does not use a capacity provider", v.FunctionArn)
	}
	prev := r.versionStatus(function, version)
	st := &versionStatus{RevisionId: v.RevisionId, State: s.State, Reason: s.Reason, ReasonCode: s.ReasonCode}
	if prev != nil && prev.RevisionId == v.RevisionId {
		st.Applied = prev.Applied
	}
	if s.State == StateActive || s.State == StateDeactivated {
		st.Applied = appliedConfig(rec.Scaling[version])
	}
	if prev != nil && statusEqual(prev, st) {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return awserr.Service(err, "failed to encode version status")
	}
	key := versionStatusKey(function, version)
	rev, err := r.kv.Put(ctx, vStatusPrefix+key, data)
	if err != nil {
		return awserr.Service(err, "failed to store version status")
	}
	r.storeVersionStatus(key, st, rev)
	return nil
}

// appliedConfig is the applied scaling config that requested becomes: its
// bounds with the default minimum filled in, and no maximum when none was asked.
func appliedConfig(requested *ScalingConfig) *ScalingConfig {
	lo, hi := requested.Bounds()
	out := &ScalingConfig{MinExecutionEnvironments: &lo, MaxExecutionEnvironments: &hi}
	if requested == nil || requested.MaxExecutionEnvironments == nil {
		out.MaxExecutionEnvironments = nil
	}
	return out
}

// appliedIsRequested reports whether st's applied config is what requested
// would apply.
func appliedIsRequested(st *versionStatus, revision string, requested *ScalingConfig) bool {
	if st == nil || st.RevisionId != revision || st.Applied == nil {
		return false
	}
	a, b := st.Applied, appliedConfig(requested)
	alo, ahi := a.Bounds()
	blo, bhi := b.Bounds()
	return alo == blo && ahi == bhi && (a.MaxExecutionEnvironments == nil) == (b.MaxExecutionEnvironments == nil)
}

func statusEqual(a, b *versionStatus) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// managedTarget checks that qualifier names a published version of a Managed
// Instances function.
func (r *Registry) managedTarget(rec *functionRecord, function, qualifier string) (*Version, error) {
	v, ok := rec.Versions[qualifier]
	if !ok {
		return nil, r.functionNotFound(function, qualifier)
	}
	if v.ManagedInstances() == nil {
		return nil, awserr.InvalidParameter("Function scaling config is only supported for function versions that use a capacity provider.")
	}
	return v, nil
}

// PutFunctionScalingConfig sets the requested minimum and maximum execution
// environments of a published Managed Instances version ($LATEST.PUBLISHED or a
// number) and returns the version's state. min = max = 0 deactivates it. The config
// of $LATEST.PUBLISHED carries over to each republish.
func (r *Registry) PutFunctionScalingConfig(ctx context.Context, function, qualifier string, cfg ScalingConfig) (string, error) {
	var v *Version
	rec, err := r.update(ctx, function, func(rec *functionRecord) error {
		var err error
		if v, err = r.managedTarget(rec, function, qualifier); err != nil {
			return err
		}
		if rec.Scaling == nil {
			rec.Scaling = make(map[string]*ScalingConfig)
		}
		c := cfg
		rec.Scaling[qualifier] = &c
		return nil
	})
	if err != nil {
		return "", err
	}
	state, _, _ := deriveState(rec.Scaling[qualifier], r.versionStatus(function, qualifier), v.RevisionId)
	return state, nil
}

// GetFunctionScalingConfig returns a Managed Instances version's requested scaling
// config (the defaults, min 3, when none was put) and the applied one (nil until the
// control plane reports the version Active or Deactivated).
func (r *Registry) GetFunctionScalingConfig(ctx context.Context, function, qualifier string) (requested, applied *ScalingConfig, err error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, nil, r.functionNotFound(function, qualifier)
	}
	v, err := r.managedTarget(rec, function, qualifier)
	if err != nil {
		return nil, nil, err
	}
	requested = rec.Scaling[qualifier]
	if requested == nil {
		lo := DefaultMinExecutionEnvironments
		requested = &ScalingConfig{MinExecutionEnvironments: &lo}
	}
	if st := r.versionStatus(function, qualifier); st != nil && st.RevisionId == v.RevisionId {
		applied = st.Applied
	}
	return requested, applied, nil
}

// ListManagedVersions returns every published version that runs on a capacity
// provider, ordered by function then version, with what the control plane needs to
// keep its environments.
func (r *Registry) ListManagedVersions(ctx context.Context) ([]ManagedVersion, error) {
	r.mu.RLock()
	recs := make([]*functionRecord, 0, len(r.funcs))
	for _, c := range r.funcs {
		if c.rec != nil {
			recs = append(recs, c.rec)
		}
	}
	r.mu.RUnlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Latest.FunctionName < recs[j].Latest.FunctionName })
	var out []ManagedVersion
	for _, rec := range recs {
		previous, carries := r.inRollout(rec)
		for _, v := range sortedVersions(rec) {
			mi := v.ManagedInstances()
			if mi == nil {
				continue
			}
			scaling := rec.Scaling[v.Version]
			st := r.versionStatus(v.FunctionName, v.Version)
			state, reason, _ := deriveState(scaling, st, v.RevisionId)
			mv := managedVersion(rec, v, scaling)
			mv.State, mv.StateReason, mv.AppliedIsRequested = state, reason, appliedIsRequested(st, v.RevisionId, scaling)
			mv.Carries = carries[v.Version]
			out = append(out, mv)
			if previous != nil && v.Version == LatestPublished && previous.ManagedInstances() != nil {
				mv := managedVersion(rec, previous, scaling)
				mv.State, mv.Replaced = StateActive, true
				out = append(out, mv)
			}
		}
	}
	return out, nil
}

// managedVersion is what the control plane needs of v to keep its environments.
func managedVersion(rec *functionRecord, v *Version, scaling *ScalingConfig) ManagedVersion {
	mi := v.ManagedInstances()
	lo, hi := scaling.Bounds()
	vcpus := mi.VCPUs(v.MemorySize)
	conc := mi.PerExecutionEnvironmentMaxConcurrency
	if conc == 0 {
		conc = DefaultMaxConcurrencyPerVCPU(v.Runtime) * max(vcpus, 1)
	}
	return ManagedVersion{
		Version: v, CapacityProvider: mi.CapacityProviderName(),
		MinEnvironments: lo, MaxEnvironments: hi,
		MaxConcurrency: conc, MemoryMB: v.MemorySize, VCPUs: vcpus,
		UpdateRuntimeOn: rec.runtimeConfig(v.Version).UpdateRuntimeOn,
	}
}

// ResolveInvocation returns the version an invocation runs, as ResolveVersion does,
// with the rules of Managed Instances functions: an unqualified invocation runs
// $LATEST.PUBLISHED (or, when there is none, the highest published version) and
// answers NoPublishedVersionException when nothing was published; $LATEST cannot be
// invoked; a version runs only when Active. A weighted alias runs its additional
// version with that version's weight as probability. For on-demand functions it is
// otherwise ResolveVersion.
func (r *Registry) ResolveInvocation(ctx context.Context, function, qualifier string) (*Version, error) {
	v, err := r.ResolveVersion(ctx, function, qualifier)
	if err != nil {
		return nil, err
	}
	if qualifier != "" && qualifier != Latest && !isVersionNumber(qualifier) {
		if rec := r.cached(function); rec != nil {
			v = routed(rec, qualifier, v, r.cfg.Rand)
		}
	}
	if v.ManagedInstances() == nil {
		return v, nil
	}
	rec := r.cached(function)
	if rec == nil {
		if rec, err = r.load(ctx, function); err != nil {
			return nil, err
		}
	}
	if v.Version == Latest {
		if qualifier != "" {
			return nil, awserr.Conflict("The operation cannot be performed at this time. The function is currently in the following state: %s", StateActiveNonInvocable)
		}
		pv, ok := rec.Versions[LatestPublished]
		if !ok {
			if vs := sortedVersions(rec); len(vs) > 0 {
				pv, ok = vs[len(vs)-1], true
			}
		}
		if !ok || pv.ManagedInstances() == nil {
			return nil, awserr.NoPublishedVersionToInvoke("The function %s has no published versions available.", r.FunctionARN(function, ""))
		}
		v = pv
	}
	// While a rollout is under way, the version that served before serves on.
	run, _, ok := r.routeInvocation(rec, qualifier, v)
	if ok {
		return run, nil
	}
	if state, _, _ := r.VersionState(run); state != StateActive {
		return nil, awserr.Conflict("The operation cannot be performed at this time. The function is currently in the following state: %s", state)
	}
	return run, nil
}

// checkCapacityProvider checks that the capacity provider a configuration names
// exists and has the function's architecture. Callers hold cpMu, so that the
// capacity provider cannot be deleted before the function is stored.
func (r *Registry) checkCapacityProvider(ctx context.Context, v *Version) error {
	mi := v.ManagedInstances()
	if mi == nil {
		return nil
	}
	cp, err := r.GetCapacityProvider(ctx, mi.CapacityProviderName())
	if err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) {
			return awserr.InvalidParameter("The capacity provider %s does not exist.", mi.CapacityProviderArn)
		}
		return err
	}
	if len(v.Architectures) == 1 && v.Architectures[0] != cp.Architecture() {
		return awserr.InvalidParameter("The function's architecture (%s) does not match the architecture of capacity provider %s (%s).",
			v.Architectures[0], cp.CapacityProviderArn, cp.Architecture())
	}
	return nil
}
