package registry

import (
	"context"
	"sort"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// CreateAlias creates an alias pointing at a published version or $LATEST.
func (r *Registry) CreateAlias(ctx context.Context, function string, a Alias) (*Alias, error) {
	var out *Alias
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		if a.FunctionVersion != Latest {
			if _, ok := rec.Versions[a.FunctionVersion]; !ok {
				return r.functionNotFound(function, a.FunctionVersion)
			}
		}
		if err := r.checkRoutingVersions(rec, function, a.RoutingConfig); err != nil {
			return err
		}
		arn := r.FunctionARN(function, a.Name)
		if _, ok := rec.Aliases[a.Name]; ok {
			return awserr.Conflict("Alias already exists: %s", arn)
		}
		n := a
		n.AliasArn = arn
		n.RevisionId = NewRevisionID()
		if rec.Aliases == nil {
			rec.Aliases = make(map[string]*Alias)
		}
		rec.Aliases[a.Name] = &n
		out = &n
		return nil
	})
	if err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) && r.cached(function) == nil {
			return nil, r.functionNotFound(function, a.FunctionVersion)
		}
		return nil, err
	}
	return out, nil
}

// GetAlias returns one alias.
func (r *Registry) GetAlias(ctx context.Context, function, name string) (*Alias, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, err
	}
	a, ok := rec.Aliases[name]
	if !ok {
		return nil, awserr.NotFound("Cannot find alias arn: %s", r.FunctionARN(function, name))
	}
	return a, nil
}

// ListAliases returns a function's aliases by name; with functionVersion, only those
// pointing at it.
func (r *Registry) ListAliases(ctx context.Context, function, functionVersion string) ([]*Alias, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, err
	}
	out := make([]*Alias, 0, len(rec.Aliases))
	for _, a := range rec.Aliases {
		if functionVersion == "" || a.FunctionVersion == functionVersion {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// UpdateAlias applies change to a copy of an alias. revisionID, when not empty, must
// match the alias's RevisionId. Moving an alias that has Provisioned Concurrency, or
// changing its weights (which share its environments among its versions), resets
// that config's status to IN_PROGRESS.
func (r *Registry) UpdateAlias(ctx context.Context, function, name, revisionID string, change func(a *Alias) error) (*Alias, error) {
	var out *Alias
	moved := false
	rec, err := r.update(ctx, function, func(rec *functionRecord) error {
		a, ok := rec.Aliases[name]
		if !ok {
			return awserr.NotFound("Alias not found: %s", r.FunctionARN(function, name))
		}
		if err := checkRevision(a.RevisionId, revisionID); err != nil {
			return err
		}
		before, beforeWeights := a.FunctionVersion, a.RoutingConfig
		if err := change(a); err != nil {
			return err
		}
		if a.FunctionVersion != Latest {
			if _, ok := rec.Versions[a.FunctionVersion]; !ok {
				return r.functionNotFound(function, a.FunctionVersion)
			}
		} else if _, ok := rec.Provisioned[name]; ok {
			return awserr.InvalidParameter("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
		}
		if before != a.FunctionVersion {
			if _, ok := rec.Provisioned[a.FunctionVersion]; ok {
				if _, mine := rec.Provisioned[name]; mine {
					return awserr.Conflict("Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
				}
			}
		}
		if err := r.checkRoutingVersions(rec, function, a.RoutingConfig); err != nil {
			return err
		}
		a.Name, a.AliasArn = name, r.FunctionARN(function, name)
		a.RevisionId = NewRevisionID()
		moved = before != a.FunctionVersion || !sameWeights(beforeWeights, a.RoutingConfig)
		r.pruneRollouts(rec)
		r.startAliasRollout(rec, name, before, a)
		out = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.collectCode(ctx, rec.dropped...)
	if p, ok := rec.Provisioned[name]; ok && moved {
		r.putStatus(ctx, function, name, &provisionedStatus{Requested: p.Requested, Status: ProvisionedInProgress, LastModified: p.LastModified})
	}
	return out, nil
}

// DeleteAlias deletes an alias with its Provisioned Concurrency and asynchronous
// invocation configs, its policy and its function URL. Deleting an alias that does
// not exist succeeds, as in Lambda.
func (r *Registry) DeleteAlias(ctx context.Context, function, name string) error {
	hadPC := false
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		_, hadPC = rec.Provisioned[name]
		delete(rec.Aliases, name)
		delete(rec.Rollouts, name)
		delete(rec.Provisioned, name)
		delete(rec.Policies, name)
		delete(rec.URLs, name)
		delete(rec.EventInvoke, name)
		return nil
	})
	if err != nil {
		return err
	}
	if hadPC {
		r.deleteStatus(ctx, function, name)
	}
	return nil
}

// sameWeights reports whether two routing configurations give the same weights.
func sameWeights(a, b *RoutingConfig) bool {
	var wa, wb map[string]float64
	if a != nil {
		wa = a.AdditionalVersionWeights
	}
	if b != nil {
		wb = b.AdditionalVersionWeights
	}
	if len(wa) != len(wb) {
		return false
	}
	for v, w := range wa {
		if x, ok := wb[v]; !ok || x != w {
			return false
		}
	}
	return true
}

// checkRoutingVersions refuses a routing configuration naming a version the
// function does not have.
func (r *Registry) checkRoutingVersions(rec *functionRecord, function string, rc *RoutingConfig) error {
	if rc == nil {
		return nil
	}
	for v := range rc.AdditionalVersionWeights {
		if _, ok := rec.Versions[v]; !ok {
			return r.functionNotFound(function, v)
		}
	}
	return nil
}

// routed picks the version an invocation of a weighted alias runs: each additional
// version with its weight's probability, else the alias's own version (v). x is
// uniform in [0, 1) (Config.Rand), drawn only for a weighted alias.
func routed(rec *functionRecord, qualifier string, v *Version, draw func() float64) *Version {
	a, ok := rec.Aliases[qualifier]
	if !ok || a.RoutingConfig == nil {
		return v
	}
	x := draw()
	for ver, w := range a.RoutingConfig.AdditionalVersionWeights {
		if x < w {
			if other, ok := rec.Versions[ver]; ok {
				return other
			}
		}
		x -= w
	}
	return v
}
