package fleet

import (
	"context"
	"sync"
)

// addWatcher is Watch of Local and Cluster: a channel of events, kept in
// watchers (guarded by mu; nil once its owner has closed) until ctx ends,
// when it is removed and closed. Once stop is closed the owner's Close
// closes it instead.
func addWatcher(ctx context.Context, mu *sync.Mutex, watchers *map[chan Event]struct{}, stop <-chan struct{}) <-chan Event {
	ch := make(chan Event, 1024)
	mu.Lock()
	if *watchers == nil {
		mu.Unlock()
		close(ch)
		return ch
	}
	(*watchers)[ch] = struct{}{}
	mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
			return
		}
		mu.Lock()
		if _, ok := (*watchers)[ch]; ok {
			delete(*watchers, ch)
			close(ch)
		}
		mu.Unlock()
	}()
	return ch
}
