package registry

import (
	"context"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Asynchronous invocation configs (API 2019-09-25): per function qualifier, how
// many times an event is retried after a function error, how old it may grow in
// the queue, and where the records of its outcome go. They live in the function's
// record, so deleting the function, an alias or a version deletes its config.

// Lambda's limits and defaults for asynchronous invocation.
const (
	MaxRetryAttempts       = 2
	DefaultRetryAttempts   = 2
	MinEventAgeSeconds     = 60
	MaxEventAgeSeconds     = 21600
	DefaultEventAgeSeconds = 21600
)

// EventInvokeConfig is one qualifier's asynchronous invocation config. A nil
// field was not set (Lambda leaves it out of its answers and applies the default).
type EventInvokeConfig struct {
	MaximumRetryAttempts     *int               `json:"maximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int               `json:"maximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"destinationConfig,omitempty"`
	LastModified             time.Time          `json:"lastModified"`
}

// DestinationConfig names where the records of successful and failed events go.
type DestinationConfig struct {
	OnSuccess Destination `json:"onSuccess"`
	OnFailure Destination `json:"onFailure"`
}

// Destination is a target ARN; "" is none.
type Destination struct {
	Destination string `json:"destination,omitempty"`
}

// QualifiedEventInvokeConfig is a config with the qualifier it belongs to.
type QualifiedEventInvokeConfig struct {
	Qualifier string
	EventInvokeConfig
}

// EventInvokeSettings is what applies to an event: the qualifier's config with
// Lambda's defaults filled in.
type EventInvokeSettings struct {
	RetryAttempts int
	MaxEventAge   time.Duration
	OnSuccess     string
	OnFailure     string
}

// Settings fills in Lambda's defaults (c may be nil).
func (c *EventInvokeConfig) Settings() EventInvokeSettings {
	s := EventInvokeSettings{RetryAttempts: DefaultRetryAttempts, MaxEventAge: DefaultEventAgeSeconds * time.Second}
	if c == nil {
		return s
	}
	if c.MaximumRetryAttempts != nil {
		s.RetryAttempts = *c.MaximumRetryAttempts
	}
	if c.MaximumEventAgeInSeconds != nil {
		s.MaxEventAge = time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
	}
	if d := c.DestinationConfig; d != nil {
		s.OnSuccess, s.OnFailure = d.OnSuccess.Destination, d.OnFailure.Destination
	}
	return s
}

// eventInvokeKey is the key of a qualifier's config: "" is $LATEST.
func eventInvokeKey(qualifier string) string {
	if qualifier == "" {
		return Latest
	}
	return qualifier
}

// noEventInvokeConfig is Lambda's answer when a qualifier has no config (or the
// function does not exist).
func (r *Registry) noEventInvokeConfig(function, qualifier string) *awserr.Error {
	return awserr.NotFound("The function %s doesn't have an EventInvokeConfig", r.FunctionARN(function, eventInvokeKey(qualifier)))
}

// functionDoesNotExist is Lambda's answer to Put, Update and List on a function
// or qualifier that does not exist.
func functionDoesNotExist() *awserr.Error {
	return awserr.NotFound("The function doesn't exist.")
}

// qualifierExists reports whether the function has qualifier ($LATEST, a
// published version or an alias).
func qualifierExists(rec *functionRecord, qualifier string) bool {
	if qualifier == Latest {
		return true
	}
	if _, ok := rec.Versions[qualifier]; ok {
		return true
	}
	_, ok := rec.Aliases[qualifier]
	return ok
}

// PutEventInvokeConfig sets a qualifier's config, replacing the whole of any
// config it had.
func (r *Registry) PutEventInvokeConfig(ctx context.Context, function, qualifier string, c EventInvokeConfig) (*EventInvokeConfig, error) {
	return r.changeEventInvokeConfig(ctx, function, qualifier, false, func(*EventInvokeConfig) EventInvokeConfig { return c })
}

// UpdateEventInvokeConfig changes a qualifier's existing config.
func (r *Registry) UpdateEventInvokeConfig(ctx context.Context, function, qualifier string, change func(old *EventInvokeConfig) EventInvokeConfig) (*EventInvokeConfig, error) {
	return r.changeEventInvokeConfig(ctx, function, qualifier, true, change)
}

func (r *Registry) changeEventInvokeConfig(ctx context.Context, function, qualifier string, mustExist bool,
	change func(old *EventInvokeConfig) EventInvokeConfig) (*EventInvokeConfig, error) {
	key := eventInvokeKey(qualifier)
	if _, err := r.load(ctx, function); err != nil {
		return nil, functionDoesNotExist()
	}
	var out *EventInvokeConfig
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		if !qualifierExists(rec, key) {
			return functionDoesNotExist()
		}
		old := rec.EventInvoke[key]
		if mustExist && old == nil {
			return r.noEventInvokeConfig(function, key)
		}
		c := change(old)
		c.LastModified = r.cfg.Clock.Now().UTC()
		if rec.EventInvoke == nil {
			rec.EventInvoke = map[string]*EventInvokeConfig{}
		}
		rec.EventInvoke[key] = &c
		out = &c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetEventInvokeConfig returns a qualifier's config.
func (r *Registry) GetEventInvokeConfig(ctx context.Context, function, qualifier string) (*EventInvokeConfig, error) {
	key := eventInvokeKey(qualifier)
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, r.noEventInvokeConfig(function, key)
	}
	c := rec.EventInvoke[key]
	if c == nil {
		return nil, r.noEventInvokeConfig(function, key)
	}
	return c, nil
}

// DeleteEventInvokeConfig deletes a qualifier's config.
func (r *Registry) DeleteEventInvokeConfig(ctx context.Context, function, qualifier string) error {
	key := eventInvokeKey(qualifier)
	if !validKeyToken(function) {
		return r.noEventInvokeConfig(function, key)
	}
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		if rec.EventInvoke[key] == nil {
			return r.noEventInvokeConfig(function, key)
		}
		delete(rec.EventInvoke, key)
		return nil
	})
	if awserr.Is(err, awserr.CodeResourceNotFound) {
		return r.noEventInvokeConfig(function, key)
	}
	return err
}

// ListEventInvokeConfigs returns the function's configs in the order of their
// qualified ARNs.
func (r *Registry) ListEventInvokeConfigs(ctx context.Context, function string) ([]QualifiedEventInvokeConfig, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, functionDoesNotExist()
	}
	out := make([]QualifiedEventInvokeConfig, 0, len(rec.EventInvoke))
	for q, c := range rec.EventInvoke {
		out = append(out, QualifiedEventInvokeConfig{Qualifier: q, EventInvokeConfig: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		return r.FunctionARN(function, out[i].Qualifier) < r.FunctionARN(function, out[j].Qualifier)
	})
	return out, nil
}

// EventInvokeSettings returns what applies to an event of function invoked
// with qualifier ("" is $LATEST): the qualifier's config with Lambda's
// defaults, read from the in-memory copy. A function that no longer exists
// gives a ResourceNotFoundException.
func (r *Registry) EventInvokeSettings(function, qualifier string) (EventInvokeSettings, error) {
	rec := r.cached(function)
	if rec == nil {
		return EventInvokeSettings{}, r.functionNotFound(function, "")
	}
	return rec.EventInvoke[eventInvokeKey(qualifier)].Settings(), nil
}
