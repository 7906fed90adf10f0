package replay

// pool models on-demand execution environments: one invocation each, created
// cold when every warm one is busy, reaped after keepAlive steps idle.
//
// With the most recently used environment picked first, the environments alive
// at step i are the most any step in the last keepAlive steps needed, so the
// cold starts at step i are what step i needs beyond that maximum. A monotonic
// deque keeps the sliding maximum in O(1) per step.
type pool struct {
	keep int // keep-alive in steps

	// deque of (step, need) with decreasing need, as a ring buffer whose
	// size is a power of two (mask = size - 1).
	steps []int
	needs []int
	mask  int
	head  int
	n     int

	cold  uint64
	alive int // environments alive after the last step
	peak  int
}

func newPool(keepAliveSteps int) *pool {
	if keepAliveSteps < 1 {
		keepAliveSteps = 1
	}
	size := 1
	for size < keepAliveSteps+2 {
		size <<= 1
	}
	return &pool{keep: keepAliveSteps, steps: make([]int, size), needs: make([]int, size), mask: size - 1}
}

// step records that step i needs need concurrent environments and returns the
// cold starts it took.
func (p *pool) step(i, need int) int {
	// Drop environments idle for longer than keep-alive.
	for p.n > 0 && p.steps[p.head] < i-p.keep {
		p.head = (p.head + 1) & p.mask
		p.n--
	}
	warm := 0
	if p.n > 0 {
		warm = p.needs[p.head]
	}
	cold := 0
	if need > warm {
		cold = need - warm
		p.cold += uint64(cold)
	}
	if need > 0 {
		for p.n > 0 && p.needs[(p.head+p.n-1)&p.mask] <= need {
			p.n--
		}
		p.steps[(p.head+p.n)&p.mask] = i
		p.needs[(p.head+p.n)&p.mask] = need
		p.n++
	}
	p.alive = max(warm, need)
	if p.alive > p.peak {
		p.peak = p.alive
	}
	return cold
}
