package registry

import (
	"context"
	"sort"
	"sync"
)

// Watch returns a channel that receives a Change for every function that exists when
// Watch is called, then one whenever a function's record changes (created, updated,
// published, aliased, concurrency or Provisioned Concurrency config put or deleted,
// deleted). Changes not yet received are coalesced per function, so a slow reader
// never blocks the registry and never misses the latest state of a function: on
// receiving a Change, read what you need (ResolveVersion, ListProvisionedConcurrency,
// GetFunctionConcurrency). Capacity providers are watched the same way: a Change
// with CapacityProvider set (and Function empty) for each one that exists, then on
// every create, update and delete. Status reports (SetProvisionedStatus,
// SetCapacityProviderState, SetVersionState) do not produce changes. The channel
// closes when ctx ends or the registry closes.
func (r *Registry) Watch(ctx context.Context) (<-chan Change, error) {
	s := &subscriber{
		pending: make(map[string]Change),
		wake:    make(chan struct{}, 1),
		out:     make(chan Change),
		quit:    make(chan struct{}),
	}
	r.mu.Lock()
	names := make([]string, 0, len(r.funcs))
	for name, c := range r.funcs {
		if c.rec != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		s.notify(Change{Function: n})
	}
	cps := make([]string, 0, len(r.cps))
	for name, c := range r.cps {
		if c.rec != nil {
			cps = append(cps, name)
		}
	}
	sort.Strings(cps)
	for _, n := range cps {
		s.notify(Change{CapacityProvider: n})
	}
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	go func() {
		defer close(s.out)
		defer func() {
			r.mu.Lock()
			delete(r.subs, s)
			r.mu.Unlock()
		}()
		for {
			ch, ok := s.next()
			if !ok {
				select {
				case <-s.wake:
					continue
				case <-ctx.Done():
					return
				case <-s.quit:
					return
				}
			}
			select {
			case s.out <- ch:
			case <-ctx.Done():
				return
			case <-s.quit:
				return
			}
		}
	}()
	return s.out, nil
}

// subscriber is one Watch channel. mu guards pending and order; wake, out and quit
// are immutable channels.
type subscriber struct {
	mu       sync.Mutex
	pending  map[string]Change
	order    []string
	wake     chan struct{}
	out      chan Change
	quit     chan struct{}
	quitOnce sync.Once
}

// changeKey keeps functions and capacity providers of the same name apart.
func changeKey(ch Change) string {
	if ch.CapacityProvider != "" {
		return "cp:" + ch.CapacityProvider
	}
	return "fn:" + ch.Function
}

func (s *subscriber) notify(ch Change) {
	key := changeKey(ch)
	s.mu.Lock()
	if _, ok := s.pending[key]; !ok {
		s.order = append(s.order, key)
	}
	s.pending[key] = ch
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) next() (Change, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return Change{}, false
	}
	name := s.order[0]
	s.order = s.order[1:]
	ch := s.pending[name]
	delete(s.pending, name)
	return ch, true
}

func (s *subscriber) stop() { s.quitOnce.Do(func() { close(s.quit) }) }
