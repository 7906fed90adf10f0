package registry

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// lockedRand is a seeded uniform source safe for concurrent use.
func lockedRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// A weighted alias sends each invocation to its additional version with that
// version's weight as probability: at 0.1 over 10,000 invocations, 10 % ± 1 %
// (3.3 standard deviations), for every seed of the uniform source; at 0 and 1,
// none and all.
func TestWeightedAliasRouting(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		weight float64
		seeds  []uint64
	}{
		{0.1, []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
		{0.5, []uint64{9}},
		{0, []uint64{10}},
		{1, []uint64{11}},
	} {
		for _, seed := range c.seeds {
			r := newRegistryWith(t, Config{Rand: lockedRand(seed)})
			create(t, r, "f")
			for range 2 { // versions 1 and 2
				if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Description += "x"; return nil }); err != nil {
					t.Fatal(err)
				}
				if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1",
				RoutingConfig: &RoutingConfig{AdditionalVersionWeights: map[string]float64{"2": c.weight}}}); err != nil {
				t.Fatal(err)
			}
			const n = 10000
			counts := map[string]int{}
			for range n {
				v, err := r.ResolveInvocation(ctx, "f", "live")
				if err != nil {
					t.Fatal(err)
				}
				counts[v.Version]++
			}
			share := float64(counts["2"]) / n
			t.Logf("weight %g, seed %d: %d of %d invocations ran version 2 (%.2f %%)", c.weight, seed, counts["2"], n, 100*share)
			if counts["1"]+counts["2"] != n || math.Abs(share-c.weight) > 0.01 {
				t.Errorf("weight %g, seed %d: versions %v, a share of %.4f for version 2", c.weight, seed, counts, share)
			}
			// Reading the alias and its version ignores the weights.
			if v, err := r.ResolveVersion(ctx, "f", "live"); err != nil || v.Version != "1" {
				t.Errorf("ResolveVersion(live) = %v, %v", v, err)
			}
		}
	}
}

// A weighted alias's Provisioned Concurrency config names the weights its
// environments are shared by, and a change of weights makes it IN_PROGRESS again.
func TestWeightedAliasProvisionedConfig(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	for range 2 {
		if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Description += "x"; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1",
		RoutingConfig: &RoutingConfig{AdditionalVersionWeights: map[string]float64{"2": 0.25}}}); err != nil {
		t.Fatal(err)
	}
	limits := ConcurrencyLimits{Account: 1000, MinUnreserved: 100}
	if _, err := r.PutProvisionedConcurrency(ctx, "f", "live", 4, limits); err != nil {
		t.Fatal(err)
	}
	if err := r.SetProvisionedStatus(ctx, "f", "live", 4, 4, ProvisionedReady, ""); err != nil {
		t.Fatal(err)
	}
	c, err := r.GetProvisionedConcurrency(ctx, "f", "live")
	if err != nil || c.Status != ProvisionedReady || c.Version != "1" || c.Weights["2"] != 0.25 {
		t.Fatalf("config %+v, %v", c, err)
	}
	if _, err := r.UpdateAlias(ctx, "f", "live", "", func(a *Alias) error {
		a.RoutingConfig = &RoutingConfig{AdditionalVersionWeights: map[string]float64{"2": 0.5}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := r.GetProvisionedConcurrency(ctx, "f", "live"); err != nil || c.Status != ProvisionedInProgress || c.Weights["2"] != 0.5 {
		t.Errorf("after the weights changed: %+v, %v", c, err)
	}
}
