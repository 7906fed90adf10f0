package registry

// Rollouts of Managed Instances functions. Moving an alias to another
// version, or republishing $LATEST.PUBLISHED with new code or configuration,
// does not move the traffic at once: the control plane starts the new
// version's environments first, and until it reports the new version (at
// the new revision) Active, invocations keep going to the version that
// served before. A rollout is kept in the function's record:
//
//	UpdateAlias to N ────────► rollout{From: the version serving the alias, To: N}
//	republish $LATEST.PUBLISHED ► rollout{Previous: its serving revision, To: $LATEST.PUBLISHED}
//	                                  │
//	                  To is Active ───┴──► invocations run To; the rollout is
//	                                       finished (pruned at the next change)
//
// A rollout starts only from a version that is Active: with none serving,
// invocations of the new version wait for it as before (409 while Pending).
// The control plane reads rollouts through ListManagedVersions: a new
// version is sized for the traffic it is about to take (Carries), and the
// previous revision of $LATEST.PUBLISHED keeps its environments
// (ManagedVersion.Replaced) until its successor is Active; they drain then.

// rollout is one move of traffic under way, by alias name or
// LatestPublished.
type rollout struct {
	// From names the version that served the alias before it moved (a number
	// or $LATEST.PUBLISHED); empty for $LATEST.PUBLISHED's own rollout.
	From string `json:"from,omitempty"`
	// Previous is $LATEST.PUBLISHED's revision that serves until ToRevision
	// is Active; nil for an alias's rollout.
	Previous *Version `json:"previous,omitempty"`
	// To is the version the traffic moves to; ToRevision, for
	// $LATEST.PUBLISHED's own rollout, the revision it waits for.
	To         string `json:"to"`
	ToRevision string `json:"toRevision,omitempty"`
}

// activeIn reports whether the control plane reported v Active at its revision.
func (r *Registry) activeIn(rec *functionRecord, v *Version) bool {
	if v == nil {
		return false
	}
	state, _, _ := deriveState(rec.Scaling[v.Version], r.versionStatus(v.FunctionName, v.Version), v.RevisionId)
	return state == StateActive
}

// serving returns the record that runs the invocations of published version v
// now, the one to fall back on if it has no environment to take them, and
// whether the first may run (it is Active, or it is the revision of
// $LATEST.PUBLISHED that serves until its successor is).
func (r *Registry) serving(rec *functionRecord, v *Version) (run, alt *Version, ok bool) {
	if v == nil {
		return nil, nil, false
	}
	if v.Version == LatestPublished {
		if ro := rec.Rollouts[LatestPublished]; ro != nil && ro.Previous != nil && ro.ToRevision == v.RevisionId {
			if r.activeIn(rec, v) {
				return v, ro.Previous, true
			}
			return ro.Previous, v, true
		}
	}
	return v, nil, r.activeIn(rec, v)
}

// routeInvocation applies the rollouts of rec to an invocation through
// qualifier that resolved to v (after a weighted alias's draw): it returns
// the version that runs it, the one to fall back on, and whether the first
// may run.
func (r *Registry) routeInvocation(rec *functionRecord, qualifier string, v *Version) (run, alt *Version, ok bool) {
	a := rec.Aliases[qualifier]
	if a == nil || v.Version == Latest {
		return r.serving(rec, v)
	}
	if v.Version != a.FunctionVersion {
		// The weighted alias drew its additional version: until that is
		// Active, its share stays with the alias's own.
		if run, alt, ok := r.serving(rec, v); ok {
			return run, alt, true
		}
		if main := rec.Versions[a.FunctionVersion]; main != nil {
			return r.routeInvocation(rec, qualifier, main)
		}
		return v, nil, false
	}
	run, alt, ok = r.serving(rec, v)
	ro := rec.Rollouts[qualifier]
	if ro == nil || ro.To != v.Version || ro.From == "" {
		return run, alt, ok
	}
	fromRun, _, fromOK := r.serving(rec, rec.Versions[ro.From])
	switch {
	case ok:
		if alt == nil && fromOK {
			alt = fromRun
		}
		return run, alt, true
	case fromOK:
		return fromRun, run, true
	}
	return run, alt, ok
}

// RolloutAlternate returns, for an invocation of function through qualifier
// that ResolveInvocation sent to run, the version to send it to instead when
// run has no environment that can take it: while a rollout is under way (or
// has just ended, until the next change prunes it), the version the traffic
// moves to or from. Nil when there is none.
func (r *Registry) RolloutAlternate(function, qualifier string, run *Version) *Version {
	rec := r.cached(function)
	if rec == nil || len(rec.Rollouts) == 0 || run == nil {
		return nil
	}
	if a := rec.Aliases[qualifier]; a != nil {
		if ro := rec.Rollouts[qualifier]; ro != nil && ro.From != "" && ro.To == a.FunctionVersion {
			toRun, toAlt, _ := r.serving(rec, rec.Versions[ro.To])
			fromRun, _, _ := r.serving(rec, rec.Versions[ro.From])
			if sameRevision(run, toRun) {
				if fromRun != nil {
					return fromRun
				}
				return toAlt
			}
			if sameRevision(run, fromRun) || sameRevision(run, toAlt) {
				return toRun
			}
		}
	}
	if run.Version != LatestPublished {
		return nil
	}
	cur := rec.Versions[LatestPublished]
	ro := rec.Rollouts[LatestPublished]
	if cur == nil || ro == nil || ro.Previous == nil || ro.ToRevision != cur.RevisionId {
		return nil
	}
	switch {
	case sameRevision(run, cur):
		return ro.Previous
	case sameRevision(run, ro.Previous):
		return cur
	}
	return nil
}

func sameRevision(a, b *Version) bool {
	return a != nil && b != nil && a.Version == b.Version && a.RevisionId == b.RevisionId
}

// startLatestPublishedRollout records, as $LATEST.PUBLISHED is republished
// from prev to next, that prev's serving revision serves until next is
// Active. Called within an update, before next replaces prev in rec.
func (r *Registry) startLatestPublishedRollout(rec *functionRecord, prev, next *Version) {
	if prev == nil || prev.ManagedInstances() == nil {
		return
	}
	run, _, ok := r.serving(rec, prev)
	if !ok {
		delete(rec.Rollouts, LatestPublished)
		return
	}
	if rec.Rollouts == nil {
		rec.Rollouts = map[string]*rollout{}
	}
	rec.Rollouts[LatestPublished] = &rollout{Previous: run, To: LatestPublished, ToRevision: next.RevisionId}
}

// startAliasRollout records, as alias name moves from version before to the
// alias's new version, that the version serving it now serves until the new
// one is Active. Called within an update.
func (r *Registry) startAliasRollout(rec *functionRecord, name, before string, a *Alias) {
	if before == a.FunctionVersion {
		return
	}
	last := rec.Rollouts[name]
	delete(rec.Rollouts, name)
	to := rec.Versions[a.FunctionVersion]
	if to == nil || to.ManagedInstances() == nil {
		return
	}
	from := before
	if ro := last; ro != nil && ro.From != "" {
		// Moved again before the last move was over: whichever of the two
		// serves now keeps serving.
		if _, _, ok := r.serving(rec, rec.Versions[before]); !ok {
			from = ro.From
		}
	}
	if from == a.FunctionVersion {
		return
	}
	if _, _, ok := r.serving(rec, rec.Versions[from]); !ok {
		return
	}
	if rec.Rollouts == nil {
		rec.Rollouts = map[string]*rollout{}
	}
	rec.Rollouts[name] = &rollout{From: from, To: a.FunctionVersion}
}

// pruneRollouts forgets the rollouts that are over: their new version is
// Active, or a version they name is gone. It returns the code of previous
// revisions no longer kept, for the code collector, and adds it to rec.dropped.
func (r *Registry) pruneRollouts(rec *functionRecord) (dropped []string) {
	defer func() { rec.dropped = append(rec.dropped, dropped...) }()
	for name, ro := range rec.Rollouts {
		to := rec.Versions[ro.To]
		over := to == nil
		if ro.Previous != nil {
			over = over || to.RevisionId != ro.ToRevision || r.activeIn(rec, to)
		} else {
			a := rec.Aliases[name]
			over = over || a == nil || a.FunctionVersion != ro.To || rec.Versions[ro.From] == nil || r.activeIn(rec, to)
		}
		if over {
			if ro.Previous != nil {
				dropped = append(dropped, ro.Previous.CodeSha256)
			}
			delete(rec.Rollouts, name)
		}
	}
	if len(rec.Rollouts) == 0 {
		rec.Rollouts = nil
	}
	return dropped
}

// inRollout returns the rollouts of rec that are under way: the previous
// revision of $LATEST.PUBLISHED that still serves, and for each version the
// versions whose traffic moves to it.
func (r *Registry) inRollout(rec *functionRecord) (previous *Version, carries map[string][]*Version) {
	for name, ro := range rec.Rollouts {
		to := rec.Versions[ro.To]
		if to == nil {
			continue
		}
		if ro.Previous != nil {
			if to.RevisionId == ro.ToRevision && !r.activeIn(rec, to) {
				previous = ro.Previous
				carries = addCarry(carries, to.Version, ro.Previous)
			}
			continue
		}
		a := rec.Aliases[name]
		if a == nil || a.FunctionVersion != ro.To {
			continue
		}
		if run, _, ok := r.serving(rec, to); ok && run == to {
			continue // over
		}
		if from, _, ok := r.serving(rec, rec.Versions[ro.From]); ok {
			carries = addCarry(carries, to.Version, from)
		}
	}
	return previous, carries
}

func addCarry(m map[string][]*Version, to string, from *Version) map[string][]*Version {
	if m == nil {
		m = map[string][]*Version{}
	}
	for _, v := range m[to] {
		if sameRevision(v, from) {
			return m
		}
	}
	m[to] = append(m[to], from)
	return m
}
