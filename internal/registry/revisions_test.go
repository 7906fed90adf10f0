package registry

import (
	"context"
	"testing"
)

// $LATEST's RevisionId moves where Lambda's does: on every change of its code or
// configuration, when a new version is published, and when its tags change; not
// when the last version is published again or an alias is made. Its ConfigKey moves
// only with its code or configuration.
func TestLatestRevisionTransitions(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "fn")
	latest := func() *Version {
		t.Helper()
		v, err := r.ResolveVersion(ctx, "fn", "")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	prev := latest()
	step := func(name string, renews, reconfigures bool, change func() error) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		now := latest()
		if got := now.RevisionId != prev.RevisionId; got != renews {
			t.Errorf("%s: RevisionId changed = %v, want %v", name, got, renews)
		}
		if got := now.ConfigKey() != prev.ConfigKey(); got != reconfigures {
			t.Errorf("%s: ConfigKey changed = %v, want %v", name, got, reconfigures)
		}
		prev = now
	}
	step("publish", true, false, func() error { _, err := r.PublishVersion(ctx, "fn", "", "", ""); return err })
	step("publish unchanged", false, false, func() error { _, err := r.PublishVersion(ctx, "fn", "", "", ""); return err })
	step("alias", false, false, func() error { _, err := r.CreateAlias(ctx, "fn", Alias{Name: "a", FunctionVersion: "1"}); return err })
	step("tag", true, false, func() error { return r.TagFunction(ctx, "fn", map[string]string{"k": "v"}) })
	step("untag", true, false, func() error { return r.UntagFunction(ctx, "fn", []string{"k"}) })
	step("configuration", true, true, func() error {
		_, err := r.UpdateFunctionConfiguration(ctx, "fn", "", func(v *Version) error { v.Description = "new"; return nil })
		return err
	})
	step("stale RevisionId", false, false, func() error {
		_, err := r.UpdateFunctionConfiguration(ctx, "fn", "stale", func(v *Version) error { v.Description = "other"; return nil })
		wantCode(t, err, "PreconditionFailedException")
		return nil
	})
	// A published version keeps its RevisionId.
	v1, err := r.ResolveVersion(ctx, "fn", "1")
	if err != nil {
		t.Fatal(err)
	}
	if v1.ConfigKey() != v1.RevisionId {
		t.Errorf("version 1's ConfigKey %q is not its RevisionId %q", v1.ConfigKey(), v1.RevisionId)
	}
}

// An update under way refuses another of the same function until it ends; other
// functions are not held up.
func TestBeginUpdate(t *testing.T) {
	r := newRegistry(t)
	end, err := r.BeginUpdate("fn")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Updating("fn") || r.Updating("other") {
		t.Fatalf("Updating: fn %v, other %v", r.Updating("fn"), r.Updating("other"))
	}
	_, err = r.BeginUpdate("fn")
	wantCode(t, err, "ResourceConflictException")
	if err.Error() != "ResourceConflictException: The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:fn" {
		t.Errorf("error %v", err)
	}
	endOther, err := r.BeginUpdate("other")
	if err != nil {
		t.Fatal(err)
	}
	endOther()
	end()
	end() // ending twice is harmless
	if r.Updating("fn") {
		t.Fatal("still updating after end")
	}
	end2, err := r.BeginUpdate("fn")
	if err != nil {
		t.Fatal(err)
	}
	end2()
}

// Deleting a version that does not exist succeeds, as on Lambda; the function must.
func TestDeleteMissingVersion(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "fn")
	if err := r.DeleteVersion(ctx, "fn", "1233"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, r.DeleteVersion(ctx, "gone", "1"), "ResourceNotFoundException")
}

func TestRecursionConfig(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "fn")
	for _, tc := range []struct{ put, want string }{
		{"", RecursiveLoopTerminate},
		{RecursiveLoopAllow, RecursiveLoopAllow},
		{RecursiveLoopTerminate, RecursiveLoopTerminate},
	} {
		if tc.put != "" {
			if err := r.PutFunctionRecursionConfig(ctx, "fn", tc.put); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.GetFunctionRecursionConfig(ctx, "fn")
		if err != nil || got != tc.want {
			t.Errorf("after %q: %q %v, want %q", tc.put, got, err, tc.want)
		}
	}
	_, err := r.GetFunctionRecursionConfig(ctx, "gone")
	wantCode(t, err, "ResourceNotFoundException")
	wantCode(t, r.PutFunctionRecursionConfig(ctx, "gone", RecursiveLoopAllow), "ResourceNotFoundException")
}
