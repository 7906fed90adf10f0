package registry

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// GetFunctionConcurrency returns a function's reserved concurrency, nil when none.
func (r *Registry) GetFunctionConcurrency(ctx context.Context, name string) (reserved *int, err error) {
	rec, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	return rec.Reserved, nil
}

// SumReservedConcurrency is the sum of every function's reserved concurrency.
func (r *Registry) SumReservedConcurrency(ctx context.Context) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sum := 0
	for _, c := range r.funcs {
		if c.rec != nil && c.rec.Reserved != nil {
			sum += *c.rec.Reserved
		}
	}
	return sum, nil
}

// accountSums returns, excluding function skip's reserved value and its config
// skipQualifier: the sum of reserved concurrency, and the provisioned concurrency of
// functions without reserved concurrency (which draws on the unreserved pool).
func (r *Registry) accountSums(skip, skipQualifier string) (reserved, unreservedProvisioned int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for name, c := range r.funcs {
		if c.rec == nil {
			continue
		}
		if c.rec.Reserved != nil {
			if name != skip {
				reserved += *c.rec.Reserved
			}
			continue
		}
		for q, p := range c.rec.Provisioned {
			if name == skip && q == skipQualifier {
				continue
			}
			unreservedProvisioned += p.Requested
		}
	}
	return reserved, unreservedProvisioned
}

func totalProvisioned(rec *functionRecord, skipQualifier string) int {
	n := 0
	for q, p := range rec.Provisioned {
		if q != skipQualifier {
			n += p.Requested
		}
	}
	return n
}

// PutFunctionConcurrency sets a function's reserved concurrency, keeping the
// account's unreserved concurrency at or above limits.MinUnreserved.
func (r *Registry) PutFunctionConcurrency(ctx context.Context, name string, n int, limits ConcurrencyLimits) (int, error) {
	r.acctMu.Lock()
	defer r.acctMu.Unlock()
	others, _ := r.accountSums(name, "")
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		if limits.Account-others-n < limits.MinUnreserved {
			return awserr.InvalidParameterUntyped("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", limits.MinUnreserved)
		}
		if pc := totalProvisioned(rec, ""); n < pc {
			return awserr.InvalidParameter(" ReservedConcurrentExecutions  %d should not be lower than function's total provisioned concurrency [%d].", n, pc)
		}
		rec.Reserved = &n
		return nil
	})
	if err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) {
			return 0, r.functionNotFound(name, Latest)
		}
		return 0, err
	}
	return n, nil
}

// DeleteFunctionConcurrency removes a function's reserved concurrency.
func (r *Registry) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	r.acctMu.Lock()
	defer r.acctMu.Unlock()
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		rec.Reserved = nil
		return nil
	})
	return err
}

// provisionedTarget checks that qualifier names a published version or an alias of
// an existing function and returns the version it resolves to.
func (r *Registry) provisionedTarget(rec *functionRecord, function, qualifier string) (string, error) {
	if isVersionNumber(qualifier) {
		if rec == nil {
			return "", r.functionNotFound(function, qualifier)
		}
		if _, ok := rec.Versions[qualifier]; !ok {
			return "", r.functionNotFound(function, qualifier)
		}
		return qualifier, nil
	}
	if rec == nil {
		return "", awserr.NotFound("Cannot find alias arn: %s", r.FunctionARN(function, qualifier))
	}
	a, ok := rec.Aliases[qualifier]
	if !ok {
		return "", awserr.NotFound("Cannot find alias arn: %s", r.FunctionARN(function, qualifier))
	}
	if a.FunctionVersion == Latest {
		return "", awserr.InvalidParameter("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	return a.FunctionVersion, nil
}

// PutProvisionedConcurrency sets the Provisioned Concurrency of a published version or
// alias. Its status becomes IN_PROGRESS until the router reports otherwise.
func (r *Registry) PutProvisionedConcurrency(ctx context.Context, function, qualifier string, n int, limits ConcurrencyLimits) (*ProvisionedConcurrencyConfig, error) {
	if qualifier == Latest || qualifier == "" {
		return nil, awserr.InvalidParameter("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	r.acctMu.Lock()
	defer r.acctMu.Unlock()
	if _, err := r.load(ctx, function); err != nil {
		_, err := r.provisionedTarget(nil, function, qualifier)
		return nil, err
	}
	reservedSum, unresProv := r.accountSums(function, qualifier)
	var prev *provisionedStatus
	now := formatTime(r.cfg.Clock.Now())
	rec, err := r.update(ctx, function, func(rec *functionRecord) error {
		version, err := r.provisionedTarget(rec, function, qualifier)
		if err != nil {
			return err
		}
		if isVersionNumber(qualifier) {
			for q := range rec.Provisioned {
				if a, ok := rec.Aliases[q]; ok && a.FunctionVersion == version {
					return awserr.Conflict("Version is pointed by a Provisioned Concurrency alias")
				}
			}
		} else if _, ok := rec.Provisioned[version]; ok {
			return awserr.Conflict("Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
		}
		if rec.Reserved != nil {
			if totalProvisioned(rec, qualifier)+n > *rec.Reserved {
				return awserr.InvalidParameter("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
			}
		} else {
			// The reserved sum includes no value of this function (it has none).
			avail := limits.Account - reservedSum - unresProv
			if n > avail {
				return awserr.InvalidParameterUntyped("Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [%d].", avail)
			}
			if avail-n < limits.MinUnreserved {
				return awserr.InvalidParameterUntyped("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", limits.MinUnreserved)
			}
		}
		if rec.Provisioned == nil {
			rec.Provisioned = make(map[string]*provisioned)
		}
		rec.Provisioned[qualifier] = &provisioned{Requested: n, LastModified: now}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c := r.status(function, qualifier); c != nil {
		prev = c
	}
	st := &provisionedStatus{Requested: n, Status: ProvisionedInProgress, LastModified: now}
	if prev != nil && prev.Requested == n && prev.Status == ProvisionedReady {
		st = prev // unchanged request: keep the reported state
	} else if prev != nil {
		st.Allocated, st.Available = min(prev.Allocated, n), min(prev.Available, n)
	}
	if err := r.putStatus(ctx, function, qualifier, st); err != nil {
		return nil, err
	}
	cfg := r.config(rec, function, qualifier)
	return &cfg, nil
}

// GetProvisionedConcurrency returns the config of one version or alias.
func (r *Registry) GetProvisionedConcurrency(ctx context.Context, function, qualifier string) (*ProvisionedConcurrencyConfig, error) {
	if qualifier == Latest || qualifier == "" {
		return nil, awserr.InvalidParameter("The function resource provided must be an alias or a published version.")
	}
	rec, _ := r.load(ctx, function)
	if _, err := r.provisionedTarget(rec, function, qualifier); err != nil {
		return nil, err
	}
	if _, ok := rec.Provisioned[qualifier]; !ok {
		return nil, awserr.ProvisionedConcurrencyNotFound("No Provisioned Concurrency Config found for this function")
	}
	cfg := r.config(rec, function, qualifier)
	return &cfg, nil
}

// DeleteProvisionedConcurrency removes the config of one version or alias; removing
// one that does not exist succeeds.
func (r *Registry) DeleteProvisionedConcurrency(ctx context.Context, function, qualifier string) error {
	if qualifier == Latest || qualifier == "" {
		return awserr.InvalidParameter("The function resource provided must be an alias or a published version.")
	}
	rec, _ := r.load(ctx, function)
	if _, err := r.provisionedTarget(rec, function, qualifier); err != nil {
		return err
	}
	if _, ok := rec.Provisioned[qualifier]; !ok {
		return nil
	}
	r.acctMu.Lock()
	defer r.acctMu.Unlock()
	if _, err := r.update(ctx, function, func(rec *functionRecord) error {
		delete(rec.Provisioned, qualifier)
		return nil
	}); err != nil {
		return err
	}
	r.deleteStatus(ctx, function, qualifier)
	return nil
}

// ListProvisionedConcurrencyByFunction returns one function's configs by qualifier.
func (r *Registry) ListProvisionedConcurrencyByFunction(ctx context.Context, function string) ([]ProvisionedConcurrencyConfig, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, err
	}
	return r.configs(rec, function), nil
}

// ListProvisionedConcurrency returns every function's configs, ordered by function
// and qualifier, each with the version it resolves to and the reported status.
func (r *Registry) ListProvisionedConcurrency(ctx context.Context) ([]ProvisionedConcurrencyConfig, error) {
	r.mu.RLock()
	names := make([]string, 0, len(r.funcs))
	recs := make(map[string]*functionRecord, len(r.funcs))
	for name, c := range r.funcs {
		if c.rec != nil && len(c.rec.Provisioned) > 0 {
			names = append(names, name)
			recs[name] = c.rec
		}
	}
	r.mu.RUnlock()
	sort.Strings(names)
	var out []ProvisionedConcurrencyConfig
	for _, name := range names {
		out = append(out, r.configs(recs[name], name)...)
	}
	return out, nil
}

func (r *Registry) configs(rec *functionRecord, function string) []ProvisionedConcurrencyConfig {
	qs := make([]string, 0, len(rec.Provisioned))
	for q := range rec.Provisioned {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	out := make([]ProvisionedConcurrencyConfig, 0, len(qs))
	for _, q := range qs {
		out = append(out, r.config(rec, function, q))
	}
	return out
}

func (r *Registry) config(rec *functionRecord, function, qualifier string) ProvisionedConcurrencyConfig {
	p := rec.Provisioned[qualifier]
	version := qualifier
	var weights map[string]float64
	if a, ok := rec.Aliases[qualifier]; ok {
		version = a.FunctionVersion
		if a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0 {
			weights = a.RoutingConfig.AdditionalVersionWeights
		}
	}
	c := ProvisionedConcurrencyConfig{
		FunctionName: function, Qualifier: qualifier, Version: version, Weights: weights,
		Requested: p.Requested, Status: ProvisionedInProgress, LastModified: p.LastModified,
	}
	if st := r.status(function, qualifier); st != nil && st.Requested == p.Requested {
		c.Allocated, c.Available = st.Allocated, st.Available
		c.Status, c.StatusReason = st.Status, st.Reason
		c.LastModified = st.LastModified
	}
	return c
}

// SetProvisionedStatus records what the router achieved for a config: how many
// environments are allocated and available, and IN_PROGRESS, READY or FAILED with a
// reason (Lambda's, e.g. FUNCTION_ERROR_INIT_FAILURE). It does not wake watchers.
func (r *Registry) SetProvisionedStatus(ctx context.Context, function, qualifier string, allocated, available int, status, reason string) error {
	switch status {
	case ProvisionedInProgress, ProvisionedReady, ProvisionedFailed:
	default:
		return awserr.InvalidParameter("invalid provisioned concurrency status %q", status)
	}
	rec, err := r.load(ctx, function)
	if err != nil {
		return err
	}
	p, ok := rec.Provisioned[qualifier]
	if !ok {
		return awserr.ProvisionedConcurrencyNotFound("No Provisioned Concurrency Config found for this function")
	}
	if st := r.status(function, qualifier); st != nil && st.Requested == p.Requested &&
		st.Allocated == allocated && st.Available == available && st.Status == status && st.Reason == reason {
		return nil // unchanged: keep LastModified and spare the write
	}
	return r.putStatus(ctx, function, qualifier, &provisionedStatus{
		Requested: p.Requested, Allocated: allocated, Available: available,
		Status: status, Reason: reason, LastModified: formatTime(r.cfg.Clock.Now()),
	})
}

func statusKey(function, qualifier string) string { return function + "." + qualifier }

func (r *Registry) status(function, qualifier string) *provisionedStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c := r.pcs[statusKey(function, qualifier)]; c != nil {
		return c.st
	}
	return nil
}

func (r *Registry) putStatus(ctx context.Context, function, qualifier string, st *provisionedStatus) error {
	data, err := json.Marshal(st)
	if err != nil {
		return awserr.Service(err, "failed to encode provisioned status")
	}
	key := statusKey(function, qualifier)
	rev, err := r.kv.Put(ctx, pcPrefix+key, data)
	if err != nil {
		return awserr.Service(err, "failed to store provisioned status")
	}
	r.storeStatus(key, st, rev)
	return nil
}

func (r *Registry) deleteStatus(ctx context.Context, function, qualifier string) {
	key := statusKey(function, qualifier)
	if err := r.kv.Delete(ctx, pcPrefix+key); err != nil {
		r.log.Warn("failed to delete provisioned status", "key", key, "err", err)
		return
	}
	r.mu.Lock()
	if c := r.pcs[key]; c != nil {
		r.pcs[key] = &cachedStatus{st: nil, rev: c.rev + 1}
	}
	r.mu.Unlock()
}
