package asyncq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A lane runs the events of one function: it fetches no more of them than its
// window allows to run at once, and hands each to a handler goroutine.
//
// The window is the lane's share of the function's concurrency, found by
// trying: it starts at Config.InitialWindow, grows by one with each event
// that succeeds while the lane is full, and halves (at most once a second)
// when an attempt is throttled. Events beyond it stay in the queue.

// consumerPrefix names each function's durable consumer: fn-<function>.
const consumerPrefix = "fn-"

// fetchWait is how long one fetch waits for events to come.
const fetchWait = 10 * time.Second

// decreaseEvery is the least time between two halvings of a window.
const decreaseEvery = time.Second

type lane struct {
	q        *Queue
	function string
	cons     jetstream.Consumer
	// started is when the lane's consumer was made: an event accepted before
	// may have state from an earlier delivery, whatever its delivery count.
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{}

	mu           sync.Mutex // guards the fields below
	window       int
	inflight     int
	lastDecrease time.Time
	msgs         map[uint64]jetstream.Msg // events being handled, by stream sequence
	free         chan struct{}            // signalled when inflight drops
}

// lane returns the function's lane, making its consumer and starting it on
// first use.
func (q *Queue) lane(ctx context.Context, function string) (*lane, error) {
	q.mu.Lock()
	l := q.lanes[function]
	closed := q.closed
	q.mu.Unlock()
	if l != nil {
		return l, nil
	}
	if closed {
		return nil, errors.New("asyncq: closed")
	}
	cons, err := q.events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerPrefix + function,
		Description:   "asynchronous invocations of " + function,
		FilterSubject: eventSubject(function),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 20 * q.cfg.MaxWindow,
		Replicas:      q.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("asyncq: consumer of %s: %w", function, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, errors.New("asyncq: closed")
	}
	if l := q.lanes[function]; l != nil {
		return l, nil
	}
	lctx, cancel := context.WithCancel(q.ctx)
	l = &lane{q: q, function: function, cons: cons, started: q.clock.Now(), cancel: cancel, done: make(chan struct{}),
		window: q.cfg.InitialWindow, msgs: map[uint64]jetstream.Msg{}, free: make(chan struct{}, 1)}
	q.lanes[function] = l
	q.loops.Go(func() { defer close(l.done); l.run(lctx) })
	q.loops.Go(func() { l.heartbeats(lctx) })
	return l, nil
}

// stop ends the lane's fetching and waits for its loop.
func (l *lane) stop() {
	l.cancel()
	<-l.done
}

// run fetches events while the window has room, until ctx ends.
func (l *lane) run(ctx context.Context) {
	for {
		n, ok := l.room(ctx)
		if !ok {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := l.cons.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if !l.pause(ctx, err) {
				return
			}
			continue
		}
		for msg := range batch.Messages() {
			l.dispatch(msg)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if !l.pause(ctx, err) {
				return
			}
		}
	}
}

// pause waits a moment after a failed fetch; false when ctx ended.
func (l *lane) pause(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	l.q.log.Warn("fetching events failed", "function", l.function, "err", err)
	t := l.q.clock.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// room waits until the window has room and returns how much.
func (l *lane) room(ctx context.Context) (int, bool) {
	for ctx.Err() == nil {
		l.mu.Lock()
		n := l.window - l.inflight
		l.mu.Unlock()
		if n > 0 {
			return n, true
		}
		select {
		case <-l.free:
		case <-ctx.Done():
		}
	}
	return 0, false
}

// dispatch hands an event to a handler.
func (l *lane) dispatch(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		l.q.log.Error("event without metadata", "function", l.function, "err", err)
		_ = msg.Term()
		return
	}
	seq := meta.Sequence.Stream
	if _, dup := l.q.running.LoadOrStore(seq, struct{}{}); dup {
		// Delivered again while this process still runs it (its ack wait
		// ran out): the handler under way acknowledges it.
		return
	}
	l.mu.Lock()
	l.inflight++
	full := l.inflight >= l.window
	l.msgs[seq] = msg
	l.mu.Unlock()
	l.q.handlers.Go(func() {
		defer l.q.running.Delete(seq)
		res := l.q.handle(l, msg, meta)
		l.finish(seq, res, full)
	})
}

// finish frees the event's place and adjusts the window: it grows after a
// success of a full lane and halves after a throttle.
func (l *lane) finish(seq uint64, res Outcome, full bool) {
	l.mu.Lock()
	l.inflight--
	delete(l.msgs, seq)
	switch res {
	case OutcomeSuccess:
		if full && l.window < l.q.cfg.MaxWindow {
			l.window++
		}
	case OutcomeThrottled:
		if now := l.q.clock.Now(); now.Sub(l.lastDecrease) >= decreaseEvery {
			l.window = max(1, l.window/2)
			l.lastDecrease = now
		}
	}
	l.mu.Unlock()
	select {
	case l.free <- struct{}{}:
	default:
	}
}

// heartbeats tells JetStream, every third of the ack wait, that the events
// still running are in progress, so that none is delivered again meanwhile.
func (l *lane) heartbeats(ctx context.Context) {
	t := l.q.clock.NewTicker(l.q.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C():
		case <-ctx.Done():
			return
		}
		l.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(l.msgs))
		for _, m := range l.msgs {
			msgs = append(msgs, m)
		}
		l.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}
