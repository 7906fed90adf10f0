package replay

import (
	"math/rand/v2"
	"testing"
)

// TestPoolMatchesNaive checks the sliding-maximum pool against the definition:
// the environments alive at step i are the most any of the last keep steps
// needed, and the cold starts are what step i needs beyond them.
func TestPoolMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, keep := range []int{1, 2, 3, 7, 10, 64} {
		p := newPool(keep)
		needs := make([]int, 2000)
		var cold uint64
		for i := range needs {
			if r.IntN(4) > 0 {
				needs[i] = r.IntN(30)
			}
			warm := 0
			for j := max(0, i-keep); j < i; j++ {
				warm = max(warm, needs[j])
			}
			want := max(0, needs[i]-warm)
			cold += uint64(want)
			if got := p.step(i, needs[i]); got != want {
				t.Fatalf("keep %d step %d: %d cold starts; want %d", keep, i, got, want)
			}
			if p.alive != max(warm, needs[i]) {
				t.Fatalf("keep %d step %d: %d alive; want %d", keep, i, p.alive, max(warm, needs[i]))
			}
		}
		if p.cold != cold {
			t.Fatalf("keep %d: %d cold starts in all; want %d", keep, p.cold, cold)
		}
	}
}
