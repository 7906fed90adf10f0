package registry

import (
	"context"
	"testing"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// TestAliasRollout: an alias moved to a version that is not Active yet keeps
// running the version it served; once the new one is Active it runs that,
// and the control plane is told whose traffic the new version takes.
func TestAliasRollout(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	createCP(t, r, "cp")
	createManaged(t, r, "fn", "cp", "")
	publish := func(code string) string {
		t.Helper()
		if _, _, err := r.UpdateFunctionCode(ctx, "fn", UpdateCodeInput{ZipFile: testZip(t, code)}); err != nil {
			t.Fatal(err)
		}
		v, err := r.PublishVersion(ctx, "fn", "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return v.Version
	}
	resolve := func(q string) string {
		t.Helper()
		v, err := r.ResolveInvocation(ctx, "fn", q)
		if err != nil {
			t.Fatalf("resolve %s: %v", q, err)
		}
		return v.Version
	}
	alternate := func(q string) string {
		t.Helper()
		v, err := r.ResolveInvocation(ctx, "fn", q)
		if err != nil {
			t.Fatal(err)
		}
		if alt := r.RolloutAlternate("fn", q, v); alt != nil {
			return alt.Version
		}
		return ""
	}
	carries := func(version string) []string {
		t.Helper()
		mvs, err := r.ListManagedVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, mv := range mvs {
			if mv.Version.Version == version && !mv.Replaced {
				var out []string
				for _, c := range mv.Carries {
					out = append(out, c.Version)
				}
				return out
			}
		}
		t.Fatalf("version %s not listed", version)
		return nil
	}
	move := func(to string, weights map[string]float64) {
		t.Helper()
		if _, err := r.UpdateAlias(ctx, "fn", "live", "", func(a *Alias) error {
			a.FunctionVersion = to
			a.RoutingConfig = nil
			if weights != nil {
				a.RoutingConfig = &RoutingConfig{AdditionalVersionWeights: weights}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	v1 := publish("one")
	// Nothing served before: a Pending version answers 409, as without rollouts.
	if _, err := r.CreateAlias(ctx, "fn", Alias{Name: "live", FunctionVersion: v1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ResolveInvocation(ctx, "fn", "live"); !awserr.Is(err, awserr.CodeResourceConflict) {
		t.Fatalf("pending version with nothing serving: %v", err)
	}
	if err := r.SetVersionState(ctx, "fn", v1, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	v2 := publish("two")
	move(v2, nil)
	if got := resolve("live"); got != v1 {
		t.Fatalf("alias moved to pending %s runs %s; want %s", v2, got, v1)
	}
	if got := alternate("live"); got != v2 {
		t.Fatalf("alternate %q; want %s", got, v2)
	}
	if got := carries(v2); len(got) != 1 || got[0] != v1 {
		t.Fatalf("%s carries %v; want [%s]", v2, got, v1)
	}
	// Named directly, the version answers for itself: Pending.
	if _, err := r.ResolveInvocation(ctx, "fn", v2); !awserr.Is(err, awserr.CodeResourceConflict) {
		t.Fatalf("pending %s invoked by its number: %v", v2, err)
	}
	if err := r.SetVersionState(ctx, "fn", v2, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	if got := resolve("live"); got != v2 {
		t.Fatalf("alias on active %s runs %s", v2, got)
	}
	if got := alternate("live"); got != v1 {
		t.Fatalf("right after the move, alternate %q; want %s", got, v1)
	}
	if got := carries(v2); len(got) != 0 {
		t.Fatalf("%s carries %v once Active", v2, got)
	}

	// A weighted alias's additional version takes its share only once Active.
	v3 := publish("three")
	move(v2, map[string]float64{v3: 0.5})
	if got := alternate("live"); got != "" {
		t.Fatalf("the next change prunes the finished rollout; alternate %q", got)
	}
	for range 50 {
		if got := resolve("live"); got != v2 {
			t.Fatalf("weighted alias ran pending %s", got)
		}
	}
	if err := r.SetVersionState(ctx, "fn", v3, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 200 {
		seen[resolve("live")] = true
	}
	if !seen[v2] || !seen[v3] {
		t.Fatalf("weighted alias ran %v; want both %s and %s", seen, v2, v3)
	}
}

// TestLatestPublishedRollout: republishing $LATEST.PUBLISHED keeps the
// revision that served running until the new one is Active; the control
// plane keeps that revision's environments meanwhile.
func TestLatestPublishedRollout(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	createCP(t, r, "cp")
	_, first := createManaged(t, r, "lp", "cp", PublishToLatestPublished)
	if err := r.SetVersionState(ctx, "lp", LatestPublished, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateFunctionConfiguration(ctx, "lp", "", func(v *Version) error { v.MemorySize = 8192; return nil }); err != nil {
		t.Fatal(err)
	}
	second, err := r.PublishVersionTo(ctx, "lp", PublishToLatestPublished, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if second.RevisionId == first.RevisionId {
		t.Fatal("republishing kept the revision")
	}
	if state, _, _ := r.VersionState(second); state != StatePending {
		t.Fatalf("republished version is %s; want Pending", state)
	}
	for _, q := range []string{"", LatestPublished} {
		run, err := r.ResolveInvocation(ctx, "lp", q)
		if err != nil {
			t.Fatalf("invoke %q during the rollout: %v", q, err)
		}
		if run.RevisionId != first.RevisionId || run.MemorySize != 4096 {
			t.Fatalf("invoke %q runs revision %s (%d MB); want the first, %s", q, run.RevisionId, run.MemorySize, first.RevisionId)
		}
		if alt := r.RolloutAlternate("lp", q, run); alt == nil || alt.RevisionId != second.RevisionId {
			t.Fatalf("alternate %+v; want the new revision", alt)
		}
	}
	mvs, err := r.ListManagedVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(mvs) != 2 || mvs[0].Version.RevisionId != second.RevisionId || len(mvs[0].Carries) != 1 ||
		mvs[1].Version.RevisionId != first.RevisionId || !mvs[1].Replaced || mvs[1].MemoryMB != 4096 {
		t.Fatalf("managed versions during the rollout: %+v", mvs)
	}
	if err := r.SetVersionState(ctx, "lp", LatestPublished, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	run, err := r.ResolveInvocation(ctx, "lp", "")
	if err != nil || run.RevisionId != second.RevisionId {
		t.Fatalf("after the new revision is Active: %+v, %v", run, err)
	}
	if mvs, _ := r.ListManagedVersions(ctx); len(mvs) != 1 {
		t.Fatalf("managed versions after the rollout: %+v", mvs)
	}
	// A republish while nothing serves (the last one never became Active)
	// starts no rollout.
	if _, err := r.UpdateFunctionConfiguration(ctx, "lp", "", func(v *Version) error { v.MemorySize = 6144; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishVersionTo(ctx, "lp", PublishToLatestPublished, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateFunctionConfiguration(ctx, "lp", "", func(v *Version) error { v.MemorySize = 10240; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishVersionTo(ctx, "lp", PublishToLatestPublished, "", "", ""); err != nil {
		t.Fatal(err)
	}
	run, err = r.ResolveInvocation(ctx, "lp", "")
	if err != nil || run.RevisionId != second.RevisionId {
		t.Fatalf("republished twice: runs %+v, %v; want the last Active revision", run, err)
	}
	if err := r.DeleteVersion(ctx, "lp", LatestPublished); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ResolveInvocation(ctx, "lp", ""); !awserr.Is(err, awserr.CodeNoPublishedVersion) {
		t.Fatalf("after deleting $LATEST.PUBLISHED: %v", err)
	}
}

func TestMaxInstanceLifetimeTag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when refused
	}{
		{"336h", "336h0m0s"}, {"14d", "336h0m0s"}, {"20s", "20s"}, {"1d", "24h0m0s"},
		{"9s", ""}, {"0d", ""}, {"-3d", ""}, {"soon", ""}, {"", ""},
	} {
		d, err := ParseLifetime(tc.in)
		if got := d.String(); tc.want == "" && err == nil || tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %q", tc.in, d, err, tc.want)
		}
	}
	ctx := context.Background()
	r := newRegistry(t)
	createCP(t, r, "cp")
	if err := r.TagCapacityProvider(ctx, "cp", map[string]string{MaxInstanceLifetimeTag: "tomorrow"}); !awserr.Is(err, awserr.CodeInvalidParameterValue) {
		t.Fatalf("unreadable lifetime tag: %v", err)
	}
	if err := r.TagCapacityProvider(ctx, "cp", map[string]string{MaxInstanceLifetimeTag: "7d"}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := r.CapacityProviderTags(ctx, "cp"); tags[MaxInstanceLifetimeTag] != "7d" {
		t.Fatalf("tags %v", tags)
	}
}
