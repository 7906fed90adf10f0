package remote

import "strings"

// Need is what one environment takes of a host: its CPU quota (vCPUs, from
// its memory as on Lambda) and its memory.
type Need struct {
	VCPU     float64
	MemoryMB int
	// Provisioned is set for a Provisioned Concurrency environment, which
	// every front of the cluster reaches and so runs in an agent.
	Provisioned bool
	// Key names the configuration the environment runs (the router's
	// target key): provisioned environments of one spread over the hosts.
	Key string
}

// Option is a place an environment may go: this process (Agent ""), or a
// host's classic agent, with the room its host has left.
type Option struct {
	Agent        string
	Host         string
	FreeVCPU     float64
	FreeMemoryMB int
	// Same counts the provisioned environments of the needed configuration
	// already there (starting ones included).
	Same int
}

func (o Option) fits(n Need) bool { return o.FreeVCPU >= n.VCPU && o.FreeMemoryMB >= n.MemoryMB }

// Place picks where an environment goes among opts, and returns its index
// (-1 when there is nowhere):
//
//   - An on-demand environment stays in this process while this machine has
//     room for it: its invocations then cost no hop, and each front fills
//     its own machine first, so load spread over the fronts spreads the
//     environments. Past that, it goes to the host with the most room.
//   - A provisioned environment goes, among the hosts with room (this
//     machine's agent included), to the one with the fewest provisioned
//     environments of its configuration, then the most room: a loss takes
//     few of them. It stays in this process only when no agent serves any.
//   - Most room is the most free memory, then the most free vCPUs, then the
//     host's name. When nowhere has room, the environment goes where the
//     least is over-committed (this process first for an on-demand one):
//     Lambda never throttles on-demand invocations for capacity, only for
//     concurrency, which the router limits.
//
// Place is pure: the caller gathers the options from the hosts' heartbeats
// and its own placements in flight.
func Place(opts []Option, n Need) int {
	local := -1
	for i, o := range opts {
		if o.Agent == "" {
			local = i
		}
	}
	remote := func(needRoom bool) int {
		best := -1
		for i, o := range opts {
			if o.Agent == "" || (needRoom && !o.fits(n)) {
				continue
			}
			if best < 0 || (n.Provisioned && o.Same < opts[best].Same) ||
				((!n.Provisioned || o.Same == opts[best].Same) && roomier(o, opts[best])) {
				best = i
			}
		}
		return best
	}
	if n.Provisioned {
		if i := remote(true); i >= 0 {
			return i
		}
		if i := remote(false); i >= 0 {
			return i
		}
		return local
	}
	if local >= 0 && opts[local].fits(n) {
		return local
	}
	if i := remote(true); i >= 0 {
		return i
	}
	if local >= 0 {
		return local
	}
	return remote(false)
}

// roomier reports whether a has more room than b.
func roomier(a, b Option) bool {
	switch {
	case a.FreeMemoryMB != b.FreeMemoryMB:
		return a.FreeMemoryMB > b.FreeMemoryMB
	case a.FreeVCPU != b.FreeVCPU:
		return a.FreeVCPU > b.FreeVCPU
	}
	return strings.Compare(a.Host, b.Host) < 0
}
