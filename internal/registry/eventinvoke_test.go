package registry

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// An asynchronous invocation config lives and dies with its qualifier.
func TestEventInvokeConfigsFollowTheirQualifiers(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	one, age := 1, 120
	for _, q := range []string{"", "1", "live"} {
		if _, err := r.PutEventInvokeConfig(ctx, "f", q, EventInvokeConfig{MaximumRetryAttempts: &one}); err != nil {
			t.Fatalf("put %q: %v", q, err)
		}
	}
	_, err := r.PutEventInvokeConfig(ctx, "f", "2", EventInvokeConfig{MaximumRetryAttempts: &one})
	if e := awserr.As(err); e == nil || e.Message != "The function doesn't exist." {
		t.Errorf("put on a missing version: %v", err)
	}
	c, err := r.UpdateEventInvokeConfig(ctx, "f", "live", func(old *EventInvokeConfig) EventInvokeConfig {
		n := *old
		n.MaximumEventAgeInSeconds = &age
		return n
	})
	if err != nil || *c.MaximumRetryAttempts != 1 || *c.MaximumEventAgeInSeconds != 120 {
		t.Fatalf("update: %+v, %v", c, err)
	}
	if s, err := r.EventInvokeSettings("f", "live"); err != nil || s.RetryAttempts != 1 || s.MaxEventAge != 2*time.Minute {
		t.Errorf("settings of live: %+v, %v", s, err)
	}
	if s, err := r.EventInvokeSettings("f", "other"); err != nil || s.RetryAttempts != 2 || s.MaxEventAge != 6*time.Hour {
		t.Errorf("Lambda's defaults: %+v, %v", s, err)
	}

	if err := r.DeleteAlias(ctx, "f", "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetEventInvokeConfig(ctx, "f", "live"); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("an alias made again kept its predecessor's config: %v", err)
	}
	if err := r.DeleteVersion(ctx, "f", "1"); err == nil {
		t.Fatal("deleted a version an alias uses")
	}
	if err := r.DeleteAlias(ctx, "f", "live"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteVersion(ctx, "f", "1"); err != nil {
		t.Fatal(err)
	}
	list, err := r.ListEventInvokeConfigs(ctx, "f")
	if err != nil || len(list) != 1 || list[0].Qualifier != Latest {
		t.Errorf("after deleting the alias and the version: %+v, %v", list, err)
	}
	if err := r.DeleteFunction(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EventInvokeSettings("f", ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("settings of a deleted function: %v", err)
	}
	create(t, r, "f")
	if _, err := r.GetEventInvokeConfig(ctx, "f", ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("a function made again kept its predecessor's config: %v", err)
	}
}
