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
// GetFunctionConcurrency). Status reports made with SetProvisionedStatus do not
// produce changes. The channel closes when ctx ends or the registry closes.
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

func (s *subscriber) notify(ch Change) {
	s.mu.Lock()
	if _, ok := s.pending[ch.Function]; !ok {
		s.order = append(s.order, ch.Function)
	}
	s.pending[ch.Function] = ch
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
