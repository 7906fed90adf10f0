package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Capacity providers live under "cp.<name>", one record each, changed only with a
// compare-and-set. The control plane's state report lives under "cps.<name>" (see
// SetCapacityProviderState) and applies only to the creation it names.

// CapacityProviderARN is the ARN of a capacity provider.
func (r *Registry) CapacityProviderARN(name string) string {
	return "arn:aws:lambda:" + r.cfg.Region + ":" + r.cfg.AccountID + ":capacity-provider:" + name
}

func (r *Registry) capacityProviderNotFound(name string) *awserr.Error {
	return awserr.NotFound("Capacity provider not found: %s", r.CapacityProviderARN(name))
}

// CreateCapacityProviderInput is a validated CreateCapacityProvider request.
type CreateCapacityProviderInput struct {
	Name string
	// Provider carries the user's settings; the registry sets the ARN, State
	// (Pending) and LastModified.
	Provider CapacityProvider
	Tags     map[string]string
}

// CreateCapacityProvider stores a new capacity provider in state Pending, within the
// account's quota of capacity providers.
func (r *Registry) CreateCapacityProvider(ctx context.Context, in CreateCapacityProviderInput) (*CapacityProvider, error) {
	if !validKeyToken(in.Name) {
		return nil, awserr.InvalidParameter("invalid capacity provider name %q", in.Name)
	}
	if err := checkShoalTags(in.Tags); err != nil {
		return nil, err
	}
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if n := r.countCapacityProviders(); n >= r.cfg.CapacityProviderLimit {
		return nil, awserr.CapacityProviderLimitExceeded("The number of capacity providers in this account exceeds the limit of %d.", r.cfg.CapacityProviderLimit)
	}
	cp := in.Provider
	cp.CapacityProviderArn = r.CapacityProviderARN(in.Name)
	cp.State = CapacityProviderPending
	cp.LastModified = formatTime(r.cfg.Clock.Now())
	rec := &capacityProviderRecord{Provider: &cp, ID: NewRevisionID()}
	if len(in.Tags) > 0 {
		rec.Tags = in.Tags
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, awserr.Service(err, "failed to encode capacity provider %s", in.Name)
	}
	rev, err := r.kv.Create(ctx, cpPrefix+in.Name, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, awserr.Conflict("Capacity provider already exists: %s", cp.CapacityProviderArn)
	}
	if err != nil {
		return nil, awserr.Service(err, "failed to store capacity provider %s", in.Name)
	}
	r.storeCP(in.Name, rec, rev)
	r.log.Info("capacity provider created", "capacity_provider", in.Name)
	return r.withState(in.Name, rec), nil
}

func (r *Registry) countCapacityProviders() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, c := range r.cps {
		if c.rec != nil {
			n++
		}
	}
	return n
}

// withState returns a copy of the record's capacity provider with the state the
// control plane last reported for this creation (Pending until it reports).
func (r *Registry) withState(name string, rec *capacityProviderRecord) *CapacityProvider {
	cp := *rec.Provider
	r.mu.RLock()
	c := r.cpStatus[name]
	r.mu.RUnlock()
	if c != nil && c.st != nil && c.st.ID == rec.ID {
		cp.State = c.st.State
	}
	return &cp
}

func (r *Registry) cachedCP(name string) *capacityProviderRecord {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c := r.cps[name]; c != nil {
		return c.rec
	}
	return nil
}

// loadCP returns a capacity provider's record from the cache or, on a miss, from KV.
func (r *Registry) loadCP(ctx context.Context, name string) (*capacityProviderRecord, error) {
	if rec := r.cachedCP(name); rec != nil {
		return rec, nil
	}
	if !validKeyToken(name) {
		return nil, r.capacityProviderNotFound(name)
	}
	e, err := r.kv.Get(ctx, cpPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, r.capacityProviderNotFound(name)
	}
	if err != nil {
		return nil, awserr.Service(err, "failed to read capacity provider %s", name)
	}
	rec := new(capacityProviderRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return nil, awserr.Service(err, "failed to decode capacity provider %s", name)
	}
	r.storeCP(name, rec, e.Revision())
	return rec, nil
}

// GetCapacityProvider returns one capacity provider with its current state. The
// result is a copy.
func (r *Registry) GetCapacityProvider(ctx context.Context, name string) (*CapacityProvider, error) {
	rec, err := r.loadCP(ctx, name)
	if err != nil {
		return nil, err
	}
	return r.withState(name, rec), nil
}

// ListCapacityProviders returns every capacity provider, ordered by name, with its
// current state. The results are copies.
func (r *Registry) ListCapacityProviders(ctx context.Context) ([]*CapacityProvider, error) {
	r.mu.RLock()
	names := make([]string, 0, len(r.cps))
	recs := make(map[string]*capacityProviderRecord, len(r.cps))
	for name, c := range r.cps {
		if c.rec != nil {
			names = append(names, name)
			recs[name] = c.rec
		}
	}
	r.mu.RUnlock()
	sort.Strings(names)
	out := make([]*CapacityProvider, 0, len(names))
	for _, n := range names {
		out = append(out, r.withState(n, recs[n]))
	}
	return out, nil
}

// updateCP applies change to a fresh copy of a capacity provider's record and stores
// it with a compare-and-set, retrying when another writer got there first.
func (r *Registry) updateCP(ctx context.Context, name string, change func(rec *capacityProviderRecord) error) (*capacityProviderRecord, error) {
	if !validKeyToken(name) {
		return nil, r.capacityProviderNotFound(name)
	}
	key := cpPrefix + name
	for range maxCASAttempts {
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, r.capacityProviderNotFound(name)
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to read capacity provider %s", name)
		}
		rec := new(capacityProviderRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			return nil, awserr.Service(err, "failed to decode capacity provider %s", name)
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, awserr.Service(err, "failed to encode capacity provider %s", name)
		}
		rev, err := r.kv.Update(ctx, key, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to store capacity provider %s", name)
		}
		r.storeCP(name, rec, rev)
		return rec, nil
	}
	return nil, awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.CapacityProviderARN(name))
}

// CapacityProviderUpdate is a validated UpdateCapacityProvider request: the only
// settings that may change after creation. Nil fields are left as they are.
type CapacityProviderUpdate struct {
	ScalingConfig   *CapacityProviderScalingConfig
	PropagateTags   *PropagateTags
	TelemetryConfig *CapacityProviderTelemetryConfig
}

// UpdateCapacityProvider changes a capacity provider's scaling config, tag
// propagation or telemetry settings.
func (r *Registry) UpdateCapacityProvider(ctx context.Context, name string, u CapacityProviderUpdate) (*CapacityProvider, error) {
	rec, err := r.updateCP(ctx, name, func(rec *capacityProviderRecord) error {
		cp := rec.Provider
		if u.ScalingConfig != nil {
			cp.CapacityProviderScalingConfig = u.ScalingConfig
		}
		if u.PropagateTags != nil {
			cp.PropagateTags = u.PropagateTags
		}
		if u.TelemetryConfig != nil {
			cp.TelemetryConfig = u.TelemetryConfig
		}
		cp.LastModified = formatTime(r.cfg.Clock.Now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.withState(name, rec), nil
}

// DeleteCapacityProvider deletes a capacity provider that no function version uses
// and returns it in state Deleting. The record goes at once; watchers get a Change
// with Deleted set and the fleet stops its instances.
func (r *Registry) DeleteCapacityProvider(ctx context.Context, name string) (*CapacityProvider, error) {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if !validKeyToken(name) {
		return nil, r.capacityProviderNotFound(name)
	}
	key := cpPrefix + name
	for range maxCASAttempts {
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, r.capacityProviderNotFound(name)
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to read capacity provider %s", name)
		}
		rec := new(capacityProviderRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			return nil, awserr.Service(err, "failed to decode capacity provider %s", name)
		}
		if users := r.versionsOn(name, true); len(users) > 0 {
			return nil, awserr.Conflict("Capacity provider %s cannot be deleted because it is used by %d function version(s), e.g. %s.",
				rec.Provider.CapacityProviderArn, len(users), users[0].FunctionArn)
		}
		err = r.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to delete capacity provider %s", name)
		}
		r.storeCP(name, nil, e.Revision()+1)
		if err := r.kv.Delete(ctx, cpStatusPrefix+name); err != nil {
			r.log.Warn("failed to delete capacity provider status", "capacity_provider", name, "err", err)
		}
		r.log.Info("capacity provider deleted", "capacity_provider", name)
		cp := *rec.Provider
		cp.State = CapacityProviderDeleting
		return &cp, nil
	}
	return nil, awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.CapacityProviderARN(name))
}

// SetCapacityProviderState records the control plane's view of a capacity provider:
// Pending, Active or Failed, with a reason for Failed. It does not wake watchers.
func (r *Registry) SetCapacityProviderState(ctx context.Context, name, state, reason string) error {
	switch state {
	case CapacityProviderPending, CapacityProviderActive, CapacityProviderFailed:
	default:
		return awserr.InvalidParameter("invalid capacity provider state %q", state)
	}
	rec, err := r.loadCP(ctx, name)
	if err != nil {
		return err
	}
	r.mu.RLock()
	c := r.cpStatus[name]
	r.mu.RUnlock()
	if c != nil && c.st != nil && c.st.ID == rec.ID && c.st.State == state && c.st.Reason == reason {
		return nil
	}
	st := &capacityProviderStatus{ID: rec.ID, State: state, Reason: reason, LastModified: formatTime(r.cfg.Clock.Now())}
	data, err := json.Marshal(st)
	if err != nil {
		return awserr.Service(err, "failed to encode capacity provider status")
	}
	rev, err := r.kv.Put(ctx, cpStatusPrefix+name, data)
	if err != nil {
		return awserr.Service(err, "failed to store capacity provider status")
	}
	r.storeCPStatus(name, st, rev)
	return nil
}

// CapacityProviderTags returns a capacity provider's tags.
func (r *Registry) CapacityProviderTags(ctx context.Context, name string) (map[string]string, error) {
	rec, err := r.loadCP(ctx, name)
	if err != nil {
		return nil, err
	}
	return rec.Tags, nil
}

// MaxInstanceLifetimeTag is the capacity provider tag that sets how long its
// instances run before they are replaced: a duration such as 336h, 20s or
// 14d (whole days), at least MinInstanceLifetime. Without it, shoal up's
// --max-instance-lifetime applies (14 days by default).
const MaxInstanceLifetimeTag = "shoal:max-instance-lifetime"

// MinInstanceLifetime is the shortest maximum lifetime an instance may have:
// a shorter one would replace instances about as fast as they start.
const MinInstanceLifetime = 10 * time.Second

// ParseLifetime reads a maximum instance lifetime: a Go duration (336h, 20s)
// or whole days (14d), at least MinInstanceLifetime.
func ParseLifetime(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		var n int
		if n, err = strconv.Atoi(days); err == nil && n > 0 && n <= 100000 {
			d = time.Duration(n) * 24 * time.Hour
		} else if err == nil {
			err = errors.New("out of range")
		}
	}
	if err != nil || d < MinInstanceLifetime {
		return 0, fmt.Errorf("%q: want a duration such as 336h or 14d, of at least %v", s, MinInstanceLifetime)
	}
	return d, nil
}

// checkShoalTags refuses a value of a tag shoal reads that it cannot read.
func checkShoalTags(tags map[string]string) error {
	if v, ok := tags[MaxInstanceLifetimeTag]; ok {
		if _, err := ParseLifetime(v); err != nil {
			return awserr.InvalidParameter("The value of tag %s is not a maximum instance lifetime: %v.", MaxInstanceLifetimeTag, err)
		}
	}
	return nil
}

// TagCapacityProvider adds or replaces tags of a capacity provider.
func (r *Registry) TagCapacityProvider(ctx context.Context, name string, tags map[string]string) error {
	if err := checkShoalTags(tags); err != nil {
		return err
	}
	_, err := r.updateCP(ctx, name, func(rec *capacityProviderRecord) error {
		if rec.Tags == nil {
			rec.Tags = make(map[string]string, len(tags))
		}
		for k, v := range tags {
			rec.Tags[k] = v
		}
		return nil
	})
	return err
}

// UntagCapacityProvider removes tags of a capacity provider; absent keys are ignored.
func (r *Registry) UntagCapacityProvider(ctx context.Context, name string, keys []string) error {
	_, err := r.updateCP(ctx, name, func(rec *capacityProviderRecord) error {
		for _, k := range keys {
			delete(rec.Tags, k)
		}
		return nil
	})
	return err
}

// versionsOn returns the versions whose configuration names the capacity provider,
// ordered by function then version: published versions, and $LATEST too when
// withLatest.
func (r *Registry) versionsOn(name string, withLatest bool) []*Version {
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
	on := func(v *Version) bool {
		mi := v.ManagedInstances()
		return mi != nil && mi.CapacityProviderName() == name
	}
	for _, rec := range recs {
		if withLatest && on(rec.Latest) {
			out = append(out, rec.Latest)
		}
		for _, v := range sortedVersions(rec) {
			if on(v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// ListFunctionVersionsByCapacityProvider returns the function versions that use a
// capacity provider: each function's $LATEST when it names the capacity provider, and
// its published versions that do.
func (r *Registry) ListFunctionVersionsByCapacityProvider(ctx context.Context, name string) ([]*Version, error) {
	if _, err := r.loadCP(ctx, name); err != nil {
		return nil, err
	}
	return r.versionsOn(name, true), nil
}

func (r *Registry) storeCP(name string, rec *capacityProviderRecord, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cps[name]; ok && c.rev >= rev {
		return
	}
	r.cps[name] = &cachedCP{rec: rec, rev: rev}
	ch := Change{CapacityProvider: name, Deleted: rec == nil}
	for s := range r.subs {
		s.notify(ch)
	}
}

func (r *Registry) storeCPStatus(name string, st *capacityProviderStatus, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cpStatus[name]; ok && c.rev >= rev {
		return
	}
	r.cpStatus[name] = &cachedCPStatus{st: st, rev: rev}
}
